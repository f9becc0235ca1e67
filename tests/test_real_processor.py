"""The tiny model over the published Qwen2.5-VL-7B-Instruct processor (../shared/models):
the real chat template, special-token ids and BPE, through masking, training, generation, merge."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
import torch
from peft import PeftModel, get_peft_model
from train_fixtures import clip_rows, write_image

from vqa import families, lora, lvqa, tiny
from vqa.cli import main as cli
from vqa.collator import IGNORE_INDEX, TrainCollator
from vqa.model import generate, load_model, load_processor, render
from vqa.prompts import build_messages
from vqa.question_types import REGISTRY, question_type

REAL = Path(__file__).resolve().parents[2] / "shared" / "models" / "qwen2_5_vl_7b_instruct"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/models is not present")


@pytest.fixture(scope="module")
def model_dir():
    return tiny.tiny_model_path(processor_from=REAL)


@pytest.fixture(scope="module")
def processor(model_dir):
    return load_processor(model_dir, padding_side="right")


def _rows(tmp_path, mode="oao"):
    """One row of every question type, for two clips."""
    return clip_rows(tmp_path, "s1", "c1", "positive", mode, 1) + clip_rows(
        tmp_path, "s2", "c1", "negative", mode, 2
    )


def test_the_model_is_built_over_the_real_tokenizer(model_dir, processor):
    real = json.loads((REAL / "config.json").read_text())
    built = json.loads((model_dir / "config.json").read_text())
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        assert built[key] == real[key]
    assert built["text_config"]["vocab_size"] == len(processor.tokenizer) > 151_000
    assert processor.tokenizer.convert_tokens_to_ids("<|im_end|>") == 151645
    assert tiny._parameter_count(model_dir) < 12_000_000


@pytest.mark.parametrize("style", ["plain", "guided"])
def test_supervised_tokens_are_exactly_the_answer_and_its_end(processor, tmp_path, style):
    rows = _rows(tmp_path)
    batch = TrainCollator(processor, tmp_path, style)(rows)
    for row, ids, labels in zip(rows, batch["input_ids"], batch["labels"], strict=True):
        supervised = ids[labels != IGNORE_INDEX]
        assert processor.tokenizer.decode(supervised) == row["answer"] + "<|im_end|>"


def _lvqa_rows(tmp_path) -> list[dict]:
    """One row of every ME-LVQA question type (long-video questions over four frames)."""
    q, a = lvqa.texts()["questions"], lvqa.texts()["answers"]
    answers = {
        "count_total": "12",
        "count_micro": "3",
        "count_macro": "9",
        "au_inventory": "inner brow raiser, lip corner puller",
        "event_type": a["type_micro"],
        "spot_micro": lvqa.render_intervals([(101, 164), (3050, 3112)]),
        "spot_macro": lvqa.render_intervals([]),
    }
    frames = [write_image(tmp_path / "lv" / f"{k}.png", (90, 90, 90), k) for k in range(4)]
    return [
        {"question": q[key].format(k=2), "answer": answer, "frames": frames}
        for key, answer in answers.items()
    ]


def test_every_registered_question_type_is_supervised_on_its_answer_only(processor, tmp_path):
    rows = _rows(tmp_path) + _lvqa_rows(tmp_path)
    assert {question_type(r["question"]) for r in rows} == set(REGISTRY)
    batch = TrainCollator(processor, tmp_path, "guided")(rows)
    for row, ids, labels in zip(rows, batch["input_ids"], batch["labels"], strict=True):
        supervised = ids[labels != IGNORE_INDEX]
        assert processor.tokenizer.decode(supervised) == row["answer"] + "<|im_end|>"


def _conversations(tmp_path) -> list[list[dict]]:
    rows = _rows(tmp_path, "video")[:2] + _rows(tmp_path, "flow")[2:4]
    with_answer = [build_messages(r, tmp_path, "guided", with_answer=True) for r in rows]
    system = [{"role": "system", "content": "Be brief."}, *with_answer[0]]
    return [*with_answer, system, with_answer[1][:1]]


def test_chat_text_equals_the_real_template(processor, tmp_path):
    """What encode renders is the published template's text, and so is the text of the tiny
    tokenizer's template, laid out from the registry's facts."""
    template = json.loads((REAL / "chat_template.json").read_text())["chat_template"]
    real = jinja2.Environment().from_string(template)
    ours = jinja2.Environment().from_string(tiny.chat_template(families.FAMILIES["qwen2_5_vl"]))
    for conversation in _conversations(tmp_path):
        for prompt in (True, False):
            expected = real.render(messages=conversation, add_generation_prompt=prompt)
            assert render(processor, conversation, add_generation_prompt=prompt) == expected
            assert ours.render(messages=conversation, add_generation_prompt=prompt) == expected


def test_one_training_step_moves_every_baseline_part(model_dir, processor, tmp_path):
    model = load_model(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    config = lora.lora_config("baseline", r=4, alpha=8, dropout=0.0, model=model)
    config.init_lora_weights = False
    model = get_peft_model(model, config).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss = model(**TrainCollator(processor, tmp_path, "plain")(_rows(tmp_path)[:4])).loss
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    moved = {n for n, p in model.named_parameters() if p.requires_grad and not p.equal(before[n])}
    assert moved == set(before)
    assert all(v > 0 for k, v in lora.trainable_counts(model).items() if k in lora.PARTS)


def test_batched_generation_and_merge_answer_alike(model_dir, tmp_path):
    torch.manual_seed(0)
    base = load_model(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    config = lora.lora_config("strong", r=4, alpha=8, dropout=0.0, model=base)
    config.init_lora_weights = False
    adapter = tmp_path / "adapter"
    get_peft_model(base, config).save_pretrained(adapter)
    load_processor(model_dir).save_pretrained(adapter)
    merged = tmp_path / "merged"
    assert cli(["merge", "--adapter", str(adapter), "--out", str(merged)]) == 0

    processor = load_processor(merged)
    conversations = [build_messages(r, tmp_path, "plain") for r in _rows(tmp_path)[:6]]
    base = load_model(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    with_adapter = PeftModel.from_pretrained(base, str(adapter)).eval()
    batched = generate(with_adapter, processor, conversations, max_new_tokens=6, batch_size=6)
    alone = [generate(with_adapter, processor, [c], max_new_tokens=6)[0] for c in conversations]
    assert batched == alone
    merged_model = load_model(merged, dtype=torch.float32, attn_implementation="sdpa")
    assert generate(merged_model, processor, conversations, max_new_tokens=6) == batched
