"""Answer text -> labels: emotion classes, action units, yes/no and left/right.

Works on the organisers' exact answers, their combined sentence and other models' free
text. A text that names no label, or several without a clear one, parses to ``None``
(``[]`` for action units). Label lists come from :mod:`vqa.taxonomy`; the combined
sentence's phrasing comes from ``prompts/questions.yaml``.

Rules, in order:

- A label word right after a negation ("not", "no", "isn't", "neither", "nor", "without"),
  within two words and before any punctuation or "but"/"rather", does not count.
- When the text has slots ("... fine-grained expression class is X", "coarse class: Y"),
  each question reads its own slot first; an answer with no slot for the asked level, or
  whose slot names nothing ("the negative coarse expression category"), is read whole, so
  a fine question answered "The coarse expression class is anger." reads anger.
- Coarse: a coarse word (positive, negative, surprise and their inflections) wins; if the
  text names none, the coarse class of its fine label is used.
"""

from __future__ import annotations

import functools
import re

from vqa.prompts import official
from vqa.taxonomy import AU_NAMES, COARSE_CLASSES, EMOTION_SPELLINGS, FINE_TO_COARSE

# Words that name a fine class, beyond the databases' own spellings in the taxonomy.
_FINE_SYNONYMS = {
    "happiness": ("joy", "joyful", "glad", "pleased", "smile", "smiling", "smiles", "amused"),
    "sadness": ("sorrow", "sorrowful", "unhappy", "unhappiness", "grief", "saddened"),
    "anger": (
        "annoyed",
        "annoyance",
        "irritated",
        "irritation",
        "furious",
        "fury",
        "rage",
        "angered",
    ),
    "disgust": ("disgusting", "revulsion", "repulsed", "revolted"),
    "contempt": ("contemptuous", "disdain", "disdainful", "scorn", "scornful"),
    "fear": ("fearful", "afraid", "scared", "frightened", "fright", "terrified", "terror"),
    "surprise": ("surprising", "astonished", "astonishment", "amazed", "amazement", "shocked"),
    "repression": ("repressed", "repressing", "suppressed", "suppression"),
}
FINE_WORDS: dict[str, str] = {
    **{word: label for word, label in EMOTION_SPELLINGS.items() if label in FINE_TO_COARSE},
    **{word: label for label, words in _FINE_SYNONYMS.items() for word in words},
}
COARSE_WORDS: dict[str, str] = {
    **{label: label for label in COARSE_CLASSES},
    "positively": "positive",
    "negatively": "negative",
    **{word: "surprise" for word, label in FINE_WORDS.items() if label == "surprise"},
}
_YES = {
    "yes": "yes",
    "yeah": "yes",
    "yep": "yes",
    "true": "yes",
    "no": "no",
    "nope": "no",
    "false": "no",
}
_AFFIRM = {
    "present",
    "shown",
    "visible",
    "appears",
    "displayed",
    "observed",
    "detected",
    "activated",
}
_SIDES = {"left": "left", "right": "right"}

_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,;:!?()/\n]")
_NEGATORS = {"not", "no", "non", "never", "neither", "nor", "without", "nothing", "none"}
_SCOPE_ENDS = {"but", "rather", "instead", "however", "though", "although"}
_NEGATION_REACH = 2
_CACHE = 1 << 16  # answers repeat a lot ("negative", "yes"); parse each distinct text once

_CLASS_TAIL = r"(?:\s+(?:expression|emotion))?(?:\s+(?:class|label|category))?"
_SLOT_MARKS = {
    "fine": re.compile(
        rf"\bfine[- ]?grained{_CLASS_TAIL}|\bfine\s+(?:expression|emotion){_CLASS_TAIL}", re.I
    ),
    "coarse": re.compile(rf"\bcoarse(?:[- ]?grained)?{_CLASS_TAIL}", re.I),
}


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _hits(text: str, table: dict[str, str]) -> list[str]:
    """Labels of the words of ``text`` found in ``table``, negated mentions left out."""
    found, negated = [], 0
    for tok in _tokens(text):
        if not tok[0].isalpha() or tok in _SCOPE_ENDS:
            negated = 0
        elif tok in _NEGATORS or tok.endswith("n't"):
            negated = _NEGATION_REACH
        else:
            if tok in table and not negated:
                found.append(table[tok])
            negated = max(negated - 1, 0)
    return found


def _only(labels: list[str]) -> str | None:
    """The one label named, or None when none or several distinct ones are."""
    distinct = set(labels)
    return distinct.pop() if len(distinct) == 1 else None


def _slots(text: str) -> dict[str, str]:
    """Split a text at 'fine-grained class' / 'coarse class' markers; 'head' precedes them."""
    marks = sorted(
        (m.start(), m.end(), name) for name, rx in _SLOT_MARKS.items() for m in rx.finditer(text)
    )
    slots = {"head": text[: marks[0][0]] if marks else text}
    for i, (_, end, name) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        slots[name] = slots.get(name, "") + " . " + text[end:stop]
    return slots


def _fine_in(text: str) -> str | None:
    return _only(_hits(text, FINE_WORDS))


def _coarse_in(text: str) -> str | None:
    coarse = _hits(text, COARSE_WORDS)
    if coarse:
        return _only(coarse)
    return _only([FINE_TO_COARSE[label] for label in _hits(text, FINE_WORDS)])


@functools.cache
def _combined_patterns() -> tuple[re.Pattern, ...]:
    """The organisers' combined answer sentences as regexes with aus/fine/coarse groups."""
    answers = official()["answers"]
    patterns = []
    for key in ("combined_one", "combined_many"):
        rx = re.escape(answers[key])
        for field in ("aus", "fine", "coarse"):
            rx = rx.replace(re.escape("{" + field + "}"), f"(?P<{field}>.*?)")
        patterns.append(re.compile(rx.replace(r"\ ", r"\s+") + r"\s*$", re.I | re.S))
    return tuple(patterns)


def _official_combined(text: str) -> dict[str, str] | None:
    for pattern in _combined_patterns():
        match = pattern.match(text.strip())
        if match:
            return match.groupdict()
    return None


@functools.lru_cache(maxsize=_CACHE)
def parse_fine(text: str) -> str | None:
    """Fine emotion class named by an answer (e.g. ``"disgusted"`` -> ``"disgust"``)."""
    combined = _official_combined(text)
    if combined:
        return _fine_in(combined["fine"])
    return _fine_in(_slots(text).get("fine", "")) or _fine_in(text)


@functools.lru_cache(maxsize=_CACHE)
def parse_coarse(text: str) -> str | None:
    """Coarse class named by an answer; a fine label implies its coarse class."""
    combined = _official_combined(text)
    if combined:
        return _coarse_in(combined["coarse"])
    return _coarse_in(_slots(text).get("coarse", "")) or _coarse_in(text)


@functools.cache
def _au_pattern() -> re.Pattern:
    names = "|".join(
        re.escape(n).replace(r"\ ", r"\s+")
        for n in sorted(AU_NAMES.values(), key=len, reverse=True)
    )
    code = r"\bau\s*-?\s*0*(?P<number>\d{1,2})[a-e]?\b(?:\s*\([^)]*\))?"
    return re.compile(rf"{code}|\b(?P<name>{names})\b", re.I)


def parse_aus(text: str) -> list[str]:
    """Organisers' AU names named by an answer, in order, without repeats.

    Codes (``AU12``, ``AU 4``, ``AU01``) and names both count; a code followed by a name in
    brackets ("AU1 (inner brow raiser)") counts once, as the code says.
    """
    return list(_aus(text))


@functools.lru_cache(maxsize=_CACHE)
def _aus(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for m in _au_pattern().finditer(text):
        name = (
            AU_NAMES.get(int(m["number"])) if m["number"] else " ".join(m["name"].lower().split())
        )
        if name and name not in found:
            found.append(name)
    return tuple(found)


@functools.lru_cache(maxsize=_CACHE)
def parse_yes_no(text: str) -> str | None:
    """``"yes"``/``"no"`` from an answer to 'Is the action unit X shown on the face?'."""
    tokens = [t for t in _tokens(text) if t[0].isalpha()]
    if not tokens:
        return None
    if tokens[0] in _YES:
        return _YES[tokens[0]]
    explicit = _only([_YES[t] for t in tokens if t in _YES])
    if explicit:
        return explicit
    if any(t in _NEGATORS or t.endswith("n't") for t in tokens):
        return "no"
    return "yes" if _AFFIRM.intersection(tokens) else None


@functools.lru_cache(maxsize=_CACHE)
def parse_left_right(text: str) -> str | None:
    """``"left"``/``"right"`` from an answer to a left-or-right question."""
    return _only(_hits(text, _SIDES))


def parse_combined(text: str) -> tuple[list[str], str | None, str | None]:
    """(action units, fine class, coarse class) from an answer to the combined question."""
    combined = _official_combined(text)
    if combined:
        return (
            parse_aus(combined["aus"]),
            _fine_in(combined["fine"]),
            _coarse_in(combined["coarse"]),
        )
    slots = _slots(text)
    return parse_aus(slots["head"]), parse_fine(text), parse_coarse(text)
