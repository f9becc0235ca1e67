"""``me-vqa split``: subject-independent folds over one or more clips.jsonl (or long-video
videos.jsonl) files.

Protocols: ``loso`` (leave one subject out, one fold per subject, as in the MEGC2019
composite protocol) and ``kfold`` (``--k`` folds of whole subjects, as DFME does: scikit-learn's
``StratifiedGroupKFold`` over the clips' coarse classes, subjects shuffled with ``--seed``, so
every fold holds a near-equal share of each class). A subject is keyed
``"<dataset>/<subject>"`` (``casme2/sub01``, ``samm/6``), so subjects of different databases
never collide, and no subject is ever in the train and test part of the same fold.

The output is one JSON file::

    {
      "protocol": "kfold", "k": 10, "seed": 0,
      "clips": ["casme2/clips.jsonl", "samm/clips.jsonl"],
      "subjects": {"casme2/sub01": 3, ...},          # clips per subject
      "folds": [
        {"fold": 0, "test": ["casme2/sub05", "samm/7"], "train": [...],
         "test_clips": 28, "train_clips": 255},
        ...
      ]
    }

A consumer taking ``--fold N`` reads ``folds[N]`` and keeps a qa/inputs/clips row for
testing when its :func:`vqa.folds.subject_of` is in ``test`` (for training when in ``train``).
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

from sklearn.model_selection import StratifiedGroupKFold

from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.folds import natural_key, subject_of
from vqa.jsonl import read_jsonl, write_text_atomic
from vqa.taxonomy import COARSE_LABELS

PROTOCOLS = ("loso", "kfold")


def read_clips(paths: list[Path]) -> list[tuple[dict, Path, int]]:
    """Every row of the clips.jsonl (or long-video videos.jsonl) files with its file and row
    number, each checked to be one clip or video, none repeated."""
    rows, first_seen = [], {}
    for path in paths:
        for lineno, row in enumerate(read_jsonl(path), 1):
            name = clip_name(row, path, lineno)
            if name in first_seen:
                raise UserError(
                    f"clip {name} is already at {first_seen[name]}",
                    file=path,
                    row=lineno,
                    fix="give each clips file once; a clip may appear once across them",
                )
            first_seen[name] = f"{path}:{lineno}"
            rows.append((row, path, lineno))
    return rows


def clip_name(row: dict, path: Path, lineno: int) -> str:
    """``dataset/image_id`` of a clip row or ``dataset/video`` of a long video's, the row
    checked for a subject (text, as convert writes it) and for not being a question."""
    if "question" in row:
        raise UserError(
            "row is a question (qa or inputs row), not a clip",
            file=path,
            row=lineno,
            fix="give clips.jsonl or a long-video videos.jsonl from me-vqa convert",
        )
    if "dataset" not in row or "subject" not in row:
        raise UserError(
            "row has no dataset/subject",
            file=path,
            row=lineno,
            fix="give clips.jsonl from me-vqa convert",
        )
    for key in ("dataset", "subject"):
        if not isinstance(row[key], str) or not row[key].strip():
            raise UserError(
                f"{key} {row[key]!r} is not a name",
                file=path,
                row=lineno,
                fix='write it as text, as convert does: "sub01", "6"',
            )
    name = row.get("video", row.get("image_id"))
    if not isinstance(name, str) or not name:
        raise UserError(
            "row has no image_id (clip) or video (long video)",
            file=path,
            row=lineno,
            fix="give clips.jsonl from me-vqa convert",
        )
    return f"{row['dataset']}/{name}"


def coarse_classes(rows: list[tuple[dict, Path, int]]) -> list[str]:
    """The coarse class of every row, which kfold stratifies by: once one row has one, every
    row needs a known one; rows without any (long videos) all get ''."""
    classes = [row.get("coarse") or "" for row, _, _ in rows]
    if not any(classes):
        return classes
    for (_, path, lineno), coarse in zip(rows, classes, strict=True):
        if coarse not in COARSE_LABELS:
            raise UserError(
                f"unknown coarse class {coarse!r}" if coarse else "row has no coarse class",
                file=path,
                row=lineno,
                fix=f"kfold stratifies by {', '.join(COARSE_LABELS)}: give clips.jsonl from me-vqa "
                "convert, or use --protocol loso",
            )
    return classes


def loso(subjects: Counter) -> list[list[str]]:
    """One test group per subject."""
    return [[s] for s in sorted(subjects, key=natural_key)]


def kfold(clips: list[tuple[str, str]], k: int, seed: int) -> list[list[str]]:
    """``k`` test groups of whole subjects with near-equal shares of every coarse class.

    scikit-learn's ``StratifiedGroupKFold`` with the subjects shuffled by ``seed``; with no
    class known the groups get near-equal clip counts."""
    subjects, classes = zip(*clips, strict=True)
    if not 2 <= k <= len(set(subjects)):
        raise UserError(
            f"--k {k} does not fit {len(set(subjects))} subjects",
            fix="choose 2 <= k <= number of subjects",
        )
    if max(Counter(classes).values()) < k:
        raise UserError(
            f"--k {k} is more than the clips of any one class", fix="choose a smaller --k or loso"
        )
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class rarer than k simply misses some folds
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        tests = [test for _, test in splitter.split(X=subjects, y=classes, groups=subjects)]
    return [sorted({subjects[i] for i in test}, key=natural_key) for test in tests]


def folds(subjects: Counter, groups: list[list[str]]) -> list[dict]:
    everyone = sorted(subjects, key=natural_key)
    result = []
    for i, test in enumerate(groups):
        held_out = set(test)
        train = [s for s in everyone if s not in held_out]
        result.append(
            {
                "fold": i,
                "test": test,
                "train": train,
                "test_clips": sum(subjects[s] for s in test),
                "train_clips": sum(subjects[s] for s in train),
            }
        )
    return result


def main(argv: list[str]) -> int:
    parser = command_parser("split")
    parser.add_argument(
        "--clips",
        type=Path,
        nargs="+",
        required=True,
        help="clips.jsonl (or long-video videos.jsonl) file(s) from me-vqa convert",
    )
    parser.add_argument(
        "--protocol", choices=PROTOCOLS, required=True, help="leave-one-subject-out or k-fold"
    )
    parser.add_argument("--k", type=int, default=10, help="number of folds for kfold")
    parser.add_argument("--seed", type=int, default=0, help="shuffle seed for kfold")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write the folds to")
    args = parser.parse_args(argv)
    rows = read_clips(args.clips)
    keys = [subject_of(row) for row, _, _ in rows]
    subjects = Counter(keys)
    if args.protocol == "loso":
        groups = loso(subjects)
    else:
        groups = kfold(list(zip(keys, coarse_classes(rows), strict=True)), args.k, args.seed)
    plan = {
        "protocol": args.protocol,
        "k": len(groups),
        "seed": args.seed if args.protocol == "kfold" else None,
        "clips": [str(p) for p in args.clips],
        "subjects": {s: subjects[s] for s in sorted(subjects, key=natural_key)},
        "folds": folds(subjects, groups),
    }
    write_text_atomic(args.out, json.dumps(plan, indent=1, ensure_ascii=False) + "\n")
    sizes = [f["test_clips"] for f in plan["folds"]]
    print(
        f"split {args.protocol}: {len(subjects)} subjects, {sum(subjects.values())} clips, "
        f"{len(groups)} folds "
        f"(test clips per fold {min(sizes)}..{max(sizes)}) -> {args.out}"
    )
    return 0
