"""``me-vqa infer``: answer ME-VQA questions in batch, zero-shot or with a LoRA adapter.

Answers are appended batch by batch to ``<out>.partial`` (a header line names the run), so a
killed run resumes where it stopped; the final file is written atomically in input order.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from vqa import folds
from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.jsonl import (
    check_output_file,
    check_output_folder,
    dumps,
    make_folder,
    read_jsonl,
    write_jsonl,
)
from vqa.lvqa import merge_windows
from vqa.model import DEFAULT_MODEL, DTYPES, adapter_base, run_record
from vqa.prompts import PROMPT_STYLES, load_yaml
from vqa.question_types import make_consistent, question_type, submission_name
from vqa.records import VIDEO_ANSWER_KEY, check_row, parse_video_id, qa_part

SUBMISSION_FIELDS = ("video_id", "video", "question", "answer")
PARTIAL_FORMAT = 1


# ---------------------------------------------------------------- arguments and validation


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = command_parser("infer")
    parser.add_argument(
        "--model",
        help="hub id or folder of the base model; when not given, the adapter's base model, "
        f"else {DEFAULT_MODEL}",
    )
    parser.add_argument("--adapter", type=Path, help="LoRA adapter folder (peft save_pretrained)")
    parser.add_argument("--inputs", type=Path, required=True, help="inputs.jsonl from build-inputs")
    parser.add_argument("--out", type=Path, required=True, help="answers jsonl to write")
    parser.add_argument("--batch-size", type=int, default=8, help="questions per generate call")
    parser.add_argument(
        "--prompt-style",
        choices=PROMPT_STYLES,
        help="default: the style the adapter was trained with (its run.json), else plain",
    )
    parser.add_argument(
        "--consistency",
        action="store_true",
        help="make the answers about one clip agree (raw answers kept)",
    )
    parser.add_argument(
        "--submission-dir", type=Path, help="also write the challenge submission files here"
    )
    parser.add_argument(
        "--challenge",
        choices=("2025", "2026"),
        default="2025",
        help="submission file names: 2026 writes ME-VQA-v2's me_vqa_<db>_v2_test_pred.jsonl",
    )
    parser.add_argument(
        "--dtype",
        choices=("auto", *DTYPES),
        default="auto",
        help="auto: bfloat16 on a GPU that supports it, else float32",
    )
    parser.add_argument(
        "--attn-implementation",
        default=None,
        help="attention kernel; when not given, flash_attention_2 on a GPU with flash-attn, "
        "else sdpa",
    )
    parser.add_argument("--min-pixels", type=int, help="processor lower pixel limit per image")
    parser.add_argument("--max-pixels", type=int, help="processor upper pixel limit per image")
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        help="cap on the answer length budgets of the question types (vqa/question_types.py)",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard answers of an earlier, different run instead of refusing",
    )
    folds.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.batch_size < 1 or (args.max_new_tokens is not None and args.max_new_tokens < 1):
        parser.error("--batch-size and --max-new-tokens must be at least 1")
    args.prompt_style = args.prompt_style or trained_prompt_style(args.adapter)
    return args


def trained_prompt_style(adapter: Path | None) -> str:
    """The prompt style an adapter was fine-tuned with (plain without an adapter or record)."""
    return run_record(adapter).get("prompt_style", "plain")


def _same_model(a: str, b: str) -> bool:
    """Whether two model names or folders name the same model."""
    if Path(a).exists() and Path(b).exists():
        return Path(a).resolve() == Path(b).resolve()
    return a.rstrip("/") == b.rstrip("/")


def resolve_model(model: str | None, adapter: Path | None) -> str:
    """The base model to load; an adapter made for another base model is refused."""
    if adapter is None:
        return model or DEFAULT_MODEL
    base = adapter_base(adapter)
    if model is None:
        return base or DEFAULT_MODEL
    if base and not _same_model(base, model):
        raise UserError(
            f"adapter was trained on {base!r} but --model is {model!r}",
            file=adapter / "adapter_config.json",
            fix="pass the adapter's base model as --model",
        )
    return model


def question_rows(path: Path) -> list[dict]:
    """inputs.jsonl rows, each checked for a question and existing visual files."""
    rows = read_jsonl(path)
    for lineno, row in enumerate(rows, 1):
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            raise UserError(
                "row has no question",
                file=path,
                row=lineno,
                fix="every row needs a non-empty 'question'",
            )
        check_row(row, path.parent, path, lineno)
    return rows


# ---------------------------------------------------------------- run identity and resuming


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _folder_fingerprint(folder: Path) -> str:
    """Cheap identity of a model folder: names, sizes and mtimes of its weight/config files."""
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".json"))
    blob = json.dumps([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])
    return hashlib.sha256(blob.encode()).hexdigest()


def run_identity(args: argparse.Namespace, model: str) -> dict:
    """What decides the raw answers: a partial file from a run with another identity is refused."""
    model_dir = Path(model)
    adapter = args.adapter
    return {
        "format": PARTIAL_FORMAT,
        "model": str(model_dir.resolve()) if model_dir.is_dir() else model,
        "model_files": _folder_fingerprint(model_dir) if model_dir.is_dir() else None,
        "adapter": str(adapter.resolve()) if adapter else None,
        "adapter_sha256": _sha256(adapter / "adapter_model.safetensors") if adapter else None,
        "prompt_style": args.prompt_style,
        "prompts_sha256": hashlib.sha256(dumps(load_yaml("inference")).encode()).hexdigest(),
        "inputs_sha256": _sha256(args.inputs),
        "holdout": folds.holdout_subjects(args.holdout_subjects, args.folds, args.fold),
        "dtype": args.dtype,
        "attn_implementation": args.attn_implementation,
        "pixels": [args.min_pixels, args.max_pixels],
        "max_new_tokens": args.max_new_tokens,
    }


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def load_partial(path: Path, identity: dict, restart: bool) -> dict[int, str]:
    """Answers already in ``path`` (a truncated last line is cut off); {} for a new run."""
    if not path.is_file() or restart:
        path.unlink(missing_ok=True)
        return {}
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    entries = _partial_entries(complete.decode("utf-8", errors="replace").splitlines(), path)
    header = entries[0].get("run") if entries else None
    if header != identity and len(entries) <= 1:  # nothing answered yet: nothing to protect
        path.unlink()
        return {}
    if header != identity:
        changed = sorted(k for k in identity if not header or header.get(k) != identity[k])
        raise UserError(
            f"unfinished answers from another run ({', '.join(changed)} differ)",
            file=path,
            fix="rerun with the same arguments, or add --restart to start over",
        )
    if len(complete) != len(data):
        with path.open("r+b") as f:
            f.truncate(len(complete))
    return {entry["index"]: entry["answer"] for entry in entries[1:]}


def _partial_entries(lines: list[str], path: Path) -> list[dict]:
    """The header and answer entries of a partial file; a line infer did not write is refused."""
    entries = []
    for lineno, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not _is_entry(entry, header=lineno == 1):
            raise UserError(
                "not a line of infer's unfinished answers",
                file=path,
                row=lineno,
                fix="add --restart to start over, or delete the file",
            )
        entries.append(entry)
    return entries


def _is_entry(entry, header: bool) -> bool:
    if not isinstance(entry, dict):
        return False
    return header or isinstance(entry.get("index"), int) and isinstance(entry.get("answer"), str)


# ---------------------------------------------------------------- generation


def answer_rows(
    model, processor, rows: list[dict], base_dir: Path, args: argparse.Namespace, done, sink
) -> dict[int, str]:
    """Answers for all rows: ``done`` plus new ones, each batch handed to ``sink`` at once."""
    from vqa.answering import answer_rows

    return answer_rows(
        model,
        processor,
        rows,
        style=args.prompt_style,
        batch_size=args.batch_size,
        base_dir=base_dir,
        cap=args.max_new_tokens,
        done=done,
        sink=sink,
    )


def appender(path: Path, identity: dict, fresh: bool):
    """A sink that appends answers to the partial file and forces them to disk; a fresh file is
    started, header first, with the first answers (a model that fails to load leaves none)."""

    def write(answers: dict[int, str]) -> None:
        nonlocal fresh
        with path.open("w" if fresh else "a", encoding="utf-8") as f:
            if fresh:
                f.write(dumps({"run": identity}) + "\n")
            f.write("".join(dumps({"index": i, "answer": a}) + "\n" for i, a in answers.items()))
            f.flush()
            os.fsync(f.fileno())
        fresh = False

    return write


def load(model_name: str, args: argparse.Namespace):
    """Model (with the adapter applied) and processor (the adapter's own when it has one)."""
    from vqa.model import load_model, load_processor, resolve_dtype

    dtype = resolve_dtype(args.dtype)
    model = load_model(model_name, dtype=dtype, attn_implementation=args.attn_implementation)
    has_processor = args.adapter and (args.adapter / "processor_config.json").is_file()
    processor = load_processor(
        str(args.adapter if has_processor else model_name),
        min_pixels=args.min_pixels,
        max_pixels=args.max_pixels,
        padding_side="left",
    )
    if args.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(args.adapter), is_trainable=False)
    return model.eval(), processor


# ---------------------------------------------------------------- outputs


def answer_file_rows(rows: list[dict], answers: list[str], consistency: bool) -> list[dict]:
    """The qa rows with ``answer`` filled (a question asked per spotting window once, its
    windows' answers merged), plus ``raw_answer`` where --consistency changed it."""
    rows, answers = merge_windows(rows, answers)
    qa = [qa_part(r) for r in rows]
    final = answers
    if consistency:
        final = make_consistent(qa, answers)
    out = []
    for row, answer, raw in zip(qa, final, answers, strict=True):
        row = {**row, "answer": answer}
        if answer != raw:
            row["raw_answer"] = raw
        out.append(row)
    return out


def true_answer_rows(rows: list[dict]) -> list[dict]:
    """Rows with their own answers as an answer file: the ground truth ``score`` compares an
    answer file with. A question asked per spotting window is one row with the video's own
    answer, which its window rows carry (``video_answer``; joining the windows' answers would
    make two true events that touch one)."""
    rows, answers = merge_windows(rows, [r["answer"] for r in rows])
    return [
        {**qa_part(row), "answer": row.get(VIDEO_ANSWER_KEY, answer)}
        for row, answer in zip(rows, answers, strict=True)
    ]


def check_submission_rows(rows: list[dict], inputs: Path, challenge: str) -> None:
    """A submission answers the challenge test files: every row must be one of their rows, and
    ME-VQA-v2's analysis questions go into the 2026 files."""
    for lineno, row in enumerate(rows, 1):
        video_id = row.get("video_id")
        if not isinstance(video_id, str) or parse_video_id(video_id) is None:
            raise UserError(
                "a submission needs the challenge test rows (video_id like samm_test_SAMM-1_1)",
                file=inputs,
                row=lineno,
                fix="build the inputs from the test files, or drop --submission-dir",
            )
        if challenge == "2025" and question_type(row["question"]) == "analysis":
            raise UserError(
                "an ME-VQA-v2 analysis question (MEGC2026) would go into a MEGC2025 submission "
                "file",
                file=inputs,
                row=lineno,
                fix="add --challenge 2026 (the me_vqa_<db>_v2_test_pred.jsonl names)",
            )


def write_submissions(answers: list[dict], folder: Path, challenge: str) -> None:
    """One file per test file: its rows in order, fields video_id, video, question, answer."""
    files: dict[str, list[dict]] = {}
    for row in answers:
        name = submission_name(row, challenge)
        files.setdefault(name, []).append({key: row[key] for key in SUBMISSION_FIELDS})
    make_folder(folder)
    for name, entries in files.items():
        write_jsonl(folder / name, entries)
        print(f"wrote {folder / name} ({len(entries)} rows)", file=sys.stderr)


# ---------------------------------------------------------------- command


def check_single_process() -> None:
    """infer answers in one process: under a launcher every rank would load onto the same GPU
    and append to the same unfinished-answers file."""
    world = os.environ.get("WORLD_SIZE", "1")
    if world != "1":
        raise UserError(
            f"infer runs as one process, not {world} (WORLD_SIZE is set by a launcher)",
            fix="run me-vqa infer directly, not under accelerate launch or torchrun; for several "
            "GPUs run one infer per GPU with CUDA_VISIBLE_DEVICES and its own --inputs",
        )


def check_outputs(args: argparse.Namespace, rows: list[dict]) -> None:
    """Refuse output places that cannot be written before any work is done."""
    check_output_file(args.out)
    if args.submission_dir:
        check_submission_rows(rows, args.inputs, args.challenge)
        check_output_folder(args.submission_dir)
    make_folder(args.out.parent)  # the unfinished answers are kept beside the answers


def generate_missing(args: argparse.Namespace, model_name: str, rows: list[dict], done, sink):
    """Load the model and answer the rows not in ``done``; reports the rate on stderr."""
    model, processor = load(model_name, args)
    start = time.perf_counter()
    answers = answer_rows(model, processor, rows, args.inputs.parent, args, done, sink)
    elapsed = time.perf_counter() - start
    answered = len(rows) - len(done)
    resumed = f", {len(done)} from the unfinished earlier run" if done else ""
    print(
        f"answered {answered} questions in {elapsed:.1f} s "
        f"({answered / elapsed:.2f} questions/s){resumed}",
        file=sys.stderr,
    )
    return answers


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    check_single_process()
    model_name = resolve_model(args.model, args.adapter)
    rows = folds.held_out_rows(question_rows(args.inputs), args, args.inputs)
    check_outputs(args, rows)
    identity = run_identity(args, model_name)
    partial = partial_path(args.out)
    done = load_partial(partial, identity, args.restart)
    sink = appender(partial, identity, fresh=not partial.is_file())
    answers = (
        generate_missing(args, model_name, rows, done, sink) if len(done) < len(rows) else done
    )
    out_rows = answer_file_rows(rows, [answers[i] for i in range(len(rows))], args.consistency)
    write_jsonl(args.out, out_rows)
    if args.submission_dir:
        write_submissions(out_rows, args.submission_dir, args.challenge)
    partial.unlink()
    changed = f", {sum('raw_answer' in r for r in out_rows)} changed by --consistency"
    print(
        f"wrote {args.out} ({len(out_rows)} answers{changed if args.consistency else ''})",
        file=sys.stderr,
    )
    return 0
