"""Benchmark: ``me-vqa infer`` throughput with the tiny model on CPU, by batch size and input.

Writes a folder of oao rows (3 pictures each) and video rows (8 frames each) asking the
organisers' five questions per clip, then for each input kind and batch size times one run
of the command's own steps: loading the model and processor, answering every question
(prompts, picture loading, processor, generate, decoding, the partial file) and writing the
answers. End-of-answer tokens are ignored, so every question generates its full budget from
prompts/inference.yaml and every batch size does the same work. Each run is repeated and
the fastest kept (the machine may be shared). Prints questions per second, the ratio to
batch size 1 and the share of the run spent outside the model's ``generate`` (loading,
processor, decoding, files).

    python scripts/bench/infer.py [--clips 16] [--size 128] [--batch-sizes 1 4 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vqa import infer
from vqa.jsonl import write_jsonl
from vqa.prompts import official

FRAMES = {"oao": 3, "video": 8}


def write_inputs(folder: Path, kind: str, clips: int, size: int) -> Path:
    """inputs.jsonl with ``clips`` clips of ``kind`` inputs, the five official questions each."""
    q = official()["questions"]
    questions = [
        q["coarse"],
        q["fine"],
        q["au_many"],
        q["yes_no"].format(au="dimpler"),
        q["combined_many"],
    ]
    rng = np.random.default_rng(0)
    rows = []
    for clip in range(clips):
        names = [f"{kind}/c{clip}_{n}.png" for n in range(FRAMES[kind])]
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name)
        visual = {"images": names} if kind == "oao" else {"frames": names}
        rows += [
            {
                "id": f"bench_c{clip}_{k}",
                "image_id": f"c{clip}",
                "question": text,
                "answer": "",
                "mode": kind,
                **visual,
            }
            for k, text in enumerate(questions, 1)
        ]
    path = folder / f"{kind}.jsonl"
    write_jsonl(path, rows)
    return path


def timed_generate(model, clock: list[float]) -> None:
    """Make ``model.generate`` add its wall time to ``clock[0]``."""
    generate = model.generate

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return generate(*args, **kwargs)
        finally:
            clock[0] += time.perf_counter() - start

    model.generate = wrapper


def run_once(model_dir: Path, inputs: Path, batch_size: int) -> dict:
    """One timed run of infer's steps; returns its timings."""
    out = inputs.with_name(f"answers-{inputs.stem}-{batch_size}.jsonl")
    args = infer.parse_args(
        [
            "--model",
            str(model_dir),
            "--inputs",
            str(inputs),
            "--out",
            str(out),
            "--batch-size",
            str(batch_size),
            "--dtype",
            "float32",
        ]
    )
    start = time.perf_counter()
    rows = infer.question_rows(args.inputs)
    model, processor = infer.load(str(model_dir), args)
    loaded = time.perf_counter()
    model.generation_config.eos_token_id = None  # every answer runs to its full budget
    clock = [0.0]
    timed_generate(model, clock)
    partial = infer.partial_path(out)
    sink = infer.appender(partial, {"bench": batch_size}, fresh=True)
    answers = infer.answer_rows(model, processor, rows, inputs.parent, args, {}, sink)
    answered = time.perf_counter()
    write_jsonl(out, infer.answer_file_rows(rows, [answers[i] for i in range(len(rows))], False))
    partial.unlink()
    total = time.perf_counter() - start
    return {
        "questions": len(rows),
        "load_s": loaded - start,
        "answer_s": answered - loaded,
        "model_s": clock[0],
        "total_s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clips", type=int, default=16, help="clips per input kind (5 questions each)"
    )
    parser.add_argument("--size", type=int, default=128, help="side of the square pictures")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--repeats", type=int, default=2, help="runs per setting; fastest kept")
    args = parser.parse_args()
    import torch

    from vqa.tiny import tiny_model_path

    torch.manual_seed(0)
    model_dir = tiny_model_path()
    print(f"torch threads: {torch.get_num_threads()}, tiny model: {model_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in FRAMES:
            inputs = write_inputs(Path(tmp), kind, args.clips, args.size)
            run_once(model_dir, inputs, args.batch_sizes[-1])  # warm-up: imports, caches
            print(
                f"\n{kind}: {args.clips * 5} questions, {FRAMES[kind]} pictures of "
                f"{args.size}x{args.size} per question"
            )
            print(
                f"{'batch':>5} {'q/s':>7} {'x bs1':>6} {'load s':>7} {'answer s':>8} "
                f"{'model s':>8} {'outside model':>13}"
            )
            base = None
            for batch_size in args.batch_sizes:
                runs = [run_once(model_dir, inputs, batch_size) for _ in range(args.repeats)]
                t = min(runs, key=lambda r: r["total_s"])
                rate = t["questions"] / t["total_s"]
                base = base or rate
                outside = 1 - t["model_s"] / t["total_s"]
                print(
                    f"{batch_size:>5} {rate:>7.2f} {rate / base:>6.2f} {t['load_s']:>7.2f} "
                    f"{t['answer_s']:>8.2f} {t['model_s']:>8.2f} {outside:>12.0%}"
                )


if __name__ == "__main__":
    main()
