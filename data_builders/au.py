"""Action-unit strings of the databases' label sheets, parsed into FACS action units.

The sheets write AUs as ``4+7+L10`` (CASME II), ``(R6 or R12)+R15``, ``15A+17``, ``A/L12``,
``ref(7B)+43``, ``10A/B`` or ``R14+17+soft focus`` (SAMM) and ``T18``, ``B23`` (CAS(ME)^3).
The rules, as the MEGC2025 organisers applied them:

- intensity letters after the number are dropped (``15A`` -> AU 15, ``10A/B`` -> AU 10);
- ``L``/``R`` before the number mark a unilateral (lateral) AU; other prefix letters
  (``A`` asymmetric, ``T``, ``B``) are kept in the code but are not lateral;
- ``ref(7B)`` counts as AU 7; ``X or Y`` and ``X/Y`` keep both; parentheses only group;
- free text without digits (``soft focus``) is dropped and reported;
- order is kept and a repeated AU number keeps its first occurrence.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from vqa.taxonomy import AU_NAMES

_SEPARATORS = re.compile(r"\+|,|;|\bor\b|(?<=\d)/(?=[A-Za-z]*\d)", re.IGNORECASE)
_TOKEN = re.compile(
    r"^(?P<prefix>[A-Za-z](?:\s*/\s*[A-Za-z])*)?\s*(?P<number>\d+)\s*(?P<intensity>[A-Ea-e](?:\s*/\s*[A-Ea-e])*)?$"
)
_REF = re.compile(r"ref\s*\(", re.IGNORECASE)
_LETTERS_NUMBER = re.compile(r"^[A-Za-z]+(\d+)\??$")


class AUParseError(ValueError):
    """An AU string, or a part of one, that names no action unit."""


@dataclass(frozen=True)
class ActionUnit:
    """One FACS action unit of a clip."""

    code: str
    number: int
    name: str
    side: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def _side(prefix: str) -> str | None:
    letters = set(prefix.upper().replace("/", "").replace(" ", ""))
    lateral = letters & {"L", "R"}
    return lateral.pop() if len(lateral) == 1 else None


def parse_token(token: str) -> ActionUnit:
    """One AU such as ``L10``, ``15A``, ``A/L12`` or ``A14C``."""
    match = _TOKEN.match(token)
    if not match:
        raise AUParseError(f"cannot read AU {token!r}")
    number = int(match["number"])
    if number not in AU_NAMES:
        raise AUParseError(f"AU {number} in {token!r} is not a known FACS action unit")
    prefix = match["prefix"] or ""
    code = re.sub(r"\s+", "", token)
    return ActionUnit(code=code, number=number, name=AU_NAMES[number], side=_side(prefix))


def parse_aus(text: str) -> tuple[list[ActionUnit], list[str]]:
    """Action units of a sheet cell, and the free-text parts that were dropped.

    Raises :class:`AUParseError` when a part with digits is not an AU or no AU is found.
    """
    cleaned = _REF.sub("(", str(text)).replace("(", " ").replace(")", " ")
    units: dict[int, ActionUnit] = {}
    dropped = []
    for part in _SEPARATORS.split(cleaned):
        part = part.strip()
        if not part:
            continue
        if not any(ch.isdigit() for ch in part):
            dropped.append(part)
            continue
        unit = parse_token(part)
        units.setdefault(unit.number, unit)
    if not units:
        raise AUParseError(f"no action unit in {str(text).strip()!r}")
    return list(units.values()), dropped


_JOINED_OR = re.compile(r"(?<=\d)\s*or\s*(?=[A-Za-z]?\d)", re.IGNORECASE)


def parse_aus_lenient(text: str) -> tuple[list[ActionUnit], list[str]]:
    """Action units of a long-video sheet cell, whose notes are freer than the clip sheets'.

    ``14or23`` is read as ``14 or 23``; a part that is not an AU (``double 45``, ``9A ref(L12
    or L10)``) is read word by word; words that name no known FACS AU (``glare``, ``80``,
    ``NULL``) are returned as dropped instead of raising. An empty cell gives no AU.
    """
    cleaned = _REF.sub("(", _JOINED_OR.sub(" or ", str(text)))
    cleaned = cleaned.replace("(", " ").replace(")", " ")
    units: dict[int, ActionUnit] = {}
    dropped = []
    for part in (p.strip() for p in _SEPARATORS.split(cleaned)):
        for token in [part] if _TOKEN.match(part) else part.split():
            unit = _loose_token(token)
            if unit is None:
                dropped.append(token)
                continue
            units.setdefault(unit.number, unit)
    return list(units.values()), dropped


def _loose_token(token: str) -> ActionUnit | None:
    """An AU of a free long-video note: a token, or a FACS number after any letters or
    before a ``?`` of doubt (``ADR30``, ``31?``); None when it names no known AU."""
    try:
        return parse_token(token.rstrip("?"))
    except AUParseError:
        match = _LETTERS_NUMBER.match(token)
        number = int(match[1]) if match else None
        return ActionUnit(token, number, AU_NAMES[number], None) if number in AU_NAMES else None
