"""ME-LVQA answers (MEGC2026): parsers, the localisation answer format and the ``lvqa`` metrics.

Question types (registered in :mod:`vqa.question_types`, phrased in ``prompts/lvqa.yaml``):

- ``lvqa_count_total``, ``lvqa_count_micro``, ``lvqa_count_macro``: a number of events; the
  first number in the answer, in digits or as a word (zero to twenty, "no"/"none" = 0).
  Scored by MAE and RMSE over the parsed answers, unparsed ones (missing included) apart,
  beside the MAE of the best constant answer (the median true count).
- ``lvqa_au_inventory``: the distinct AUs of the video, FACS names joined by ", ".
  F1_AU = 2|A'^A| / (|A'| + |A|) and Jaccard |A'^A| / |A'vA| per video, then the mean.
- ``lvqa_event_type``: ``micro-expression`` or ``macro-expression`` for the k-th event
  (by onset, from 1). UF1 and UAR over the true classes.
- ``lvqa_spot_micro``, ``lvqa_spot_macro``: every event of the type as ``onset-offset``
  (inclusive frame numbers) joined by "; ", or ``none``; scored as spotting
  (:mod:`vqa.spotting`), the video being the row id without its last ``_k``.

Consistency (``infer --consistency``, track ``lvqa``): a type's count is the number of its
listed intervals when the list was read, the total is micro + macro when both are known, and
the k-th event's type is read from the two lists in onset order when both were read.
"""

from __future__ import annotations

import math
import re
import statistics

from vqa import spotting
from vqa.consistency import first_by_type
from vqa.metrics import (
    Block,
    Table,
    class_scores,
    mean,
    pairs_of,
    register_block,
    register_table,
)
from vqa.parse import parse_aus
from vqa.prompts import load_yaml
from vqa.records import OFFSET_KEY, WINDOW_KEY

COUNT_TYPES = {
    "lvqa_count_total": "total",
    "lvqa_count_micro": "micro",
    "lvqa_count_macro": "macro",
}
AU_TYPE = "lvqa_au_inventory"
EVENT_TYPE = "lvqa_event_type"
SPOT_TYPES = {"lvqa_spot_micro": "micro", "lvqa_spot_macro": "macro"}

_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()  # fmt: skip
NUMBER_WORDS = {word: n for n, word in enumerate(_WORDS)} | {"no": 0, "none": 0}
_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"[a-z]+")
_INTERVAL = re.compile(r"(\d+)\s*(?:-|–|to)\s*(\d+)")
_NONE = re.compile(r"\b(?:none|no)\b")


def texts() -> dict:
    """The LVQA question and answer phrasings (``prompts/lvqa.yaml``)."""
    return load_yaml("lvqa")


def parse_count(text: str) -> int | None:
    """The number of events an answer gives: its first number in digits, else in words."""
    digits = _DIGITS.search(text)
    if digits:
        return int(digits.group())
    return next((NUMBER_WORDS[w] for w in _WORD.findall(text.lower()) if w in NUMBER_WORDS), None)


def parse_event_type(text: str) -> str | None:
    """``micro`` or ``macro`` when the answer names exactly one of them."""
    lower = text.lower()
    named = [kind for kind in spotting.TYPES if re.search(rf"\b{kind}", lower)]
    return named[0] if len(named) == 1 else None


def parse_au_set(text: str) -> frozenset[str]:
    """The FACS names an answer gives (empty when none)."""
    return frozenset(parse_aus(text))


def render_intervals(intervals: list[tuple[int, int]]) -> str:
    """A localisation answer: ``onset-offset`` per event, or the no-event word."""
    answers = texts()["answers"]
    if not intervals:
        return answers["no_interval"]
    return answers["interval_separator"].join(
        answers["interval"].format(onset=a, offset=b) for a, b in intervals
    )


def parse_intervals(text: str) -> list[tuple[int, int]] | None:
    """(onset, offset) pairs of a localisation answer in its order; [] for none; None if unread.

    ``120-135``, ``120 - 135``, ``120–135`` and ``120 to 135`` all read as (120, 135); a pair
    written backwards is put in order.
    """
    found = [(int(a), int(b)) for a, b in _INTERVAL.findall(text)]
    if found:
        return [(min(a, b), max(a, b)) for a, b in found]
    return [] if _NONE.search(text.lower()) else None


def reversed_interval(text: str) -> str | None:
    """The first interval of a localisation answer written offset first, as a problem."""
    backwards = [(a, b) for a, b in _INTERVAL.findall(text) if int(a) > int(b)]
    return f"onset {backwards[0][0]} is after offset {backwards[0][1]}" if backwards else None


# ---------------------------------------------------------------- spotting windows


def window_answer(answer: str, first: int, last: int) -> str:
    """A video's localisation answer as one window (frames ``first``..``last``) sees it: the
    intervals' parts inside the window, counted from 1 at its first frame."""
    inside = [(max(a, first), min(b, last)) for a, b in parse_intervals(answer) or []]
    return render_intervals([(a - first + 1, b - first + 1) for a, b in inside if a <= b])


def join_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Intervals sorted, with overlapping or touching ones joined (duplicates vanish)."""
    joined: list[list[int]] = []
    for a, b in sorted(intervals):
        if joined and a <= joined[-1][1] + 1:
            joined[-1][1] = max(joined[-1][1], b)
        else:
            joined.append([a, b])
    return [(a, b) for a, b in joined]


def merge_windows(rows: list[dict], answers: list[str]) -> tuple[list[dict], list[str]]:
    """The answers of one question's windows (rows with ``frame_offset``, same ``id`` or
    ``video_id``) as one video-level answer: window frames + offset, clipped to the window,
    joined. The merged row stands where the question's first window stood; other rows pass.
    A window whose answer cannot be read adds nothing; when none can, the first raw answer
    is kept."""
    order: list = []
    groups: dict = {}
    for row, answer in zip(rows, answers, strict=True):
        if OFFSET_KEY not in row:
            order.append((row, answer))
            continue
        key = row.get("video_id") or row["id"]
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append((row, answer))
    merged_rows, merged_answers = [], []
    for item in order:
        row, answer = item if isinstance(item, tuple) else _merged(groups[item])
        merged_rows.append(row)
        merged_answers.append(answer)
    return merged_rows, merged_answers


def _merged(windows: list[tuple[dict, str]]) -> tuple[dict, str]:
    found, read = [], False
    for row, answer in windows:
        intervals = parse_intervals(answer)
        if intervals is None:
            continue
        read = True
        first, last = row[WINDOW_KEY]
        offset = row[OFFSET_KEY]
        found += [(max(a + offset, first), min(b + offset, last)) for a, b in intervals]
    row = {k: v for k, v in windows[0][0].items() if k not in (WINDOW_KEY, OFFSET_KEY)}
    answer = render_intervals(join_intervals([(a, b) for a, b in found if a <= b]))
    return row, answer if read else windows[0][1]


# ---------------------------------------------------------------- metrics


def count_metrics(pairs: list[tuple[int, int | None]]) -> dict:
    """MAE and RMSE of the parsed counts (the unparsed ones counted apart), and the MAE of the
    best constant answer, the median true count given for every video (``constant_mae``):
    counts that depend on the video have to beat it."""
    errors = [pred - true for true, pred in pairs if pred is not None]
    mse = mean([e * e for e in errors])
    truths = [true for true, _ in pairs]
    median = statistics.median_low(truths) if truths else None
    return {
        "mae": mean([abs(e) for e in errors]),
        "rmse": math.sqrt(mse) if mse is not None else None,
        "constant_mae": mean([abs(t - median) for t in truths]),
        "n": len(errors),
        "unparsed": len(pairs) - len(errors),
    }


def au_inventory_metrics(pairs: list[tuple[frozenset, frozenset | None]]) -> dict:
    """Mean F1_AU and mean Jaccard over videos."""
    f1, jaccard = [], []
    for true, pred in pairs:
        pred = pred or frozenset()
        common, union = len(true & pred), len(true | pred)
        f1.append(2 * common / (len(true) + len(pred)))
        jaccard.append(common / union)
    return {"f1": mean(f1), "jaccard": mean(jaccard), "n": len(pairs)}


def event_type_metrics(pairs: list[tuple[str, str | None]]) -> dict:
    """UF1 and UAR of micro/macro over the true classes; an unparsed answer is a miss."""
    scores = class_scores(pairs, "gt") if pairs else {"uf1": None, "uar": None}
    unparsed = sum(1 for _, pred in pairs if pred is None)
    return {**scores, "n": len(pairs), "unparsed": unparsed}


def lvqa_block(items: list, label_set: str) -> dict:
    """The ``lvqa`` block of metrics.json for one subset of scored items."""
    return {
        "count": {name: count_metrics(pairs_of(items, q)) for q, name in COUNT_TYPES.items()},
        "au_inventory": au_inventory_metrics(pairs_of(items, AU_TYPE)),
        "event_type": event_type_metrics(pairs_of(items, EVENT_TYPE)),
    }


def video_key(row_id: str) -> str:
    """The video of an LVQA row id (``{dataset}_{video}_{k}``): the id without ``_k``."""
    return row_id.rsplit("_", 1)[0]


def localisation_intervals(items) -> tuple[list[spotting.Interval], list[spotting.Interval]]:
    """(predicted, true) intervals of the localisation answers among scored items."""
    preds, truth = [], []
    for it in items:
        for task, kind in SPOT_TYPES.items():
            if task not in it.labels:
                continue
            true, pred = it.labels[task]
            video = video_key(it.id)
            truth += [spotting.Interval(it.dataset, video, a, b, kind) for a, b in true]
            preds += [spotting.Interval(it.dataset, video, a, b, kind) for a, b in pred or []]
    return preds, truth


def spotting_from_answers(items: list, label_set: str) -> dict:
    """The ``spotting`` block: the localisation answers scored as spotting."""
    return spotting.spotting_block(*localisation_intervals(items))


register_block(Block("lvqa", (*COUNT_TYPES, AU_TYPE, EVENT_TYPE), lvqa_block))
register_block(Block("spotting", tuple(SPOT_TYPES), spotting_from_answers))
register_table(
    "lvqa",
    Table(
        "ME-LVQA (long videos): counts, action-unit inventory, event type",
        (
            *(
                (f"{kind.capitalize()} count {m.upper()}", f"lvqa.count.{kind}.{m}")
                for m in ("mae", "rmse")
                for kind in ("total", "micro", "macro")
            ),
            ("Total count MAE, best constant", "lvqa.count.total.constant_mae"),
            ("F1_AU", "lvqa.au_inventory.f1"),
            ("AU Jaccard", "lvqa.au_inventory.jaccard"),
            ("Type UF1", "lvqa.event_type.uf1"),
            ("Type UAR", "lvqa.event_type.uar"),
        ),
    ),
)


# ---------------------------------------------------------------- consistency (--consistency)


def gather_video(items: list[tuple[str, dict, str]]) -> dict:
    """What one video's answers agree on: per type the listed intervals' number, else the
    count answer; the total as micro + macro when both are known; events in onset order when
    both lists were read. Without both lists, the k-th event questions bound the counts from
    below: as many events of a type as k-th answers name it, and at least k events in all
    (the missing ones given the type the deepest k-th answer names)."""
    raw = first_by_type(items)
    counts = {kind: parse_count(raw[t]) for t, kind in COUNT_TYPES.items() if t in raw}
    listed = {kind: parse_intervals(raw[t]) for t, kind in SPOT_TYPES.items() if t in raw}
    agreed: dict = {}
    for kind in spotting.TYPES:
        agreed[kind] = len(listed[kind]) if listed.get(kind) is not None else counts.get(kind)
    if all(listed.get(kind) is not None for kind in spotting.TYPES):
        agreed["events"] = sorted((a, b, kind) for kind in spotting.TYPES for a, b in listed[kind])
    else:
        _bound_by_kth(agreed, counts, items)
    known = [agreed[kind] for kind in spotting.TYPES if agreed[kind] is not None]
    agreed["total"] = sum(known) if len(known) == 2 else counts.get("total")
    return agreed


def _bound_by_kth(agreed: dict, counts: dict, items: list[tuple[str, dict, str]]) -> None:
    """Raise the counts to what the k-th event answers imply (k <= total)."""
    named = {_k(row["question"]): parse_event_type(a) for t, row, a in items if t == EVENT_TYPE}
    if not named:
        return
    for kind in spotting.TYPES:
        if agreed[kind] is not None:
            agreed[kind] = max(agreed[kind], sum(v == kind for v in named.values()))
    deepest = max(named)
    if all(agreed[kind] is not None for kind in spotting.TYPES):
        missing = deepest - agreed["micro"] - agreed["macro"]
        if missing > 0:
            agreed[named[deepest] or "macro"] += missing
    elif counts.get("total") is not None:
        counts["total"] = max(counts["total"], deepest)


def _k(question: str) -> int:
    """The k of a k-th event question."""
    return int(_DIGITS.search(question).group())


def count_answer(name: str):
    """The rewrite of a count answer: the agreed number (the raw answer when none is)."""
    return lambda question, raw, agreed: raw if agreed[name] is None else str(agreed[name])


def event_type_answer(question: str, raw: str, agreed: dict) -> str:
    """The k-th event's type from the listed intervals when both lists were read (k within
    them), else the answer's own type in the MEGC2026 phrasing."""
    answers = texts()["answers"]
    k = _k(question)
    events = agreed.get("events")
    kind = events[k - 1][2] if events and 1 <= k <= len(events) else parse_event_type(raw)
    return answers[f"type_{kind}"] if kind else raw


def intervals_answer(question: str, raw: str, agreed: dict) -> str:
    """A localisation answer rewritten in the format the scorer reads back exactly."""
    intervals = parse_intervals(raw)
    return raw if intervals is None else render_intervals(sorted(intervals))
