"""Expression spotting scored the MEGC way, and ``me-vqa score-spotting``.

Intervals are ``{dataset, video, onset, offset, type}`` rows (frames inclusive, ``type`` micro
or macro) with an optional ``emotion``, in jsonl or csv. Within one video and one type, a
predicted interval and a ground-truth interval match when their IoU over inclusive frame
ranges is at least 0.5; pairs are taken greedily, highest IoU first (ties: earlier predicted
onset, then earlier true onset), and each interval is matched at most once (MEGC2021).
Micro and macro are matched separately; the overall TP/FP/FN are their sums; a video without
predictions counts its ground truth as misses. Precision = TP/(TP+FP), recall = TP/(TP+FN),
F1 = 2TP/(2TP+FP+FN).

With emotions (MEGC2024/2025 spot-then-recognise), recognition is scored on the true
positives only, as the public STRS script does: per emotion named in the predictions or the
ground truth, one against the rest, precision, recall and F1; UF1 and UAR are the means of F1
and recall, the recognition F1 is 2PR/(P+R) of the mean precision and recall, and ``precision``
is what that script (and the MEGC2025 paper's table) reports as UAR. STRS = spotting F1 x
recognition F1 (0 when nothing is spotted). A metric with nothing to compute from is
``null``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.jsonl import make_folder, read_jsonl, write_text_atomic
from vqa.metrics import Table, mean, register_table
from vqa.taxonomy import COARSE_LABELS

TYPES = ("micro", "macro")
TYPE_SPELLINGS = {"micro": "micro", "macro": "macro"} | {f"{t}-expression": t for t in TYPES}
FIELDS = ("dataset", "video", "onset", "offset", "type")
IOU_THRESHOLD = Fraction(1, 2)


@dataclass(frozen=True)
class Interval:
    """One spotted or annotated interval; ``row`` is where it was read (not compared)."""

    dataset: str
    video: str
    onset: int
    offset: int
    type: str
    emotion: str | None = None
    row: int = field(default=0, compare=False)


def iou(a: Interval, b: Interval) -> Fraction:
    """Intersection over union of two inclusive frame ranges, exactly."""
    inter = min(a.offset, b.offset) - max(a.onset, b.onset) + 1
    if inter <= 0:
        return Fraction(0)
    return Fraction(inter, (a.offset - a.onset + 1) + (b.offset - b.onset + 1) - inter)


def match_intervals(
    preds: list[Interval], truth: list[Interval]
) -> list[tuple[Interval, Interval]]:
    """(prediction, ground truth) pairs of one video and type: greedy by IoU, one-to-one."""
    candidates = sorted(
        (-value, p.onset, t.onset, i, j)
        for i, p in enumerate(preds)
        for j, t in enumerate(truth)
        if (value := iou(p, t)) >= IOU_THRESHOLD
    )
    used_p, used_t, pairs = set(), set(), []
    for *_, i, j in candidates:
        if i in used_p or j in used_t:
            continue  # each prediction and each true interval is matched once (trap 15)
        used_p.add(i)
        used_t.add(j)
        pairs.append((preds[i], truth[j]))
    return pairs


def _by_video(intervals: list[Interval]) -> dict[tuple[str, str], list[Interval]]:
    groups: dict[tuple[str, str], list[Interval]] = {}
    for it in intervals:
        groups.setdefault((it.dataset, it.video), []).append(it)
    return groups


def matches(preds: list[Interval], truth: list[Interval]) -> list[tuple[Interval, Interval]]:
    """Matched pairs over all videos (intervals of one type)."""
    pred_groups = _by_video(preds)
    return [
        pair
        for key, group in _by_video(truth).items()
        for pair in match_intervals(pred_groups.get(key, []), group)
    ]


def counts_block(tp: int, fp: int, fn: int) -> dict:
    """TP, FP, FN with precision, recall and F1 (null when undefined)."""
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
    }


def recognition_block(pairs: list[tuple[Interval, Interval]], classes: list[str]) -> dict:
    """Recognition of the emotions of true positives, the public STRS script's way: per class
    (one against the rest, on the true positives) precision, recall and F1; UF1 and UAR are the
    means of F1 and recall over ``classes``, F1 = 2 P R / (P + R) of the mean precision P and
    recall R. ``precision`` is what that script and the MEGC2025 paper's table call UAR."""
    labels = [(t.emotion, p.emotion) for p, t in pairs if t.emotion]
    if not labels:
        return {"uf1": None, "uar": None, "precision": None, "f1": None}
    precisions, recalls, f1s = [], [], []
    for c in classes:
        tp = sum(1 for true, pred in labels if true == pred == c)
        predicted = sum(pred == c for _, pred in labels)
        actual = sum(true == c for true, _ in labels)
        precisions.append(tp / predicted if predicted else 0.0)
        recalls.append(tp / actual if actual else 0.0)
        f1s.append(2 * tp / (predicted + actual) if predicted + actual else 0.0)
    precision, recall = mean(precisions), mean(recalls)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"uf1": mean(f1s), "uar": recall, "precision": precision, "f1": f1}


def spotting_block(preds: list[Interval], truth: list[Interval]) -> dict:
    """The metrics.json ``spotting`` block of one subset of videos; recognition when the
    predictions name emotions, over the emotions named in the predictions or the truth."""
    by_type, pairs = {}, []
    for kind in TYPES:
        p = [it for it in preds if it.type == kind]
        t = [it for it in truth if it.type == kind]
        found = matches(p, t)
        pairs += found
        by_type[kind] = counts_block(len(found), len(p) - len(found), len(t) - len(found))
    total = {k: sum(by_type[t][k] for t in TYPES) for k in ("tp", "fp", "fn")}
    block = counts_block(**total)
    recognition = strs = None
    if any(it.emotion for it in preds):
        classes = sorted({it.emotion for it in (*preds, *truth) if it.emotion})
        recognition = recognition_block(pairs, classes)
        if block["f1"] == 0:  # nothing spotted: STRS = 0 x anything
            strs = 0.0
        elif block["f1"] is not None and recognition["f1"] is not None:
            strs = block["f1"] * recognition["f1"]
    return {**block, "by_type": by_type, "recognition": recognition, "strs": strs}


def spotting_metrics(preds: list[Interval], truth: list[Interval]) -> dict:
    """``{"overall": {"spotting": ...}, "by_dataset": {db: {"spotting": ...}}}``."""
    datasets = sorted({it.dataset for it in truth})
    return {
        "overall": {"spotting": spotting_block(preds, truth)},
        "by_dataset": {
            db: {
                "spotting": spotting_block(
                    [it for it in preds if it.dataset == db],
                    [it for it in truth if it.dataset == db],
                )
            }
            for db in datasets
        },
    }


def _counts_columns(prefix: str, path: str) -> tuple[tuple[str, str], ...]:
    keys = ("tp", "fp", "fn", "precision", "recall", "f1")
    names = ("TP", "FP", "FN", "P", "R", "F1")
    return tuple((f"{prefix}{n}", f"{path}{k}") for n, k in zip(names, keys, strict=True))


register_table(
    "spotting",
    Table(
        "Spotting (MEGC2021/2023: IoU >= 0.5, one to one, micro and macro apart)",
        (
            *_counts_columns("", "spotting."),
            *_counts_columns("Micro ", "spotting.by_type.micro."),
            *_counts_columns("Macro ", "spotting.by_type.macro."),
        ),
    ),
)
register_table(
    "recognition",
    Table(
        "Spot-then-recognise (MEGC2025): recognition on the true positives, STRS",
        (
            ("Recognition UF1", "spotting.recognition.uf1"),
            ("UAR", "spotting.recognition.uar"),
            ("Mean P (the script's UAR)", "spotting.recognition.precision"),
            ("F1", "spotting.recognition.f1"),
            ("STRS", "spotting.strs"),
        ),
    ),
)


# ---------------------------------------------------------------- reading


def _frame(value, what: str, path: Path, row: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise UserError(
        f"{what} {value!r} is not a frame number", file=path, row=row, fix="write whole frames"
    )


def to_interval(record: dict, path: Path, row: int) -> Interval:
    """One interval row, checked (UserError naming the file and row)."""
    if None in record:  # csv cells beyond the header's columns
        raise UserError(
            f"row has {len(record) - 1 + len(record[None])} cells, the header {len(record) - 1}",
            file=path,
            row=row,
            fix="give each row exactly the header's columns",
        )
    missing = [f for f in FIELDS if record.get(f) in (None, "")]
    if missing:
        raise UserError(
            f"row has no {', '.join(missing)}",
            file=path,
            row=row,
            fix=f"every row needs {', '.join(FIELDS)}",
        )
    onset = _frame(record["onset"], "onset", path, row)
    offset = _frame(record["offset"], "offset", path, row)
    if onset > offset:
        raise UserError(
            f"onset {onset} is after offset {offset}", file=path, row=row, fix="swap or fix them"
        )
    kind = TYPE_SPELLINGS.get(str(record["type"]).strip().lower())
    if kind is None:
        raise UserError(
            f"unknown type {record['type']!r}", file=path, row=row, fix="write micro or macro"
        )
    emotion = str(record.get("emotion") or "").strip().lower() or None
    if emotion not in (None, *COARSE_LABELS):
        raise UserError(
            f"unknown emotion {record['emotion']!r}",
            file=path,
            row=row,
            fix=f"write one of {', '.join(COARSE_LABELS)}, or no emotion",
        )
    dataset = str(record["dataset"]).strip().lower()
    return Interval(dataset, str(record["video"]).strip(), onset, offset, kind, emotion, row)


def read_intervals(path: Path) -> list[Interval]:
    """Intervals of a .jsonl or .csv file (a header row naming the fields)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise UserError("file not found", file=path, fix="check the path")
        with path.open(newline="", encoding="utf-8") as f:
            records = list(enumerate(csv.DictReader(f), start=2))
    elif path.suffix.lower() in (".jsonl", ".json"):
        records = list(enumerate(read_jsonl(path, allow_empty=True), start=1))
    else:
        raise UserError(
            f"unsupported file type {path.suffix!r}", file=path, fix="give a .jsonl or .csv file"
        )
    return [to_interval(record, path, row) for row, record in records]


def check_truth(truth: list[Interval], path: Path) -> None:
    """Refuse ground truth without intervals or with an interval annotated twice."""
    if not truth:
        raise UserError("no interval in the ground truth", file=path, fix="give intervals")
    first_rows: dict[tuple, int] = {}
    for it in truth:
        key = (it.dataset, it.video, it.onset, it.offset, it.type)  # whatever its emotion
        if key in first_rows:
            raise UserError(
                f"interval {it.onset}-{it.offset} ({it.type}) of {it.dataset}/{it.video} is "
                f"already at row {first_rows[key]}",
                file=path,
                row=it.row,
                fix="list each true interval once",
            )
        first_rows[key] = it.row


def check_videos(preds: list[Interval], truth: list[Interval], path: Path) -> None:
    """Refuse predictions for a video the ground truth does not have."""
    known = {(it.dataset, it.video) for it in truth}
    for it in preds:
        if (it.dataset, it.video) not in known:
            raise UserError(
                f"unknown video {it.dataset}/{it.video}",
                file=path,
                row=it.row,
                fix="predict only videos of the --gt file (dataset and video as written there)",
            )


# ---------------------------------------------------------------- command line


def main(argv: list[str]) -> int:
    from vqa import report

    parser = command_parser("score-spotting")
    parser.add_argument("--pred", required=True, type=Path, help="predicted intervals (jsonl/csv)")
    parser.add_argument("--gt", required=True, type=Path, help="true intervals (jsonl/csv)")
    parser.add_argument("--out", type=Path, help="write metrics.json and report.md here")
    args = parser.parse_args(argv)
    truth = read_intervals(args.gt)
    check_truth(truth, args.gt)
    preds = read_intervals(args.pred)
    check_videos(preds, truth, args.pred)
    metrics = spotting_metrics(preds, truth)
    print("\n\n".join(markdown for _, markdown in report.shown_tables(metrics)))
    if args.out:
        make_folder(args.out)
        report.write_spotting_report(args.out, metrics)
        write_text_atomic(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        print(f"wrote {args.out / 'metrics.json'} and {args.out / 'report.md'}")
    return 0
