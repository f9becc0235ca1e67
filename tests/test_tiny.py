"""The tiny offline Qwen2.5-VL: architecture, tokenizer, chat template, CLI and cache."""

from __future__ import annotations

import re

import pytest
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

from vqa import taxonomy, tiny
from vqa.cli import main
from vqa.prompts import official


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return AutoProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForImageTextToText.from_pretrained(tiny_model_dir)


def official_answers() -> list[str]:
    """Every answer and question phrasing the organisers use, filled with every label."""
    q, a = official()["questions"], official()["answers"]
    aus = list(taxonomy.AU_NAMES.values())
    texts = [*taxonomy.FINE_CLASSES, *taxonomy.COARSE_CLASSES, taxonomy.OTHERS, *aus]
    texts += ["yes", "no", "left", "right", a["au_separator"].join(aus)]
    texts += [q["left_right"].format(au=au) for au in aus] + [
        q["yes_no"].format(au=au) for au in aus
    ]
    texts += [v for v in q.values() if "{" not in v]
    for fine, coarse in taxonomy.FINE_TO_COARSE.items():
        texts.append(a["combined_one"].format(aus=aus[0], fine=fine, coarse=coarse))
        texts.append(a["combined_many"].format(aus=", ".join(aus[:3]), fine=fine, coarse=coarse))
    return texts


def test_every_official_phrasing_round_trips(processor):
    tokenizer = processor.tokenizer
    for text in official_answers():
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text


def test_tokenizer_learned_the_vocabulary(processor):
    """Labels are whole tokens, not byte fallbacks: the BPE was trained on them."""
    tokenizer = processor.tokenizer
    for word in [*taxonomy.FINE_CLASSES, *taxonomy.COARSE_CLASSES, "yes", "no", "left", "right"]:
        assert len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1, word
    assert len(tokenizer("é∂", add_special_tokens=False)["input_ids"]) > 1  # bytes still reachable


def test_special_tokens_are_single_ids_known_to_the_config(processor, model):
    tokenizer = processor.tokenizer
    ids = {t: tokenizer(t, add_special_tokens=False)["input_ids"] for t in tiny.SPECIAL_TOKENS}
    assert all(len(v) == 1 for v in ids.values())
    assert len({v[0] for v in ids.values()}) == len(tiny.SPECIAL_TOKENS)
    config = model.config
    assert config.image_token_id == ids["<|image_pad|>"][0]
    assert config.video_token_id == ids["<|video_pad|>"][0]
    assert config.vision_start_token_id == ids["<|vision_start|>"][0]
    assert config.vision_end_token_id == ids["<|vision_end|>"][0]
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert set(model.generation_config.eos_token_id) == {
        ids["<|im_end|>"][0],
        ids["<|endoftext|>"][0],
    }


def test_chat_template_has_the_qwen_layout(processor, tiny_model_dir):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "a.png"},
                {"type": "video", "video": ["1.png", "2.png"]},
                {"type": "text", "text": "What is the coarse expression class?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "positive"}]},
        {"role": "user", "content": "And the fine one?"},
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        "<|vision_start|><|video_pad|><|vision_end|>"
        "What is the coarse expression class?<|im_end|>\n"
        "<|im_start|>assistant\npositive<|im_end|>\n"
        "<|im_start|>user\nAnd the fine one?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    system = [{"role": "system", "content": "Be brief."}, messages[2]]
    without_prompt = processor.apply_chat_template(system, tokenize=False)
    assert without_prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nAnd the fine one?<|im_end|>\n"
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)  # the template travels with it too
    assert tokenizer.apply_chat_template(system, tokenize=False) == without_prompt


def test_architecture_mirrors_qwen25_vl_3b(model):
    names = {name for name, _ in model.named_modules()}
    expected = [
        r"model\.visual\.blocks\.\d+\.attn\.(qkv|proj)",
        r"model\.visual\.blocks\.\d+\.mlp\.(gate|up|down)_proj",
        r"model\.visual\.merger\.mlp\.[02]",
        r"model\.language_model\.layers\.\d+\.self_attn\.[qkvo]_proj",
        r"model\.language_model\.layers\.\d+\.mlp\.(gate|up|down)_proj",
        r"lm_head",
    ]
    for pattern in expected:
        assert any(re.fullmatch(pattern, n) for n in names), pattern
    vision, text = model.config.vision_config, model.config.text_config
    assert (vision.patch_size, vision.spatial_merge_size, vision.temporal_patch_size) == (14, 2, 2)
    assert 0 < len(vision.fullatt_block_indexes) < vision.depth
    head_dim = text.hidden_size // text.num_attention_heads
    assert sum(text.rope_parameters["mrope_section"]) * 2 == head_dim
    assert 100_000 < model.num_parameters() < 1_000_000


def test_cli_builds_deterministically_and_cache_is_atomic(tmp_path, monkeypatch, tiny_model_dir):
    out = tmp_path / "tiny"
    assert main(["tiny-model", "--out", str(out)]) == 0
    same = load_file(out / "model.safetensors")
    cached = load_file(tiny_model_dir / "model.safetensors")
    assert same.keys() == cached.keys()
    assert all((same[k] == cached[k]).all() for k in same)
    assert (out / "tokenizer.json").read_text() == (tiny_model_dir / "tokenizer.json").read_text()

    monkeypatch.setenv("ME_VQA_CACHE", str(tmp_path / "cache"))
    first = tiny.tiny_model_path(seed=1)
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert tiny.tiny_model_path(seed=1) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no temp leftovers
    other = load_file(first / "model.safetensors")
    assert any(not (other[k] == cached[k]).all() for k in other)  # another seed, other weights
