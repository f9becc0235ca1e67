"""``me-vqa model-table``: parameter counts and LoRA trainable counts of the real model sizes.

Each size is built from its published config (the facts below, from the models' config.json
files) on the meta device, so no weights are read or allocated; every preset is applied with
peft exactly as ``finetune`` applies it, and the counts are read off the resulting model. The
memory column is an estimate from those counts (see ``memory_gb``), not a measurement.
"""

from __future__ import annotations

from vqa import lora
from vqa.cli import command_parser

_QWEN2_5_VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "fullatt_block_indexes": [7, 15, 23, 31],
    "window_size": 112,
}
_QWEN3_VL_SMALL = {"depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16}
_QWEN3_VL_8B = {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16}


def _text(hidden, intermediate, layers, heads, kv_heads, vocab, rope) -> dict:
    return {
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "vocab_size": vocab,
        "rope_parameters": {"rope_type": "default", **rope},
    }


def _qwen2_5(hidden, intermediate, layers, heads, kv_heads, vocab, tied):
    rope = {"rope_theta": 1e6, "mrope_section": [16, 24, 24]}
    text = _text(hidden, intermediate, layers, heads, kv_heads, vocab, rope)
    vision = _QWEN2_5_VISION | {"out_hidden_size": hidden}
    return "qwen2_5_vl", {"text_config": text, "vision_config": vision, "tie_word_embeddings": tied}


def _qwen3_vl(hidden, intermediate, layers, heads, kv_heads, tied, vision, deepstack):
    rope = {"rope_theta": 5e6, "mrope_section": [24, 20, 20], "mrope_interleaved": True}
    text = _text(hidden, intermediate, layers, heads, kv_heads, 151936, rope) | {"head_dim": 128}
    vision = vision | {"out_hidden_size": hidden, "deepstack_visual_indexes": deepstack}
    return "qwen3_vl", {"text_config": text, "vision_config": vision, "tie_word_embeddings": tied}


# Published configs (hidden, intermediate, layers, heads, KV heads, ...), by hub id.
SIZES = {
    "Qwen/Qwen2.5-VL-3B-Instruct": _qwen2_5(2048, 11008, 36, 16, 2, 151936, True),
    "Qwen/Qwen2.5-VL-7B-Instruct": _qwen2_5(3584, 18944, 28, 28, 4, 152064, False),
    "Qwen/Qwen3-VL-2B-Instruct": _qwen3_vl(
        2048, 6144, 28, 16, 8, True, _QWEN3_VL_SMALL, [5, 11, 17]
    ),
    "Qwen/Qwen3-VL-4B-Instruct": _qwen3_vl(
        2560, 9728, 36, 32, 8, True, _QWEN3_VL_SMALL, [5, 11, 17]
    ),
    "Qwen/Qwen3-VL-8B-Instruct": _qwen3_vl(
        4096, 12288, 36, 32, 8, False, _QWEN3_VL_8B, [8, 16, 24]
    ),
}
# (preset, LoRA rank) as the recipes in scripts/configs/ use them.
PRESET_RANKS = (("baseline", 8), ("strong", 32), ("llm_all", 8))


def meta_model(hub_id: str):
    """The model of ``hub_id`` from its published config, on the meta device (no weights)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    model_type, settings = SIZES[hub_id]
    config = AutoConfig.for_model(model_type, **settings)
    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config)


def trainable(model, preset: str, rank: int) -> dict[str, int]:
    """Trainable parameters per part when ``preset`` is applied to ``model`` (then removed)."""
    from peft import get_peft_model

    config = lora.lora_config(preset, r=rank, alpha=2 * rank, dropout=0.0, model=model)
    peft_model = get_peft_model(model, config)
    counts = lora.trainable_counts(peft_model)
    peft_model.unload()  # back to the plain model for the next preset
    return counts


def memory_gb(parameters: int, trained: int) -> float:
    """Estimated fine-tuning memory: bf16 weights (2 bytes each) plus fp32 weight, gradient and
    two Adam moments per trained parameter (16 bytes). Activations, which depend on the number
    of tokens and on checkpointing, and the CUDA context (~2 GB) come on top."""
    return (2 * parameters + 16 * trained) / 1e9


def rows() -> list[list[str]]:
    out = []
    for hub_id in SIZES:
        model = meta_model(hub_id)
        total = model.num_parameters()
        for preset, rank in PRESET_RANKS:
            c = trainable(model, preset, rank)
            parts = " / ".join(f"{c[p] / 1e6:.2f}" for p in lora.PARTS)
            out.append(
                [
                    hub_id.split("/")[1],
                    f"{total / 1e9:.3f}",
                    f"`{preset}` r={rank}",
                    f"{c['trainable'] / 1e6:.2f}",
                    parts,
                    f"{memory_gb(total, c['trainable']):.1f}",
                ]
            )
    return out


HEADER = [
    "model",
    "parameters (B)",
    "preset",
    "trainable (M)",
    "vision / merger / llm (M)",
    "weights + optimizer, GB (estimate)",
]


def main(argv: list[str]) -> int:
    command_parser("model-table", __doc__.split("\n\n")[0]).parse_args(argv)
    table = [HEADER, ["---"] * len(HEADER), *rows()]
    print("\n".join("| " + " | ".join(row) + " |" for row in table))
    return 0
