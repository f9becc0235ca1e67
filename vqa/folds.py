"""Subject-independent selections of rows: ``--holdout-subjects`` or a fold of ``me-vqa split``.

A subject is ``<dataset>/<subject>`` (``casme2/sub01``, ``samm/6``) or, when that is unambiguous
to the user, the bare ``<subject>``. Fine-tuning trains on the other subjects and evaluates on
the held-out ones; inference and scoring can be limited to the held-out ones, so the three
commands of one fold always see the same split.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from vqa.errors import UserError


def subject_of(row: dict) -> str:
    return f"{row.get('dataset')}/{row.get('subject')}"


def natural_key(text: str) -> list:
    """Sort key putting ``sub2`` before ``sub10``: the order of subjects in every fold plan."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def read_folds(path: str | Path) -> list[list[str]]:
    """Held-out subjects of each fold of a ``me-vqa split`` file (``folds[N]["test"]``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError("folds file not found", file=path, fix="write it with me-vqa split")
    try:
        folds = json.loads(path.read_text("utf-8"))["folds"]
        return [list(fold["test"]) for fold in folds]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError("not a folds file", file=path, fix="write it with me-vqa split") from None


def holdout_from_folds(folds_file: str | Path | None, fold: int) -> list[str]:
    """The held-out subjects of fold ``fold``."""
    if not folds_file:
        raise UserError("--fold needs --folds", fix="pass the folds file written by me-vqa split")
    folds = read_folds(folds_file)
    if not 0 <= fold < len(folds):
        raise UserError(
            f"fold {fold} does not exist", file=folds_file, fix=f"use 0..{len(folds) - 1}"
        )
    return folds[fold]


def holdout_subjects(
    subjects: str | None, folds_file: str | Path | None, fold: int | None
) -> list[str]:
    """Held-out subjects from a comma list and/or a fold (empty: nothing held out)."""
    holdout = [s.strip() for s in (subjects or "").split(",") if s.strip()]
    if fold is not None:
        holdout += holdout_from_folds(folds_file, fold)
    return holdout


def check_subjects(rows: list[dict], holdout: list[str], file: Path | str) -> None:
    """Every held-out subject must be one of the rows' subjects."""
    subjects = {subject_of(r) for r in rows}
    bare = {s.split("/", 1)[1] for s in subjects}
    for name in holdout:
        if name not in subjects and name not in bare:
            shown = ", ".join(sorted(subjects)[:8]) + (" ..." if len(subjects) > 8 else "")
            raise UserError(
                f"held-out subject {name!r} does not exist", file=file, fix=f"use one of {shown}"
            )


def is_held_out(row: dict, holdout: list[str]) -> bool:
    return subject_of(row) in holdout or str(row.get("subject")) in holdout


def split_rows(
    rows: list[dict], holdout: list[str], file: Path | str
) -> tuple[list[dict], list[dict]]:
    """(rows of the other subjects, rows of the held-out ones); an unknown subject is an error."""
    check_subjects(rows, holdout, file)
    return [r for r in rows if not is_held_out(r, holdout)], [
        r for r in rows if is_held_out(r, holdout)
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--holdout-subjects``, ``--folds`` and ``--fold``: keep only the held-out subjects' rows."""
    group = parser.add_argument_group("held-out subjects (use the same ones as finetune)")
    group.add_argument("--holdout-subjects", help="comma list of dataset/subject or subject")
    group.add_argument("--folds", type=Path, help="folds file written by me-vqa split")
    group.add_argument("--fold", type=int, help="keep the test subjects of this fold")


def held_out_rows(rows: list[dict], args: argparse.Namespace, file: Path | str) -> list[dict]:
    """The rows of the held-out subjects that ``args`` name (all rows when none are named)."""
    holdout = holdout_subjects(args.holdout_subjects, args.folds, args.fold)
    return split_rows(rows, holdout, file)[1] if holdout else rows
