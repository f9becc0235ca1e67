"""ME-LVQA answers (MEGC2026): parsers, the localisation answer format and the ``lvqa`` metrics.

Question types (recognised by ``prompts/questions.yaml``, phrased in ``prompts/lvqa.yaml``):

- ``lvqa_count_total``, ``lvqa_count_micro``, ``lvqa_count_macro``: a number of events; the
  first number in the answer, in digits or as a word (zero to twenty, "no"/"none" = 0).
  Scored by MAE and RMSE over the parsed answers; unparsed ones (missing included) apart.
- ``lvqa_au_inventory``: the distinct AUs of the video, FACS names joined by ", ".
  F1_AU = 2|A'^A| / (|A'| + |A|) and Jaccard |A'^A| / |A'vA| per video, then the mean.
- ``lvqa_event_type``: ``micro-expression`` or ``macro-expression`` for the k-th event
  (by onset, from 1). UF1 and UAR over the true classes.
- ``lvqa_spot_micro``, ``lvqa_spot_macro``: every event of the type as ``onset-offset``
  (inclusive frame numbers) joined by "; ", or ``none``; scored as spotting
  (:mod:`vqa.spotting`), the video being the row id without its last ``_k``.
"""

from __future__ import annotations

import math
import re

from vqa import spotting
from vqa.errors import UserError
from vqa.parse import parse_aus
from vqa.prompts import load_yaml

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


PARSERS = {
    **dict.fromkeys(COUNT_TYPES, parse_count),
    AU_TYPE: parse_au_set,
    EVENT_TYPE: parse_event_type,
    **dict.fromkeys(SPOT_TYPES, parse_intervals),
}


def parse_item(qtype: str, truth: str, answer: str, file, row) -> tuple:
    """(true value, predicted value or None) of one LVQA answer; bad ground truth raises."""
    parse = PARSERS[qtype]
    value = parse(truth)
    if value is None or value == frozenset():
        raise UserError(
            f"ground-truth answer {truth!r} cannot be read as a {qtype} answer",
            file=file,
            row=row,
            fix="ground truth must use the phrasings of prompts/lvqa.yaml",
        )
    return value, parse(answer)


# ---------------------------------------------------------------- metrics


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def count_metrics(pairs: list[tuple[int, int | None]]) -> dict:
    """MAE and RMSE of the parsed counts; the unparsed ones are counted apart."""
    errors = [pred - true for true, pred in pairs if pred is not None]
    mse = _mean([e * e for e in errors])
    return {
        "mae": _mean([abs(e) for e in errors]),
        "rmse": math.sqrt(mse) if mse is not None else None,
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
    return {"f1": _mean(f1), "jaccard": _mean(jaccard), "n": len(pairs)}


def event_type_metrics(pairs: list[tuple[str, str | None]]) -> dict:
    """UF1 and UAR of micro/macro over the true classes; an unparsed answer is a miss."""
    from vqa.score import class_scores  # vqa.score imports this module

    scores = class_scores(pairs, "gt") if pairs else {"uf1": None, "uar": None}
    unparsed = sum(1 for _, pred in pairs if pred is None)
    return {**scores, "n": len(pairs), "unparsed": unparsed}


def video_key(row_id: str) -> str:
    """The video of an LVQA row id (``{dataset}_{video}_{k}``): the id without ``_k``."""
    return row_id.rsplit("_", 1)[0]


def localisation_intervals(items) -> tuple[list[spotting.Interval], list[spotting.Interval]]:
    """(predicted, true) intervals of the localisation answers among scored items."""
    preds, truth = [], []
    for it in items:
        if it.qtype not in SPOT_TYPES:
            continue
        kind, video = SPOT_TYPES[it.qtype], video_key(it.id)
        true, pred = it.lvqa
        truth += [spotting.Interval(it.dataset, video, a, b, kind) for a, b in true]
        preds += [spotting.Interval(it.dataset, video, a, b, kind) for a, b in pred or []]
    return preds, truth


def blocks(items) -> dict:
    """The ``lvqa`` and ``spotting`` blocks of metrics.json for one subset of scored items."""

    def pairs(qtypes) -> list[tuple]:
        return [it.lvqa for it in items if it.qtype in qtypes]

    lvqa = {
        "count": {name: count_metrics(pairs([q])) for q, name in COUNT_TYPES.items()},
        "au_inventory": au_inventory_metrics(pairs([AU_TYPE])),
        "event_type": event_type_metrics(pairs([EVENT_TYPE])),
    }
    return {"lvqa": lvqa, "spotting": spotting.spotting_block(*localisation_intervals(items))}
