"""Benchmark: ``me-vqa infer`` throughput with the tiny model on CPU, by batch size and input,
against today's per-question path run in the same process.

Writes a folder of oao rows (3 pictures each) and video rows (8 frames each) asking the
organisers' five questions per clip, then for each input kind and batch size times one run
of the command's own steps: loading the model and processor, answering every question
(prompts, picture loading, processor, the model, decoding, the partial file) and writing the
answers. It does so twice: with ``vqa.answering`` (each clip's pictures processed and its
shared prefix prefilled once) and with today's per-question path (batches of one answer budget
through ``vqa.model.generate``, every question processing and encoding its pictures again).
End-of-answer tokens are ignored, so every question generates its full budget (its question
type's, vqa/question_types.py) and every run does the same work. Each run is repeated and the
fastest kept (the machine may be shared). Prints questions per second, the ratio to today's
path, the share spent outside the model (its ``generate`` and the prefix prefill) of the whole
run and of the answering step alone (the run less loading the model and checking the rows), and how
many times each clip's pictures went through the picture processor and the vision tower,
counted by hooks: calls per clip, and pictures (images or videos) per clip picture.

    python scripts/bench/infer.py [--clips 16] [--size 128] [--batch-sizes 1 4 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vqa import families, infer, records
from vqa.jsonl import write_jsonl
from vqa.prompts import build_messages, official
from vqa.question_types import budget

FRAMES = {"oao": 3, "video": 8}
PICTURES = {"oao": 3, "video": 1}  # images or videos shown per clip


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


def todays_answer_rows(model, processor, rows, base_dir, args, done, sink):
    """Today's per-question path: batches of one budget, each question encoded on its own."""
    from vqa.model import generate

    answers = dict(done)
    groups: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(budget(row["question"], args.max_new_tokens), []).append(i)
    for size, ids in groups.items():
        for s in range(0, len(ids), args.batch_size):
            batch = ids[s : s + args.batch_size]
            conversations = [build_messages(rows[i], base_dir, args.prompt_style) for i in batch]
            texts = generate(
                model, processor, conversations, max_new_tokens=size, batch_size=len(batch),
                progress=False,
            )  # fmt: skip
            new = dict(zip(batch, texts, strict=True))
            sink(new)
            answers.update(new)
    return answers


def instrument(model, processor, counts: dict) -> None:
    """Count model time (``generate`` and forward passes outside it), picture-processor calls
    and pictures, vision-tower calls and pictures, into ``counts``."""
    generate = model.generate
    state = {"inside": False, "start": 0.0}

    def timed_generate(*args, **kwargs):
        start, state["inside"] = time.perf_counter(), True
        try:
            return generate(*args, **kwargs)
        finally:
            state["inside"] = False
            counts["model_s"] += time.perf_counter() - start

    def before(*_):
        state["start"] = time.perf_counter()

    def after(*_):
        if not state["inside"]:
            counts["model_s"] += time.perf_counter() - state["start"]

    model.generate = timed_generate
    model.register_forward_pre_hook(before)
    model.register_forward_hook(after)

    def encoded(_module, args, kwargs):
        counts["vision_calls"] += 1
        counts["vision_pictures"] += len(kwargs.get("grid_thw", args[1] if len(args) > 1 else []))

    families.vision_tower(model).register_forward_pre_hook(encoded, with_kwargs=True)
    for part in (processor.image_processor, processor.video_processor):
        part.preprocess = counted(part.preprocess, counts)


def counted(preprocess, counts: dict):
    def wrapper(pictures, *args, **kwargs):
        counts["processor_calls"] += 1
        counts["processor_pictures"] += len(pictures)
        return preprocess(pictures, *args, **kwargs)

    return wrapper


def run_once(model_dir: Path, inputs: Path, batch_size: int, answer_rows) -> dict:
    """One timed run of infer's steps answering with ``answer_rows``; returns its measures."""
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
    records._resolved.cache_clear()  # each run resolves its paths as a fresh process would
    start = time.perf_counter()
    rows = infer.question_rows(args.inputs)
    model, processor = infer.load(str(model_dir), args)
    loaded = time.perf_counter()
    model.generation_config.eos_token_id = None  # every answer runs to its full budget
    counts = dict.fromkeys(
        ("model_s", "processor_calls", "processor_pictures", "vision_calls", "vision_pictures"), 0
    )
    instrument(model, processor, counts)
    partial = infer.partial_path(out)
    sink = infer.appender(partial, {"bench": batch_size}, fresh=True)
    answers = answer_rows(model, processor, rows, inputs.parent, args, {}, sink)
    answered = time.perf_counter()
    write_jsonl(out, infer.answer_file_rows(rows, [answers[i] for i in range(len(rows))], False))
    partial.unlink()
    total = time.perf_counter() - start
    return {
        **counts,
        "questions": len(rows),
        "clips": len({tuple(r.get("images") or r.get("frames")) for r in rows}),
        "answers": out.read_bytes(),
        "load_s": loaded - start,
        "answer_s": answered - loaded,
        "total_s": total,
    }


def fastest(model_dir: Path, inputs: Path, batch_size: int, answer_rows, repeats: int) -> dict:
    runs = [run_once(model_dir, inputs, batch_size, answer_rows) for _ in range(repeats)]
    return min(runs, key=lambda r: r["total_s"])


def row_text(kind: str, batch_size: int, label: str, t: dict, base: dict) -> str:
    rate = t["questions"] / t["total_s"]
    ratio = rate / (base["questions"] / base["total_s"])
    clips, pictures = t["clips"], t["clips"] * PICTURES[kind]
    return (
        f"{kind:>5} {batch_size:>5} {label:>8} {rate:>7.2f} {ratio:>7.2f} {t['load_s']:>6.2f} "
        f"{t['answer_s']:>8.2f} {t['model_s']:>7.2f} {1 - t['model_s'] / t['total_s']:>8.0%} "
        f"{1 - t['model_s'] / t['answer_s']:>8.0%} "
        f"{t['processor_calls'] / clips:>9.2f} {t['processor_pictures'] / pictures:>9.2f} "
        f"{t['vision_calls'] / clips:>9.2f} {t['vision_pictures'] / pictures:>9.2f}"
    )


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
    print(
        f"{args.clips * 5} questions per input kind (5 per clip), {args.size} px pictures; "
        "proc = picture processor, vis = vision tower: calls per clip, pictures per clip picture"
    )
    print(
        f"{'input':>5} {'batch':>5} {'path':>8} {'q/s':>7} {'x today':>7} {'load s':>6} "
        f"{'answer s':>8} {'model s':>7} {'out run':>8} {'out ans':>8} {'proc call':>9} "
        f"{'proc pic':>9} {'vis call':>9} {'vis pic':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind in FRAMES:
            inputs = write_inputs(Path(tmp), kind, args.clips, args.size)
            run_once(model_dir, inputs, args.batch_sizes[-1], infer.answer_rows)  # warm-up
            for batch_size in args.batch_sizes:
                today = fastest(model_dir, inputs, batch_size, todays_answer_rows, args.repeats)
                new = fastest(model_dir, inputs, batch_size, infer.answer_rows, args.repeats)
                if new["answers"] != today["answers"]:
                    raise SystemExit(f"{kind} batch {batch_size}: answers differ from today's path")
                print(row_text(kind, batch_size, "today", today, today))
                print(row_text(kind, batch_size, "by clip", new, today))


if __name__ == "__main__":
    main()
