"""``me-vqa merge``: fold a LoRA adapter into its base model and save a plain full model.

The result loads with ``AutoModelForImageTextToText.from_pretrained`` alone (no peft)
and carries the adapter's processor. It is written into a temporary sibling folder and renamed
into place, so an interrupted merge never leaves a folder that looks complete.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.jsonl import atomic_folder, write_text_atomic
from vqa.model import DTYPES, adapter_base, resolve_dtype, run_record


def trained_dtype(adapter: Path) -> str:
    """The dtype the adapter was trained in (run.json), float32 when unknown."""
    dtype = run_record(adapter).get("dtype")
    return dtype if dtype in DTYPES else "float32"


def merge(adapter: Path, out: Path, base: str | None = None, dtype: str = "auto") -> Path:
    """Merge ``adapter`` into ``base`` (default: its own base) in float32, save as ``dtype``."""
    from peft import PeftModel

    from vqa.model import load_model, load_processor

    named = adapter_base(adapter)  # validates the folder even when base is given
    base = base or named
    if not base:
        config = adapter / "adapter_config.json"
        raise UserError("adapter_config.json names no base model", file=config, fix="pass --model")
    if out.exists() and any(out.iterdir()):
        raise UserError("output folder is not empty", file=out, fix="choose a new folder")
    if not out.parent.is_dir():
        raise UserError("parent folder does not exist", file=out.parent, fix="create it first")
    save_dtype = resolve_dtype(trained_dtype(adapter) if dtype == "auto" else dtype)
    model = load_model(base, dtype=torch.float32, attn_implementation="sdpa")
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    has_processor = (adapter / "processor_config.json").is_file()
    processor = load_processor(adapter if has_processor else base)
    with atomic_folder(out) as scratch:
        merged.to(save_dtype).save_pretrained(scratch, safe_serialization=True)
        processor.save_pretrained(scratch)
        record = {
            "adapter": str(adapter.resolve()),
            "base_model": base,
            "dtype": str(save_dtype)[6:],
        }
        write_text_atomic(scratch / "merge.json", json.dumps(record, indent=2) + "\n")
    return out


def main(argv: list[str]) -> int:
    parser = command_parser("merge")
    parser.add_argument(
        "--adapter", type=Path, required=True, help="adapter folder from me-vqa finetune"
    )
    parser.add_argument("--out", type=Path, required=True, help="new folder for the merged model")
    parser.add_argument("--model", help="base model; left out: the one in adapter_config.json")
    parser.add_argument(
        "--dtype",
        choices=("auto", *DTYPES),
        default="auto",
        help="dtype of the saved weights; auto = the training dtype in run.json",
    )
    args = parser.parse_args(argv)
    out = merge(args.adapter, args.out, args.model, args.dtype)
    print(f"merged model saved to {out}")
    return 0
