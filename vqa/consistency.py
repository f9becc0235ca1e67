"""The ME-VQA consistency rules (``me-vqa infer --consistency``), per question type.

Per clip: the labels its answers name are parsed (a question's own answer first, then the
combined sentence, then the open-ended analysis); what no answer names clearly is snapped to
the closest vocabulary entry by spelling. The coarse class follows from the fine class; the
combined answer is rebuilt in the organisers' sentence from the clip's own AU, fine and
coarse answers, and an analysis that disagrees with them is rewritten from them. The
registry (:mod:`vqa.question_types`) says which rule each question type follows.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from vqa import parse
from vqa.prompts import official
from vqa.taxonomy import AU_NAMES, COARSE_CLASSES, FINE_CLASSES, FINE_TO_COARSE

AU_VOCABULARY = tuple(AU_NAMES.values())


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


def _parsed(raw: dict[str, str]) -> tuple[list[str], str | None, str | None]:
    """(AUs, fine, coarse) each from the first source naming it: the question's own answer,
    then the combined sentence, then the open-ended analysis."""
    sources = [
        (
            parse.parse_aus(raw["au"]) if "au" in raw else [],
            parse.parse_fine(raw["fine"]) if "fine" in raw else None,
            parse.parse_coarse(raw["coarse"]) if "coarse" in raw else None,
        )
    ]
    if "combined" in raw:
        sources.append(parse.parse_combined(raw["combined"]))
    if "analysis" in raw:
        text = raw["analysis"]
        sources.append((parse.parse_aus(text), parse.parse_fine(text), parse.parse_coarse(text)))
    aus = next((s[0] for s in sources if s[0]), [])
    fine = next((s[1] for s in sources if s[1]), None)
    coarse = next((s[2] for s in sources if s[2]), None)
    return aus, fine, coarse


def first_by_type(items: list[tuple[str, dict, str]]) -> dict[str, str]:
    """Question type -> the raw answer of its first question in a group."""
    raw: dict[str, str] = {}
    for name, _, answer in items:
        raw.setdefault(name, answer)
    return raw


def gather_clip(raw: dict[str, str]) -> ClipAnswers:
    """A clip's labels from its raw answers by question type: parsed ones first, then snapped.

    The fine class wins over the coarse one; a guessed fine class stays within a parsed coarse
    class. Labels no question of the clip asks for stay None.
    """
    aus, fine, coarse = _parsed(raw)
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


def _joined(aus: list[str]) -> str:
    return official()["answers"]["au_separator"].join(aus)


def fine_answer(question: str, raw: str, clip: ClipAnswers) -> str:
    return clip.fine


def coarse_answer(question: str, raw: str, clip: ClipAnswers) -> str:
    return clip.coarse


def au_answer(question: str, raw: str, clip: ClipAnswers) -> str:
    return _joined(clip.aus)


def yes_no_answer(question: str, raw: str, clip: ClipAnswers) -> str:
    return snap(raw, parse.parse_yes_no, ("yes", "no"))


def side_answer(question: str, raw: str, clip: ClipAnswers) -> str:
    return snap(raw, parse.parse_left_right, ("left", "right"))


def combined_answer(question: str, raw: str, clip: ClipAnswers) -> str:
    """The organisers' combined answer built from the clip's labels."""
    texts = official()
    one = question.strip().lower() == texts["questions"]["combined_one"].lower()
    many = question.strip().lower() == texts["questions"]["combined_many"].lower()
    template = "combined_one" if one or (not many and len(clip.aus) == 1) else "combined_many"
    return texts["answers"][template].format(
        aus=_joined(clip.aus), fine=clip.fine, coarse=clip.coarse
    )


def analysis_text(aus: list[str], fine: str, coarse: str, template: int = 0) -> str:
    """An analysis in one of the templates of prompts/questions.yaml (``analysis.answers``)."""
    templates = official()["analysis"]["answers"]
    names = f"{', '.join(aus[:-1])} and {aus[-1]}" if len(aus) > 1 else "".join(aus)
    return templates[template % len(templates)].format(aus=names, fine=fine, coarse=coarse)


def analysis_answer(question: str, raw: str, clip: ClipAnswers) -> str:
    """The analysis as given when it names the clip's classes and AUs, else one built from them."""
    if clip.fine is None or not clip.aus:
        return raw
    agrees = (
        parse.parse_fine(raw) == clip.fine
        and parse.parse_coarse(raw) == clip.coarse
        and set(clip.aus) <= set(parse.parse_aus(raw))
    )
    return raw if agrees else analysis_text(clip.aus, clip.fine, clip.coarse)
