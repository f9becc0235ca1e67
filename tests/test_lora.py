"""LoRA presets on the real tiny Qwen2.5-VL: exact trainable parameters, gradients, saving."""

from __future__ import annotations

import re

import pytest
import torch
from peft import get_peft_model
from safetensors.torch import load_file
from train_fixtures import clip_rows

from vqa import lora
from vqa.collator import TrainCollator
from vqa.errors import UserError
from vqa.model import load_model, load_processor


def _peft_model(tiny_model_dir, preset: str):
    model = load_model(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    config = lora.lora_config(preset, r=4, alpha=8, dropout=0.0, model=model)
    config.init_lora_weights = False  # random B, so that gradient reaches A as well
    return get_peft_model(model, config)


def _expected_baseline(config) -> set[str]:
    """The baseline's LoRA weights, spelled out from the model's depth (not from the regexes)."""
    names = []
    for i in range(config.vision_config.depth):
        names += [f"model.visual.blocks.{i}.attn.{m}" for m in ("qkv", "proj")]
    names += ["model.visual.merger.mlp.0", "model.visual.merger.mlp.2"]
    for i in range(config.text_config.num_hidden_layers):
        names += [f"model.language_model.layers.{i}.self_attn.{m}" for m in ("q_proj", "k_proj")]
    return {f"base_model.model.{n}.lora_{ab}.default.weight" for n in names for ab in "AB"}


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(tiny_model_dir, padding_side="right")


def test_baseline_trains_exactly_vision_attention_merger_and_llm_qk(
    tiny_model_dir, processor, tmp_path
):
    model = _peft_model(tiny_model_dir, "baseline")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == _expected_baseline(model.config)

    # gradient reaches every one of them through checkpointed layers (use_reentrant=False)
    model.enable_input_require_grads()
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    rows = clip_rows(tmp_path, "s1", "c1", "positive", "video", 1, types=[0])
    rows += clip_rows(tmp_path, "s2", "c1", "negative", "oao", 2, types=[1])
    batch = TrainCollator(processor, tmp_path, "plain")(rows)
    model(**batch).loss.backward()
    starved = [
        n for n, p in model.named_parameters() if p.requires_grad and not p.grad.abs().sum() > 0
    ]
    assert starved == []

    counts = lora.trainable_counts(model)
    assert (
        counts["vision"] > 0 and counts["merger"] > 0 and counts["llm"] > 0 and counts["other"] == 0
    )
    assert counts["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_targets_are_anchored_full_paths(tiny_model_dir):
    model = load_model(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    rx = re.compile(lora.resolve("strong", model).target_regex)
    assert rx.fullmatch("model.visual.blocks.3.mlp.gate_proj")
    assert rx.fullmatch("model.language_model.layers.0.mlp.gate_proj")
    assert not rx.fullmatch("model.visual.patch_embed.proj")  # a bare 'proj' would catch it
    baseline = re.compile(lora.resolve("baseline", model).target_regex)
    assert not baseline.fullmatch("model.visual.blocks.0.mlp.gate_proj")
    assert not baseline.fullmatch("model.language_model.layers.0.self_attn.v_proj")
    assert baseline.fullmatch("model.visual.merger.mlp.2") and not baseline.fullmatch(
        "model.visual.merger.mlp.1"
    )


def test_full_modules_are_saved_with_the_adapter(tiny_model_dir, tmp_path):
    model = _peft_model(tiny_model_dir, "strong")
    merger = [n for n, p in model.named_parameters() if p.requires_grad and ".merger." in n]
    assert merger and all("modules_to_save" in n for n in merger)
    assert not any("lora_" in n for n in merger)
    model.save_pretrained(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert any(k.startswith("base_model.model.model.visual.merger.mlp.0") for k in saved)
    assert any("visual.blocks.0.mlp.down_proj.lora_A" in k for k in saved)


def test_param_groups_carry_each_parts_learning_rate(tiny_model_dir):
    model = _peft_model(tiny_model_dir, "baseline")
    lrs = {"vision": 1e-5, "merger": 2e-5, "llm": 3e-5, "other": 4e-5}
    groups = lora.param_groups(model, lrs, weight_decay=0.1, decay_names=set())
    by_lr = {g["lr"]: sum(p.numel() for p in g["params"]) for g in groups}
    counts = lora.trainable_counts(model)
    assert by_lr == {1e-5: counts["vision"], 2e-5: counts["merger"], 3e-5: counts["llm"]}
    assert all(g["weight_decay"] == 0.0 for g in groups)


def test_unknown_preset_is_a_user_error(tiny_model_dir):
    model = load_model(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    with pytest.raises(UserError, match="unknown LoRA preset 'nope'"):
        lora.lora_config("nope", 8, 16, 0.0, model)
