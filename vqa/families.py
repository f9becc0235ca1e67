"""The model-family registry: what me-vqa knows about each Qwen vision-language family.

One entry per ``config.model_type``. An entry names the family, maps the portable LoRA part
names to the family's module-path patterns (regexes peft full-matches against a module's whole
dotted path), and holds the processor and chat-template facts the rest of the package needs.
Nothing outside this module and the tiny-model builders names a family; adding one is one
entry here plus a tiny builder in :mod:`vqa.tiny`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vqa.errors import UserError

# Portable LoRA parts (adapters on linear layers) and what each means.
LORA_PARTS = {
    "vision_attn": "vision blocks' attention projections",
    "vision_mlp": "vision blocks' MLP",
    "merger": "the vision-language merger's linear layers",
    "deepstack": "the DeepStack mergers' linear layers",
    "llm_qk": "the language model's query/key projections",
    "llm_attn": "the language model's full-attention projections (q, k, v, o)",
    "llm_mlp": "the language model's MLP",
    "linear_attn": "the language model's linear-attention (gated delta-net) projections",
}
# Portable parts trained in full (peft modules_to_save).
FULL_PARTS = {
    "merger": "the vision-language merger",
    "deepstack": "the DeepStack mergers",
    "llm_norm": "the language model's final norm",
    "lm_head": "the output layer",
}

_VISION = r"model\.visual\.blocks\.\d+\."
_LLM = r"model\.language_model\.layers\.\d+\."
_LLM_ATTN = _LLM + r"self_attn\.(q_proj|k_proj|v_proj|o_proj)"
_LLM_QK = _LLM + r"self_attn\.(q_proj|k_proj)"
_LLM_MLP = _LLM + r"mlp\.(gate_proj|up_proj|down_proj)"
_LINEAR_ATTN = _LLM + r"linear_attn\.(in_proj_qkv|in_proj_z|in_proj_b|in_proj_a|out_proj)"
_COMMON_FULL = {"llm_norm": r"model\.language_model\.norm", "lm_head": r"lm_head"}

# Which coarse group (per-group learning rate and trainable counts) a parameter belongs to,
# by the first pattern its full name contains.
GROUPS = ("vision", "merger", "llm")
_GROUP_PATTERNS = (
    ("merger", r"(^|\.)visual\.(merger|deepstack_merger_list)\."),
    ("vision", r"(^|\.)visual\."),
    ("llm", r"(^|\.)(language_model|lm_head)\."),
)


@dataclass(frozen=True)
class Family:
    """What me-vqa knows about one model family."""

    model_type: str
    name: str
    lora: dict[str, str]  # portable part -> anchored-by-use module-path regex
    full: dict[str, str]  # portable part -> regex of modules trained in full
    patch_size: int
    merge_size: int
    default_system: str | None  # the system turn the template adds when none is given
    template_kwargs: dict = field(default_factory=dict)  # passed to apply_chat_template
    extra_tokens: tuple[str, ...] = ()  # template tokens beyond the vision/ChatML ones
    group_patterns: tuple[tuple[str, str], ...] = _GROUP_PATTERNS
    vision_tower: str = "model.visual"  # module path of the vision tower (one call per clip)
    # Whether a shared prefix's KV cache can be joined with padding between it and each row's
    # question (vqa.answering); a linear-attention layer's recurrent state would take the
    # padding in.
    joins_cache: bool = True

    @property
    def pixel_factor(self) -> int:
        """Side in pixels of one merged visual token."""
        return self.patch_size * self.merge_size


FAMILIES: dict[str, Family] = {
    "qwen2_5_vl": Family(
        model_type="qwen2_5_vl",
        name="Qwen2.5-VL",
        lora={
            "vision_attn": _VISION + r"attn\.(qkv|proj)",
            "vision_mlp": _VISION + r"mlp\.(gate_proj|up_proj|down_proj)",
            "merger": r"model\.visual\.merger\.mlp\.(0|2)",
            "llm_qk": _LLM_QK,
            "llm_attn": _LLM_ATTN,
            "llm_mlp": _LLM_MLP,
        },
        full={"merger": r"model\.visual\.merger", **_COMMON_FULL},
        patch_size=14,
        merge_size=2,
        default_system="You are a helpful assistant.",
    ),
    "qwen3_vl": Family(
        model_type="qwen3_vl",
        name="Qwen3-VL",
        lora={
            "vision_attn": _VISION + r"attn\.(qkv|proj)",
            "vision_mlp": _VISION + r"mlp\.(linear_fc1|linear_fc2)",
            "merger": r"model\.visual\.merger\.(linear_fc1|linear_fc2)",
            "deepstack": r"model\.visual\.deepstack_merger_list\.\d+\.(linear_fc1|linear_fc2)",
            "llm_qk": _LLM_QK,
            "llm_attn": _LLM_ATTN,
            "llm_mlp": _LLM_MLP,
        },
        full={
            "merger": r"model\.visual\.merger",
            "deepstack": r"model\.visual\.deepstack_merger_list\.\d+",
            **_COMMON_FULL,
        },
        patch_size=16,
        merge_size=2,
        default_system=None,
    ),
    "qwen3_5": Family(
        model_type="qwen3_5",
        name="Qwen3.5",
        lora={
            "vision_attn": _VISION + r"attn\.(qkv|proj)",
            "vision_mlp": _VISION + r"mlp\.(linear_fc1|linear_fc2)",
            "merger": r"model\.visual\.merger\.(linear_fc1|linear_fc2)",
            # every 4th layer is full attention; the others' q/k live in the fused in_proj_qkv
            "llm_qk": f"{_LLM_QK}|{_LLM}linear_attn\\.in_proj_qkv",
            "llm_attn": _LLM_ATTN,
            "llm_mlp": _LLM_MLP,
            "linear_attn": _LINEAR_ATTN,
        },
        full={"merger": r"model\.visual\.merger", **_COMMON_FULL},
        patch_size=16,
        merge_size=2,
        default_system=None,
        template_kwargs={"enable_thinking": False},  # labels never cover a think block
        extra_tokens=("<think>", "</think>"),
        joins_cache=False,  # gated delta-net layers fold every token, padding too, into a state
    ),
}


def family(model_type: str) -> Family:
    """The registry entry of ``model_type``; an unknown one is a :class:`UserError`."""
    if model_type not in FAMILIES:
        raise UserError(
            f"model type {model_type!r} is not a supported family",
            fix=f"use a model of one of {', '.join(FAMILIES)}",
        )
    return FAMILIES[model_type]


def of_model(model) -> Family:
    """The family of a loaded model (a peft wrapper forwards ``config``)."""
    return family(model.config.model_type)


def vision_tower(model):
    """The vision-tower module of a loaded model (through a peft wrapper too)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_submodule(of_model(model).vision_tower)


def template_kwargs() -> dict:
    """The chat-template variables of every family together.

    Jinja ignores variables a template does not read, so rendering any family's template with
    all of them equals rendering it with its own; the processor then needs no family label.
    """
    merged: dict = {}
    for entry in FAMILIES.values():
        for key, value in entry.template_kwargs.items():
            if merged.setdefault(key, value) != value:
                raise ValueError(f"families disagree on the template variable {key!r}")
    return merged
