"""MEGC2026 ME-VQA-v2's open-ended analysis question: recognised, parsed, built, consistent."""

from __future__ import annotations

from pathlib import Path

import pytest

from vqa.consistency import analysis_text
from vqa.jsonl import read_jsonl
from vqa.parse import parse_aus, parse_coarse, parse_fine
from vqa.prompts import official
from vqa.question_types import budget, group_key, make_consistent, question_type

TEAM_C = Path(__file__).resolve().parents[2] / "shared" / "data" / "megc2026" / "predictions"
TEAM_C = TEAM_C / "team_c"
ANALYSIS = official()["analysis"]


@pytest.mark.parametrize(
    "question",
    [
        *ANALYSIS["questions"],
        "Analyze the facial expression in this clip.",
        "Describe the micro-expression you observe.",
        "Could you explain what the face shows?",
    ],
)
def test_analysis_requests_are_recognised_as_one_family(question):
    assert question_type(question) == "analysis"
    assert budget(question) > budget(official()["questions"]["combined_many"])


@pytest.mark.skipif(not TEAM_C.is_dir(), reason="../shared/data is absent")
def test_team_c_analyses_name_the_classes_and_aus_of_their_own_answers():
    clips: dict[str, dict[str, str]] = {}
    for path in sorted(TEAM_C.glob("*.jsonl")):
        for row in read_jsonl(path):
            clips.setdefault(group_key(row), {})[question_type(row["question"])] = row["answer"]
    assert len(clips) == 24
    for answers in clips.values():
        analysis = answers["analysis"]
        assert parse_coarse(analysis) == parse_coarse(answers["coarse"]), analysis
        assert parse_fine(analysis) == parse_fine(answers["fine"]), analysis
        assert set(parse_aus(answers["au"])) <= set(parse_aus(analysis)), analysis


@pytest.mark.parametrize("template", range(len(ANALYSIS["answers"])))
@pytest.mark.parametrize(
    "aus, fine, coarse",
    [
        (["lip corner puller"], "happiness", "positive"),
        (["inner brow raiser", "outer brow raiser", "jaw drop"], "surprise", "surprise"),
        (["brow lowerer", "lid tightener"], "anger", "negative"),
        (["dimpler"], "contempt", "negative"),
    ],
)
def test_built_analyses_parse_back_to_their_labels(template, aus, fine, coarse):
    text = analysis_text(aus, fine, coarse, template)
    assert (parse_fine(text), parse_coarse(text), parse_aus(text)) == (fine, coarse, aus)


def test_consistency_rewrites_an_analysis_that_disagrees_with_the_clip():
    q = official()["questions"]
    rows = [
        {"video_id": f"samm_test_SAMM-1_{k}", "video": "SAMM-1", "question": question}
        for k, question in enumerate(
            [q["coarse"], q["fine"], q["au_one"], ANALYSIS["questions"][0]], 1
        )
    ]
    agreeing = analysis_text(["dimpler"], "contempt", "negative", 2)
    fixed = make_consistent(rows, ["negative", "contempt", "dimpler", agreeing])
    assert fixed[3] == agreeing  # already consistent: kept as the model wrote it
    fixed = make_consistent(rows, ["negative", "contempt", "dimpler", "The person looks happy."])
    assert fixed[3] == analysis_text(["dimpler"], "contempt", "negative")
