"""The question-type registry: what each kind of question is and how its answers are treated.

A :class:`QuestionType` declares
- its recognition rule (a regular expression searched in the question, case-insensitive;
  types are tried in registration order and the first match wins, else ``other``);
- its answer budget (new tokens at generation time);
- its readings: the labels its answers are read for, each a metric task with its parser;
  the tasks decide which blocks of metrics.json (:mod:`vqa.metrics`) its answers feed;
- its consistency rule (``--consistency``): the answer rebuilt from what the clip's answers
  agree on, gathered by its :class:`Track`;
- its track: which challenge it belongs to (submission file names, how rows group).

Prompt hints live in ``prompts/inference.yaml`` under the type's name. Adding a type is one
:func:`register` call plus its text in prompts/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vqa import consistency as agree
from vqa import lvqa, parse
from vqa.records import parse_video_id

OTHER = "other"


@dataclass(frozen=True)
class Reading:
    """A label read from an answer: the metric task it feeds and the parser that reads it.

    ``optional`` readings are scored only when asked (``score --include-combined``);
    ``truth_problem`` says what is wrong with a ground-truth answer that ``parse`` reads anyway
    (None when nothing is).
    """

    task: str
    parse: Callable[[str], Any]
    what: str
    optional: bool = False
    truth_problem: Callable[[str], str | None] | None = None


@dataclass(frozen=True)
class Track:
    """A challenge track: how its rows group into clips and how its submissions are named.

    ``gather`` turns one group's questions, as (type name, row, raw answer) in row order,
    into what their answers agree on (:func:`vqa.consistency.first_by_type` reads one answer
    per type; a type asked several times, like the k-th event's, can read them all).
    """

    name: str
    gather: Callable[[list[tuple[str, dict, str]]], Any]
    submission: Callable[[str, str], str]  # (dataset, challenge year) -> file name


@dataclass(frozen=True)
class QuestionType:
    name: str
    pattern: str
    budget: int
    readings: tuple[Reading, ...] = ()
    rewrite: Callable[[str, str, Any], str] | None = None  # (question, raw, agreed) -> answer
    track: str = "vqa"


TRACKS: dict[str, Track] = {}
REGISTRY: dict[str, QuestionType] = {}
_COMPILED: dict[str, re.Pattern] = {}


def register_track(track: Track) -> None:
    TRACKS[track.name] = track


def register(qtype: QuestionType) -> None:
    """Add a question type; it is recognised after the types registered before it."""
    if qtype.track not in TRACKS:
        raise ValueError(f"question type {qtype.name!r} names unknown track {qtype.track!r}")
    REGISTRY[qtype.name] = qtype
    _COMPILED[qtype.name] = re.compile(qtype.pattern, re.IGNORECASE)


def question_type(question: str) -> str:
    """The name of the first registered type whose pattern the question matches, else other."""
    return next((name for name, rx in _COMPILED.items() if rx.search(question)), OTHER)


def lookup(question: str) -> QuestionType:
    return REGISTRY.get(question_type(question), OTHER_TYPE)


def names() -> tuple[str, ...]:
    """Every type name, ``other`` last."""
    return (*REGISTRY, OTHER)


def budget(question: str, cap: int | None = None) -> int:
    """New-token budget of a question: its type's, at most ``cap``."""
    own = lookup(question).budget
    return min(own, cap) if cap else own


def submission_name(row: dict, challenge: str) -> str:
    """The leaderboard file a test row belongs to, from its video_id and its question's track."""
    dataset = parse_video_id(row["video_id"]).dataset
    return TRACKS[lookup(row["question"]).track].submission(dataset, challenge)


def group_key(row: dict) -> str:
    """Which clip (or long video) a row asks about: dataset + image_id, or its test video."""
    if "image_id" in row:
        return f"{row.get('dataset', '')}/{row['image_id']}"
    test_id = parse_video_id(row["video_id"]) if "video_id" in row else None
    if test_id:
        return f"{test_id.dataset}/{test_id.video}"
    return f"{row.get('dataset', '')}/{row.get('video', row.get('id', ''))}"


def make_consistent(rows: list[dict], answers: list[str]) -> list[str]:
    """Answers made to agree within each clip (rows in any order), aligned with ``answers``.

    Questions of a type without a consistency rule keep their answer."""
    groups: dict[tuple[str, str], list[int]] = {}
    types = [lookup(row["question"]) for row in rows]
    for i, row in enumerate(rows):
        groups.setdefault((types[i].track, group_key(row)), []).append(i)
    result = list(answers)
    for (track, _), indices in groups.items():
        agreed = TRACKS[track].gather([(types[i].name, rows[i], answers[i]) for i in indices])
        for i in indices:
            if types[i].rewrite:
                result[i] = types[i].rewrite(rows[i]["question"], answers[i], agreed)
    return result


# ---------------------------------------------------------------- ME-VQA (MEGC2025, MEGC2026 v2)


def _vqa_submission(dataset: str, challenge: str) -> str:
    """``me_vqa_<db>_test_pred.jsonl`` (2025), ``me_vqa_<db>_v2_test_pred.jsonl`` (2026)."""
    return f"me_vqa_{dataset}{'_v2' if challenge == '2026' else ''}_test_pred.jsonl"


def _combined_part(index: int, convert=lambda x: x) -> Callable[[str], Any]:
    return lambda text: convert(parse.parse_combined(text)[index])


def _aus(text: str) -> frozenset[str]:
    return frozenset(parse.parse_aus(text))


register_track(
    Track("vqa", lambda items: agree.gather_clip(agree.first_by_type(items)), _vqa_submission)
)
OTHER_TYPE = QuestionType(OTHER, r"(?!)", 64)
for qtype in (
    QuestionType(
        "analysis",
        r"\banaly[sz](e|es|is|ing)\b|\b(describe|explain|interpret)\b",
        128,
        (
            Reading("analysis_coarse", parse.parse_coarse, "coarse class"),
            Reading("analysis_fine", parse.parse_fine, "fine class"),
            Reading("analysis_aus", _aus, "action unit"),
        ),
        agree.analysis_answer,
    ),
    QuestionType(
        "combined",
        r"action units? present.*expression",
        96,
        (
            Reading("fine", _combined_part(1), "fine class", optional=True),
            Reading("coarse", _combined_part(2), "coarse class", optional=True),
            Reading("aus", _combined_part(0, frozenset), "action unit", optional=True),
        ),
        agree.combined_answer,
    ),
    QuestionType(
        "left_right",
        r"left or right",
        8,
        (Reading("left_right", parse.parse_left_right, "side"),),
        agree.side_answer,
    ),
    QuestionType(
        "yes_no",
        r"shown on the face",
        8,
        (Reading("yes_no", parse.parse_yes_no, "yes/no"),),
        agree.yes_no_answer,
    ),
    QuestionType(
        "au",
        r"what (is|are) the action units?\b",
        48,
        (Reading("aus", _aus, "action unit"),),
        agree.au_answer,
    ),
    QuestionType(
        "fine",
        r"fine-grained expression",
        8,
        (Reading("fine", parse.parse_fine, "fine class"),),
        agree.fine_answer,
    ),
    QuestionType(
        "coarse",
        r"coarse expression",
        8,
        (Reading("coarse", parse.parse_coarse, "coarse class"),),
        agree.coarse_answer,
    ),
):
    register(qtype)


# ---------------------------------------------------------------- ME-LVQA (MEGC2026 long videos)


def _lvqa_submission(dataset: str, challenge: str) -> str:
    """``me_lvqa_<db>_test_pred.jsonl``."""
    return f"me_lvqa_{dataset}_test_pred.jsonl"


register_track(Track("lvqa", lvqa.gather_video, _lvqa_submission))
for name, pattern, kind in (
    ("lvqa_count_total", r"how many expression events", "total"),
    ("lvqa_count_micro", r"how many micro-expression events", "micro"),
    ("lvqa_count_macro", r"how many macro-expression events", "macro"),
):
    register(
        QuestionType(
            name,
            pattern,
            8,
            (Reading(name, lvqa.parse_count, "number of events"),),
            lvqa.count_answer(kind),
            track="lvqa",
        )
    )
register(
    QuestionType(
        lvqa.AU_TYPE,
        r"distinct action units appear",
        64,
        (Reading(lvqa.AU_TYPE, lvqa.parse_au_set, "action unit"),),
        track="lvqa",
    )
)
register(
    QuestionType(
        lvqa.EVENT_TYPE,
        r"expression type of the \d+",
        8,
        (Reading(lvqa.EVENT_TYPE, lvqa.parse_event_type, "expression type"),),
        lvqa.event_type_answer,
        track="lvqa",
    )
)
for name in lvqa.SPOT_TYPES:
    register(
        QuestionType(
            name,
            rf"list every {lvqa.SPOT_TYPES[name]}-expression event",
            160,
            (
                Reading(
                    name,
                    lvqa.parse_intervals,
                    "interval list",
                    truth_problem=lvqa.reversed_interval,
                ),
            ),
            lvqa.intervals_answer,
            track="lvqa",
        )
    )
