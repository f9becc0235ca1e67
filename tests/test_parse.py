import json
from pathlib import Path

import pytest

from vqa.parse import (
    parse_aus,
    parse_coarse,
    parse_combined,
    parse_fine,
    parse_left_right,
    parse_yes_no,
)
from vqa.prompts import official
from vqa.question_types import question_type

PREDICTIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "megc2025" / "predictions"

# (answer text, expected fine label, expected coarse label)
FREE_TEXT = [
    ("disgust", "disgust", "negative"),
    ("Disgust.", "disgust", "negative"),
    ("disgusted", "disgust", "negative"),
    ("  HAPPINESS  ", "happiness", "positive"),
    ("happy", "happiness", "positive"),
    ("The person looks happy.", "happiness", "positive"),
    ("sad", "sadness", "negative"),
    ("Sadness", "sadness", "negative"),
    ("angry", "anger", "negative"),
    ("The subject appears angry.", "anger", "negative"),
    ("fearful", "fear", "negative"),
    ("scared", "fear", "negative"),
    ("She seems afraid.", "fear", "negative"),
    ("surprised", "surprise", "surprise"),
    ("Surprise!", "surprise", "surprise"),
    ("contemptuous", "contempt", "negative"),
    ("contempt", "contempt", "negative"),
    ("repressed", "repression", "negative"),
    ("repression", "repression", "negative"),
    ("The fine-grained expression class is anger.", "anger", "negative"),
    ("fine-grained expression class: sadness", "sadness", "negative"),
    ("Fine-grained class = fear", "fear", "negative"),
    ("The coarse expression class is negative.", None, "negative"),
    ("coarse expression class: positive", None, "positive"),
    # no slot for the fine level: the whole answer is read (surprise is a fine class too)
    ("The coarse class is surprise", "surprise", "surprise"),
    ("The coarse expression class is anger.", "anger", "negative"),
    # the label before its marker: the slot names nothing, the whole answer is read
    ("It shows disgust, under the negative coarse expression category.", "disgust", "negative"),
    ("negative", None, "negative"),
    ("Negative.", None, "negative"),
    ("positive", None, "positive"),
    ("It is a negative micro-expression.", None, "negative"),
    ("Disgust, which is a negative emotion.", "disgust", "negative"),
    ("The expression is not positive, it is negative.", None, "negative"),
    ("Not happy but sad.", "sadness", "negative"),
    ("It isn't anger, it's disgust.", "disgust", "negative"),
    ("The face shows no fear; the emotion is surprise.", "surprise", "surprise"),
    ("disgust or anger", None, "negative"),
    ("happy or sad", None, None),
    ("positive or negative", None, None),
    ("neither positive nor negative", None, None),
    ("I cannot tell.", None, None),
    ("", None, None),
    ("neutral", None, None),
    ("others", None, None),
    ("confused", None, None),
    (
        "The fine-grained expression class is disgust, and the coarse expression class is "
        "negative.",
        "disgust",
        "negative",
    ),
    (
        "fine-grained expression class: disgust, sadness. coarse expression class: negative.",
        None,
        "negative",
    ),
    (
        "The fine-grained expression class is surprise, and the coarse expression class is "
        "negative.",
        "surprise",
        "negative",
    ),
    ("Answer: happiness (positive)", "happiness", "positive"),
    ("The micro-expression is negative (disgust).", "disgust", "negative"),
    ("He is smiling.", "happiness", "positive"),
    ("astonished", "surprise", "surprise"),
    ("The coarse expression class is Arousal.", None, None),
    ("coarse expression class: sad", "sadness", "negative"),
]


def test_free_text_table_is_large():
    assert len(FREE_TEXT) >= 40


@pytest.mark.parametrize("text,fine,coarse", FREE_TEXT)
def test_free_text_emotions(text, fine, coarse):
    assert parse_fine(text) == fine
    assert parse_coarse(text) == coarse


def _combined(key: str, aus: str, fine: str, coarse: str) -> str:
    return official()["answers"][key].format(aus=aus, fine=fine, coarse=coarse)


def test_official_combined_sentence_round_trips():
    text = _combined("combined_many", "brow lowerer, lid tightener", "anger", "negative")
    assert parse_combined(text) == (["brow lowerer", "lid tightener"], "anger", "negative")
    one = _combined("combined_one", "dimpler", "contempt", "negative")
    assert parse_combined(one) == (["dimpler"], "contempt", "negative")
    assert parse_fine(text) == "anger" and parse_coarse(text) == "negative"


def test_combined_slot_with_fine_word_in_coarse_place():
    text = _combined("combined_one", "lip corner puller", "smiling with eyes open", "happiness")
    assert parse_combined(text) == (["lip corner puller"], "happiness", "positive")
    odd = _combined("combined_one", "inner brow raiser", "raised inner brows", "Arousal")
    assert parse_combined(odd) == (["inner brow raiser"], None, None)


def test_combined_free_text_forms():
    text = (
        "action unit: chin raiser. fine-grained expression class: surprise. "
        "coarse expression class: surprise."
    )
    assert parse_combined(text) == (["chin raiser"], "surprise", "surprise")
    none = "action units: none. fine-grained expression: neutral. coarse expression class: neutral."
    assert parse_combined(none) == ([], None, None)


@pytest.mark.parametrize(
    "text,aus",
    [
        ("brow lowerer, lid tightener", ["brow lowerer", "lid tightener"]),
        ("Lip Corner Puller", ["lip corner puller"]),
        ("AU12", ["lip corner puller"]),
        ("AU 4 and AU 7", ["brow lowerer", "lid tightener"]),
        ("AU01, AU02", ["inner brow raiser", "outer brow raiser"]),
        (
            "AU1 (Brow Lowerer), AU12 (Lip Corner Puller)",
            ["inner brow raiser", "lip corner puller"],
        ),
        ("AU12 lip corner puller, lip corner puller", ["lip corner puller"]),
        (
            "lip tightener, lid tightener, lip corner depressor",
            ["lip tightener", "lid tightener", "lip corner depressor"],
        ),
        ("upper lid tightener", ["lid tightener"]),
        ("sharp lip puller", ["sharp lip puller"]),
        ("AU99", []),
        ("none", []),
        ("", []),
    ],
)
def test_parse_aus(text, aus):
    assert parse_aus(text) == aus


@pytest.mark.parametrize(
    "text,label",
    [
        ("yes", "yes"),
        ("Yes.", "yes"),
        ("No", "no"),
        ("no, it is not shown", "no"),
        ("Yes, the action unit is shown on the face.", "yes"),
        ("The action unit is not present.", "no"),
        ("It isn't visible.", "no"),
        ("It is shown on the face.", "yes"),
        ("maybe", None),
        ("", None),
    ],
)
def test_parse_yes_no(text, label):
    assert parse_yes_no(text) == label


@pytest.mark.parametrize(
    "text,side",
    [
        ("left", "left"),
        ("Right.", "right"),
        ("It is located on the left face.", "left"),
        ("Not left, but right.", "right"),
        ("left or right", None),
        ("both sides", None),
    ],
)
def test_parse_left_right(text, side):
    assert parse_left_right(text) == side


# Answers in the teams' submissions that name no ME-VQA class: "confused" and "helpless" are
# not among the fine classes of vqa.taxonomy (nor CAS(ME)^3's emotion categories), and
# mapping them to a class would be a guess; they stay unparsed and count as wrong.
NO_CLASS_ANSWERS = {"confused", "helpless"}


def _prediction_rows():
    if not PREDICTIONS.is_dir():
        pytest.skip("shared prediction files are absent")
    return [
        json.loads(line) for path in sorted(PREDICTIONS.glob("*/*.jsonl")) for line in path.open()
    ]


def test_every_team_emotion_answer_parses():
    parser = {"coarse": parse_coarse, "fine": parse_fine}
    checked = 0
    for row in _prediction_rows():
        qtype = question_type(row["question"])
        if qtype in parser:
            label = parser[qtype](row["answer"])
            assert (label is None) == (row["answer"] in NO_CLASS_ANSWERS), row
            checked += 1
    assert checked == 96  # 48 clips, one coarse and one fine question each


# AU answers in the submissions that use no FACS name or code (a head movement without a
# side, an eyelid disorder, informal face-part wording): they parse to no AU.
NO_AU_ANSWERS = {
    "blepharospasm",
    "negative head shake",
    "negative head tilt",
    "negative mouth corner depressor",
    "right eyebrow raise",
}


def test_every_team_au_answer_names_aus():
    for row in _prediction_rows():
        qtype = question_type(row["question"])
        if qtype == "au":
            assert bool(parse_aus(row["answer"])) != (row["answer"] in NO_AU_ANSWERS), row
        elif qtype == "yes_no":
            assert parse_yes_no(row["answer"]) in ("yes", "no"), row
