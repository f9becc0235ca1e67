"""``me-vqa crossval``: fine-tune once per fold and pool the held-out answers of all folds.

``--protocol loso`` makes one fold per subject of the training inputs; ``--folds FILE`` uses
the folds written by ``me-vqa split`` (LOSO or k-fold). Every fold is an ordinary
``me-vqa finetune`` run into ``<output_dir>/fold_NN``; a fold whose run.json exists is skipped
and one with checkpoints resumes from its last, so an interrupted study picks up where it
stopped. UF1 and UAR are computed once over the pooled answers of all folds, the way
micro-expression papers report LOSO results, and written to ``<output_dir>/crossval.json``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from vqa.args import Arguments, parse_args, with_overrides
from vqa.errors import UserError
from vqa.folds import check_subjects, natural_key, read_folds, subject_of
from vqa.jsonl import read_jsonl, write_text_atomic
from vqa.model import run_record

DESCRIPTION = (
    "Run me-vqa finetune over every fold (leave-one-subject-out or a me-vqa split file) and "
    "write pooled UF1/UAR. Takes every finetune option plus --protocol/--folds."
)


def fold_plan(rows: list[dict], protocol: str, folds_file: str | None) -> list[list[str]]:
    """Held-out subjects (``dataset/subject``) of each fold."""

    if folds_file:
        return read_folds(folds_file)
    if protocol != "loso":
        raise UserError(
            f"protocol {protocol!r} needs --folds",
            fix="write folds with me-vqa split --protocol kfold",
        )
    return [[s] for s in sorted({subject_of(r) for r in rows}, key=natural_key)]


def fold_dir(args: Arguments, index: int) -> Path:
    """The output folder of fold ``index`` (counted from 0)."""
    return Path(args.training.output_dir) / f"fold_{index:02d}"


def fold_args(args: Arguments, index: int, subjects: list[str]) -> Arguments:
    """The finetune arguments of one fold (its own output folder; resumes its last checkpoint)."""
    from transformers.trainer_utils import get_last_checkpoint

    out = fold_dir(args, index)
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    return with_overrides(
        args,
        output_dir=str(out),
        holdout_subjects=",".join(subjects),
        fold=None,
        folds=None,
        eval_max_rows=None,
        resume_from_checkpoint=last,
    )


def fold_spread(per_fold: list[dict]) -> dict:
    """Mean and standard deviation over folds of each level's accuracy, UF1 and UAR (the DFME
    protocol reports the mean of the folds); folds with nothing to compute are left out."""
    spread = {}
    for level in ("coarse", "fine"):
        spread[level] = {}
        for name in ("accuracy", "uf1", "uar"):
            values = [m[level][name] for m in per_fold if m[level][name] is not None]
            spread[level][name] = {
                "mean": statistics.fmean(values) if values else None,
                "std": statistics.stdev(values) if len(values) > 1 else None,
                "folds": len(values),
            }
    return spread


def pooled(args: Arguments, plan: list[list[str]], truth: list[dict]) -> dict:
    """Scores of the pooled held-out answers of all folds, each fold's own, and their spread."""
    from vqa.infer import true_answer_rows
    from vqa.score import score_rows

    truth = true_answer_rows(truth)  # one row per question, as the folds' answers are
    folds, answers, per_fold = [], [], []
    for index, subjects in enumerate(plan):
        out = fold_dir(args, index)
        run = run_record(out)
        folds.append({"fold": index, "subjects": subjects, "metrics": run["final_metrics"]})
        fold_answers = read_jsonl(out / "eval_answers.jsonl")
        fold_truth = [r for r in truth if subject_of(r) in subjects]
        per_fold.append(score_rows(fold_answers, fold_truth)["overall"])
        answers += fold_answers
    metrics = score_rows(answers, truth)
    return {
        "folds": folds,
        "pooled": metrics["overall"],
        "per_fold": fold_spread(per_fold),
        "answers": len(answers),
    }


def main(argv: list[str]) -> int:
    from vqa.train import load_inputs, run

    args = parse_args(argv, "me-vqa crossval", DESCRIPTION, extra=_add_protocol)
    protocol = args.extras["protocol"]
    if not args.training.output_dir:
        raise UserError("no output_dir given", fix="pass --output_dir for the folds")
    rows = load_inputs(args.data.train_file, "train_file")
    plan = fold_plan(rows, protocol, args.data.folds)
    for subjects in plan:  # every fold checked before the first one trains or writes
        check_subjects(rows, subjects, args.data.train_file)
    for index, subjects in enumerate(plan):
        out = fold_dir(args, index)
        if (out / "run.json").is_file():
            print(f"{out.name} ({index + 1} of {len(plan)}): done already, skipped")
            continue
        print(
            f"{out.name} ({index + 1} of {len(plan)}): held-out {', '.join(subjects)}", flush=True
        )
        run(fold_args(args, index, subjects))
    if args.training.process_index != 0:
        return 0
    held = {s for subjects in plan for s in subjects}
    truth = [r for r in rows if subject_of(r) in held]
    result = {"protocol": protocol, **pooled(args, plan, truth)}
    write_text_atomic(
        Path(args.training.output_dir) / "crossval.json", json.dumps(result, indent=2) + "\n"
    )
    for level in ("coarse", "fine"):
        m = result["pooled"].get(level) or {}
        if m.get("uf1") is not None:
            print(
                f"pooled {level}: UF1 {m['uf1']:.4f}  UAR {m['uar']:.4f}  acc {m['accuracy']:.4f}"
            )
        spread = result["per_fold"][level]
        if spread["uf1"]["mean"] is not None:
            print(f"per-fold {level}: " + "  ".join(_mean_std(n, spread[n]) for n in spread))
    return 0


def _mean_std(name: str, value: dict) -> str:
    std = "" if value["std"] is None else f" +- {value['std']:.4f}"
    return f"{name} {value['mean']:.4f}{std}"


def _add_protocol(parser) -> None:
    parser.add_argument(
        "--protocol",
        default="loso",
        choices=("loso", "kfold"),
        help="loso: one fold per subject of train_file; kfold: the folds of --folds (me-vqa split)",
    )
