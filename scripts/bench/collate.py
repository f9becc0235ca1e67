"""CPU cost per training sample of loading its pictures, running the processor and collating.

For each input mode (video, oao, flow, video+flow) at a given picture size, this writes
synthetic pictures, times ``vqa.collator.TrainCollator`` on batches of them in one process
(= one data-loader worker) and, next to it, the tiny model's forward + backward per sample.
The processor is the tiny model's: it runs the same Qwen2-VL image and video processing code
as Qwen2.5-VL-3B, with its pixel limits raised so that pictures keep their size.

    python scripts/bench/collate.py --size 448 --frames 8 --batches 5 [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vqa.collator import TrainCollator
from vqa.model import load_model, load_processor
from vqa.prompts import official
from vqa.tiny import tiny_model_path

MODES = ("video", "oao", "flow", "video+flow")


def picture(path: Path, size: int, seed: int) -> str:
    """A smooth random face-sized picture (JPEG, like database frames)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
    Image.fromarray(small).resize((size, size), Image.BICUBIC).save(path, quality=90)
    return path.name


def rows_for(mode: str, folder: Path, count: int, size: int, frames: int) -> list[dict]:
    """``count`` coarse-question rows of one mode, each with its own pictures."""
    rows = []
    for i in range(count):
        row = {
            "id": f"bench_{i}",
            "question": official()["questions"]["coarse"],
            "answer": "negative",
        }
        images = []
        if mode == "oao":
            images = [picture(folder / f"{mode}_{i}_{k}.jpg", size, i * 10 + k) for k in range(3)]
        if "flow" in mode:
            images = [picture(folder / f"{mode}_{i}_flow.jpg", size, i)]
            row["flow_legend"] = "red is upward motion."
        if "video" in mode:
            row["frames"] = [
                picture(folder / f"{mode}_{i}_f{k}.jpg", size, i * 100 + k) for k in range(frames)
            ]
        rows.append(row | ({"images": images} if images else {}))
    return rows


def time_per_sample(fn, rows: list[dict], batch: int) -> float:
    """Median seconds per sample of ``fn`` over the batches of ``rows`` (first batch = warm-up)."""
    times = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        began = time.perf_counter()
        fn(chunk)
        times.append((time.perf_counter() - began) / len(chunk))
    return statistics.median(times[1:] or times)


def bench(size: int, frames: int, batches: int, batch: int) -> list[dict]:
    model_dir = tiny_model_path()
    processor = load_processor(
        model_dir, min_pixels=4 * 28 * 28, max_pixels=size * size, padding_side="right"
    )
    model = load_model(model_dir, dtype=torch.float32, attn_implementation="sdpa").train()
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            rows = rows_for(mode, Path(tmp), batch * (batches + 1), size, frames)
            collator = TrainCollator(processor, tmp, "plain", max_length=65536)
            collate = time_per_sample(collator, rows, batch)
            step = time_per_sample(
                lambda chunk, c=collator: model(**c(chunk)).loss.backward(), rows, batch
            )
            tokens = int(collator(rows[:1])["attention_mask"].sum())
            results.append(
                {
                    "mode": mode,
                    "collate_ms": 1000 * collate,
                    "tiny_fwd_bwd_ms": 1000 * (step - collate),
                    "tokens": tokens,
                }
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=448, help="picture side in pixels")
    parser.add_argument("--frames", type=int, default=8, help="frames per video (even)")
    parser.add_argument("--batches", type=int, default=5, help="timed batches per mode")
    parser.add_argument("--batch", type=int, default=4, help="samples per batch")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    results = bench(args.size, args.frames, args.batches, args.batch)
    print(
        f"| mode ({args.size} px, {args.frames} frames) "
        "| collate ms/sample | tiny fwd+bwd ms/sample | tokens |"
    )
    print("|---|---|---|---|")
    for r in results:
        print(
            f"| {r['mode']} | {r['collate_ms']:.1f} | {r['tiny_fwd_bwd_ms']:.1f} | {r['tokens']} |"
        )
    if args.out:
        args.out.write_text(
            json.dumps(
                {"settings": vars(args) | {"out": str(args.out)}, "results": results}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
