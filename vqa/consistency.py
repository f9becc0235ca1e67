"""Make the answers about one clip agree with each other (``me-vqa infer --consistency``).

Per clip: the labels its answers name are parsed (a question's own answer first, then the
combined sentence); what no answer names clearly is snapped to the closest vocabulary entry
by spelling. The coarse class follows from the fine class, and the combined answer is
rebuilt in the organisers' sentence from the clip's own AU, fine and coarse answers.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from vqa import parse
from vqa.prompts import official, question_type
from vqa.records import parse_video_id
from vqa.taxonomy import AU_NAMES, COARSE_CLASSES, FINE_CLASSES, FINE_TO_COARSE

AU_VOCABULARY = tuple(AU_NAMES.values())


def clip_key(row: dict) -> str:
    """Which clip a QA row asks about (training schema: dataset + image_id; test: video)."""
    if "image_id" in row:
        return f"{row.get('dataset', '')}/{row['image_id']}"
    test_id = parse_video_id(row["video_id"]) if "video_id" in row else None
    if test_id:
        return f"{test_id.dataset}/{test_id.video}"
    return str(row.get("id", ""))


def nearest(text: str, vocabulary: tuple[str, ...]) -> str:
    """The vocabulary entry spelled most like ``text`` (first entry on ties)."""
    text = text.strip().lower()
    scores = [difflib.SequenceMatcher(None, text, word).ratio() for word in vocabulary]
    return vocabulary[scores.index(max(scores))]


def snap(text: str, parser: Callable[[str], str | None], vocabulary: tuple[str, ...]) -> str:
    """The label ``parser`` finds in ``text``, else the nearest vocabulary entry."""
    return parser(text) or nearest(text, vocabulary)


def snap_aus(text: str) -> list[str]:
    """AU names found in ``text``; the nearest single AU name when none is found."""
    return parse.parse_aus(text) or [nearest(text, AU_VOCABULARY)]


@dataclass
class ClipAnswers:
    """The labels all of one clip's answers commit to."""

    fine: str | None = None
    coarse: str | None = None
    aus: list[str] = field(default_factory=list)


def _gather(rows: list[dict], answers: list[str]) -> ClipAnswers:
    """A clip's labels: parsed ones first (own question, then the combined answer), then snapped.

    The fine class wins over the coarse one; a guessed fine class stays within a parsed coarse
    class. Labels no question of the clip asks for stay None.
    """
    raw = {
        question_type(row["question"]): answer for row, answer in zip(rows, answers, strict=True)
    }
    c_aus, c_fine, c_coarse = (
        parse.parse_combined(raw["combined"]) if "combined" in raw else ([], None, None)
    )
    fine = (parse.parse_fine(raw["fine"]) if "fine" in raw else None) or c_fine
    coarse = (parse.parse_coarse(raw["coarse"]) if "coarse" in raw else None) or c_coarse
    aus = (parse.parse_aus(raw["au"]) if "au" in raw else []) or c_aus
    guess = raw.get("fine", raw.get("combined"))
    if fine is None and guess is not None:
        fine = nearest(guess, tuple(f for f in FINE_CLASSES if coarse in (None, FINE_TO_COARSE[f])))
    if fine is not None:
        coarse = FINE_TO_COARSE[fine]
    elif coarse is None and "coarse" in raw:
        coarse = nearest(raw["coarse"], COARSE_CLASSES)
    guess = raw.get("au", raw.get("combined"))
    if not aus and guess is not None:
        aus = snap_aus(guess)
    return ClipAnswers(fine, coarse, aus)


def combined_sentence(question: str, clip: ClipAnswers) -> str:
    """The organisers' combined answer built from the clip's labels."""
    texts = official()
    one = question.strip().lower() == texts["questions"]["combined_one"].lower()
    many = question.strip().lower() == texts["questions"]["combined_many"].lower()
    template = "combined_one" if one or (not many and len(clip.aus) == 1) else "combined_many"
    joined = texts["answers"]["au_separator"].join(clip.aus)
    return texts["answers"][template].format(aus=joined, fine=clip.fine, coarse=clip.coarse)


def _rewrite(row: dict, raw: str, clip: ClipAnswers) -> str:
    """One answer made consistent with its clip; questions of unknown type are kept as given."""
    qtype = question_type(row["question"])
    if qtype == "fine":
        return clip.fine
    if qtype == "coarse":
        return clip.coarse
    if qtype == "au":
        return official()["answers"]["au_separator"].join(clip.aus)
    if qtype == "combined":
        return combined_sentence(row["question"], clip)
    if qtype == "yes_no":
        return snap(raw, parse.parse_yes_no, ("yes", "no"))
    if qtype == "left_right":
        return snap(raw, parse.parse_left_right, ("left", "right"))
    return raw


def make_consistent(rows: list[dict], answers: list[str]) -> list[str]:
    """Consistent answers for ``rows`` (any order, several clips), aligned with ``answers``."""
    by_clip: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_clip.setdefault(clip_key(row), []).append(i)
    result = list(answers)
    for indices in by_clip.values():
        clip = _gather([rows[i] for i in indices], [answers[i] for i in indices])
        for i in indices:
            result[i] = _rewrite(rows[i], answers[i], clip)
    return result
