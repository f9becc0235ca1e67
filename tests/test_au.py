"""AU strings of the CASME II, SAMM and CAS(ME)^3 sheets."""

from __future__ import annotations

import pytest

from data_builders.au import AUParseError, parse_aus, parse_aus_lenient


def summary(text: str) -> list[tuple[int, str | None]]:
    aus, _ = parse_aus(text)
    return [(au.number, au.side) for au in aus]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4+7+L10", [(4, None), (7, None), (10, "L")]),
        ("15A+17", [(15, None), (17, None)]),
        ("A14C", [(14, None)]),
        ("A12+A7", [(12, None), (7, None)]),
        ("(R6 or R12)+R15", [(6, "R"), (12, "R"), (15, "R")]),
        ("(R6 or R12) + R15", [(6, "R"), (12, "R"), (15, "R")]),
        ("L12 or L14", [(12, "L"), (14, "L")]),
        ("ref(7B)+43", [(7, None), (43, None)]),
        ("7B+ ref(43)", [(7, None), (43, None)]),
        ("ref(L10)+A12B", [(10, "L"), (12, None)]),
        ("10A/B", [(10, None)]),
        ("A/L12", [(12, "L")]),
        ("12/14", [(12, None), (14, None)]),
        ("R14A or 17A or 24A", [(14, "R"), (17, None), (24, None)]),
        ("12+15 ", [(12, None), (15, None)]),
        ("T28+14", [(28, None), (14, None)]),
        ("B23", [(23, None)]),
        ("2+1", [(2, None), (1, None)]),
        ("L2+L1+2", [(2, "L"), (1, "L")]),
    ],
)
def test_parse(text, expected):
    assert summary(text) == expected


def test_names_codes_and_free_text():
    aus, dropped = parse_aus("R14+17+soft focus")
    assert [au.to_dict() for au in aus] == [
        {"code": "R14", "number": 14, "name": "dimpler", "side": "R"},
        {"code": "17", "number": 17, "name": "chin raiser", "side": None},
    ]
    assert dropped == ["soft focus"]
    assert [au.name for au in parse_aus("L12 + 61")[0]] == ["lip corner puller", "eyes left"]
    assert [au.name for au in parse_aus("24+38+39")[0]] == [
        "lip pressor",
        "nostril dilater",
        "nostril compress",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soft focus", "no action unit in 'soft focus'"),
        ("", "no action unit in ''"),
        ("12x3", "cannot read AU '12x3'"),
        ("4+99", "AU 99 in '99' is not a known FACS action unit"),
    ],
)
def test_unparseable(text, message):
    with pytest.raises(AUParseError, match=message):
        parse_aus(text)


def test_long_video_notes_keep_every_number_that_names_a_facs_au():
    """SAMM Long Videos rows 010_7_1 and 024_3_1 note ``26+ADR30`` and ``31?``."""
    numbers = {t: [u.number for u in parse_aus_lenient(t)[0]] for t in ("26+ADR30", "31?")}
    assert numbers == {"26+ADR30": [26, 30], "31?": [31]}
    assert parse_aus_lenient("4+glare+80") == (parse_aus_lenient("4")[0], ["glare", "80"])
