"""LoRA presets for Qwen2.5-VL, resolved to anchored regular expressions over full module paths.

Bare names collide (``gate_proj``/``up_proj``/``down_proj`` exist both in the vision blocks
and in the language model), so every target is a regex that peft full-matches against the
module's whole dotted path. Modules trained in full go through ``modules_to_save`` so that
they are saved with the adapter. Parameters are grouped into parts (vision, merger, llm) for
per-part trainable counts and per-part learning rates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from vqa.errors import UserError

# Module families of Qwen2_5_VLForConditionalGeneration, as full-path regexes.
TARGETS: dict[str, str] = {
    "vision_attn": r"model\.visual\.blocks\.\d+\.attn\.(qkv|proj)",
    "vision_mlp": r"model\.visual\.blocks\.\d+\.mlp\.(gate_proj|up_proj|down_proj)",
    "merger": r"model\.visual\.merger\.mlp\.(0|2)",
    "llm_qk": r"model\.language_model\.layers\.\d+\.self_attn\.(q_proj|k_proj)",
    "llm_attn": r"model\.language_model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)",
    "llm_all": r"model\.language_model\.layers\.\d+\."
    r"(self_attn\.(q_proj|k_proj|v_proj|o_proj)|mlp\.(gate_proj|up_proj|down_proj))",
}

# Modules that can be trained in full (names peft matches as a path suffix).
FULL_MODULES: dict[str, str] = {
    "merger": "model.visual.merger",
    "llm_norm": "model.language_model.norm",
    "lm_head": "lm_head",
}

PARTS = ("vision", "merger", "llm")
_PART_PATTERNS = (
    ("merger", re.compile(r"(^|\.)visual\.merger\.")),
    ("vision", re.compile(r"(^|\.)visual\.")),
    ("llm", re.compile(r"(^|\.)(language_model|lm_head)\.")),
)


@dataclass(frozen=True)
class Preset:
    """LoRA target families plus modules trained in full."""

    lora: tuple[str, ...]
    full: tuple[str, ...] = ()
    description: str = ""


PRESETS: dict[str, Preset] = {
    "baseline": Preset(
        ("vision_attn", "merger", "llm_qk"),
        description="MEGC2025 baseline: vision attention, merger and LLM q/k projections",
    ),
    "strong": Preset(
        ("vision_attn", "vision_mlp", "llm_all"),
        full=("merger",),
        description="vision attention+MLP and all LLM linear layers in LoRA, merger in full",
    ),
    "llm_all": Preset(("llm_all",), description="all LLM linear layers only; vision frozen"),
    "tiny": Preset(
        ("vision_attn", "vision_mlp", "llm_all"),
        full=("merger", "llm_norm", "lm_head"),
        description="the randomly initialised tiny model: strong plus the LLM's final norm and "
        "output layer, which a random model must learn before its answers take shape",
    ),
}


def preset(name: str) -> Preset:
    """The preset called ``name``; unknown names are a :class:`UserError`."""
    if name not in PRESETS:
        raise UserError(f"unknown LoRA preset {name!r}", fix=f"use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def target_regex(p: Preset) -> str:
    """One anchored alternation of the preset's LoRA families (peft full-matches it)."""
    return "^(" + "|".join(f"(?:{TARGETS[t]})" for t in p.lora) + ")$"


def modules_to_save(p: Preset) -> list[str]:
    return [FULL_MODULES[m] for m in p.full]


def lora_config(name: str, r: int, alpha: int, dropout: float):
    """A peft ``LoraConfig`` for a preset."""
    from peft import LoraConfig

    p = preset(name)
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_regex(p),
        modules_to_save=modules_to_save(p) or None,
        task_type="CAUSAL_LM",
    )


def part_of(name: str) -> str:
    """vision, merger, llm or other, from a parameter's full name."""
    for part, pattern in _PART_PATTERNS:
        if pattern.search(name):
            return part
    return "other"


def _numel(p: torch.Tensor) -> int:
    return getattr(p, "ds_numel", None) or p.numel()  # DeepSpeed ZeRO-3 partitions parameters


def trainable_counts(model: torch.nn.Module) -> dict[str, int]:
    """Trainable parameters per part, plus ``total`` and ``all`` (every parameter)."""
    counts = dict.fromkeys((*PARTS, "other"), 0)
    total = 0
    for name, p in model.named_parameters():
        total += _numel(p)
        if p.requires_grad:
            counts[part_of(name)] += _numel(p)
    counts["trainable"] = sum(counts[k] for k in (*PARTS, "other"))
    counts["all"] = total
    return counts


def format_counts(counts: dict[str, int]) -> str:
    parts = ", ".join(f"{k} {counts[k]:,}" for k in (*PARTS, "other") if counts[k])
    share = 100 * counts["trainable"] / max(counts["all"], 1)
    total = f"{counts['trainable']:,} of {counts['all']:,} ({share:.3f}%)"
    return f"trainable parameters: {total}: {parts}"


def param_groups(
    model: torch.nn.Module, lrs: dict[str, float], weight_decay: float, decay_names: set[str]
) -> list[dict]:
    """Optimizer groups per (part, decayed or not); ``lrs`` maps every part and ``other``."""
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            part = part_of(name)
            groups.setdefault((part, name in decay_names), []).append(p)
    return [
        {"params": params, "lr": lrs[part], "weight_decay": weight_decay if decay else 0.0}
        for (part, decay), params in sorted(groups.items())
    ]
