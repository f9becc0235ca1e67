"""LoRA presets by portable part names, resolved per model family to anchored module paths.

Bare names collide (``gate_proj``/``up_proj``/``down_proj`` exist both in the vision blocks
and in the language model), so every target is a regex that peft full-matches against the
module's whole dotted path; the family registry (:mod:`vqa.families`) holds those regexes.
A preset part that matches no module of the loaded model is an error: peft itself says
nothing when an alternation matches fewer modules than meant. Modules trained in full go
through ``modules_to_save`` so that they are saved with the adapter. Parameters are grouped
(vision, merger, llm) for per-group trainable counts and learning rates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from vqa import families
from vqa.errors import UserError

PARTS = families.GROUPS


@dataclass(frozen=True)
class Preset:
    """Portable parts with LoRA adapters, parts trained in full, and the parts of either
    kind that are applied only where the family has them."""

    lora: tuple[str, ...]
    full: tuple[str, ...] = ()
    optional: frozenset[str] = frozenset()
    description: str = ""


PRESETS: dict[str, Preset] = {
    "baseline": Preset(
        ("vision_attn", "merger", "deepstack", "llm_qk"),
        optional=frozenset({"deepstack"}),
        description="MEGC2025 baseline: vision attention, merger (and DeepStack mergers) and "
        "LLM q/k projections",
    ),
    "strong": Preset(
        ("vision_attn", "vision_mlp", "llm_attn", "llm_mlp", "linear_attn"),
        full=("merger", "deepstack"),
        optional=frozenset({"linear_attn", "deepstack"}),
        description="vision attention+MLP and all LLM linear layers in LoRA, mergers in full",
    ),
    "llm_all": Preset(
        ("llm_attn", "llm_mlp", "linear_attn"),
        optional=frozenset({"linear_attn"}),
        description="all LLM linear layers only; vision frozen",
    ),
    "tiny": Preset(
        ("vision_attn", "vision_mlp", "llm_attn", "llm_mlp", "linear_attn"),
        full=("merger", "deepstack", "llm_norm", "lm_head"),
        optional=frozenset({"linear_attn", "deepstack"}),
        description="the randomly initialised tiny model: strong plus the LLM's final norm and "
        "output layer, which a random model must learn before its answers take shape",
    ),
}


def preset(name: str) -> Preset:
    """The preset called ``name``; unknown names are a :class:`UserError`."""
    if name not in PRESETS:
        raise UserError(f"unknown LoRA preset {name!r}", fix=f"use one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class Targets:
    """A preset resolved on one model: peft's target regex, the modules trained in full, and
    the modules each part matched."""

    target_regex: str
    modules_to_save: list[str]
    matched: dict[str, list[str]]


def _part_patterns(name: str, p: Preset, family: families.Family) -> dict[tuple[str, str], str]:
    """(kind, part) -> regex for the parts of ``p`` this family has; a required part it lacks
    is a :class:`UserError`."""
    patterns = {}
    for kind, parts, table in (("lora", p.lora, family.lora), ("full", p.full, family.full)):
        for part in parts:
            if part in table:
                patterns[kind, part] = table[part]
            elif part not in p.optional:
                raise UserError(
                    f"LoRA preset {name!r} needs the part {part!r}, which {family.name} "
                    f"({family.model_type}) does not have",
                    fix="choose another --preset",
                )
    return patterns


def check_family(name: str, family: families.Family) -> None:
    """Stop early when preset ``name`` needs a part ``family`` does not have."""
    _part_patterns(name, preset(name), family)


def resolve(name: str, model: torch.nn.Module) -> Targets:
    """The preset ``name`` on ``model``; a part that matches no module is a :class:`UserError`."""
    family = families.of_model(model)
    modules = [n for n, _ in model.named_modules()]
    patterns = _part_patterns(name, preset(name), family)
    matched = {}
    for (kind, part), pattern in patterns.items():
        matched[f"{kind}:{part}"] = [n for n in modules if re.fullmatch(pattern, n)]
        if not matched[f"{kind}:{part}"]:
            raise UserError(
                f"LoRA preset {name!r}: part {part!r} matches no module of this "
                f"{family.name} model ({family.model_type})",
                fix="check the model's module names against vqa/families.py",
            )
    lora_rx = [rx for (kind, _), rx in patterns.items() if kind == "lora"]
    full = [n for (kind, part) in patterns if kind == "full" for n in matched[f"full:{part}"]]
    return Targets("^(" + "|".join(f"(?:{rx})" for rx in lora_rx) + ")$", full, matched)


def lora_config(name: str, r: int, alpha: int, dropout: float, model: torch.nn.Module):
    """A peft ``LoraConfig`` for preset ``name`` resolved on ``model``."""
    from peft import LoraConfig

    targets = resolve(name, model)
    return LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets.target_regex,
        modules_to_save=targets.modules_to_save or None,
        task_type="CAUSAL_LM",
    )


def part_of(name: str, family: families.Family) -> str:
    """vision, merger, llm or other, from a parameter's full name."""
    for part, pattern in family.group_patterns:
        if re.search(pattern, name):
            return part
    return "other"


def _numel(p: torch.Tensor) -> int:
    return getattr(p, "ds_numel", None) or p.numel()  # DeepSpeed ZeRO-3 partitions parameters


def trainable_counts(model: torch.nn.Module) -> dict[str, int]:
    """Trainable parameters per part, plus ``total`` and ``all`` (every parameter)."""
    family = families.of_model(model)
    counts = dict.fromkeys((*PARTS, "other"), 0)
    total = 0
    for name, p in model.named_parameters():
        total += _numel(p)
        if p.requires_grad:
            counts[part_of(name, family)] += _numel(p)
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
    family = families.of_model(model)
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            part = part_of(name, family)
            groups.setdefault((part, name in decay_names), []).append(p)
    return [
        {"params": params, "lr": lrs[part], "weight_decay": weight_decay if decay else 0.0}
        for (part, decay), params in sorted(groups.items())
    ]
