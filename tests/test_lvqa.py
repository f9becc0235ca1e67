"""ME-LVQA answers: parsers, the localisation format, and the lvqa metrics on fixtures."""

import math

import pytest

from vqa.cli import main as cli
from vqa.errors import UserError
from vqa.jsonl import write_jsonl
from vqa.lvqa import (
    au_inventory_metrics,
    count_metrics,
    parse_count,
    parse_event_type,
    parse_intervals,
    render_intervals,
    texts,
)
from vqa.question_types import question_type
from vqa.score import score_rows


@pytest.mark.parametrize(
    "intervals", [[], [(5, 5)], [(120, 135), (840, 861)], [(1, 2), (3, 4), (10, 2000)]]
)
def test_localisation_answers_round_trip(intervals):
    assert parse_intervals(render_intervals(intervals)) == intervals


@pytest.mark.parametrize(
    "text,intervals",
    [
        ("Frames 120 to 135 and 840–861.", [(120, 135), (840, 861)]),
        ("135-120", [(120, 135)]),
        ("There is none.", []),
        ("I cannot tell.", None),
    ],
)
def test_free_localisation_answers(text, intervals):
    assert parse_intervals(text) == intervals


@pytest.mark.parametrize(
    "text,n", [("3", 3), ("There are 12 events.", 12), ("two", 2), ("No events.", 0), ("?", None)]
)
def test_counts(text, n):
    assert parse_count(text) == n


@pytest.mark.parametrize(
    "text,kind",
    [
        ("micro-expression", "micro"),
        ("It is a Macro-expression.", "macro"),
        ("micro or macro", None),
        ("a smile", None),
    ],
)
def test_event_types(text, kind):
    assert parse_event_type(text) == kind


def test_question_types_of_the_megc2026_phrasings():
    q = texts()["questions"]
    assert question_type(q["count_total"]) == "lvqa_count_total"
    assert question_type(q["count_micro"]) == "lvqa_count_micro"
    assert question_type(q["count_macro"]) == "lvqa_count_macro"
    assert question_type(q["au_inventory"]) == "lvqa_au_inventory"
    assert question_type(q["event_type"].format(k=33)) == "lvqa_event_type"
    assert question_type(q["spot_micro"]) == "lvqa_spot_micro"
    assert question_type(q["spot_macro"]) == "lvqa_spot_macro"
    assert question_type("What are the action units?") == "au"


def test_count_mae_and_rmse():
    block = count_metrics([(3, 3), (2, 4), (5, 2), (1, None)])
    assert block["mae"] == pytest.approx(5 / 3)
    assert block["rmse"] == pytest.approx(math.sqrt(13 / 3))
    assert (block["n"], block["unparsed"]) == (3, 1)
    assert block["constant_mae"] == pytest.approx(5 / 4)  # "2" (or "3") for every video
    empty = {"mae": None, "rmse": None, "constant_mae": None, "n": 0, "unparsed": 0}
    assert count_metrics([]) == empty


def test_constant_mae_is_the_lowest_mae_of_any_constant_answer():
    truths = [0, 1, 1, 4, 7, 7, 9]
    best = count_metrics([(t, None) for t in truths])["constant_mae"]
    others = [sum(abs(t - c) for t in truths) / len(truths) for c in range(12)]
    assert best == pytest.approx(min(others))


def test_au_inventory_f1_and_jaccard():
    pairs = [
        (frozenset("ab"), frozenset("ac")),  # F1 2*1/4, Jaccard 1/3
        (frozenset("a"), frozenset("a")),  # 1, 1
        (frozenset("abc"), frozenset()),  # 0, 0
    ]
    block = au_inventory_metrics(pairs)
    assert block["f1"] == pytest.approx(0.5) and block["jaccard"] == pytest.approx(4 / 9)
    assert block["n"] == 3


def _row(video, k, question, answer, dataset="samm_lv"):
    return {
        "id": f"{dataset}_{video}_{k}",
        "dataset": dataset,
        "question": question,
        "answer": answer,
    }


def test_score_rows_fill_the_lvqa_and_spotting_blocks():
    q = texts()["questions"]
    truth = [
        _row("v1", 1, q["count_total"], "3"),
        _row("v1", 2, q["count_micro"], "2"),
        _row("v1", 3, q["count_macro"], "1"),
        _row("v1", 4, q["au_inventory"], "brow lowerer, lid tightener"),
        _row("v1", 5, q["event_type"].format(k=1), "micro-expression"),
        _row("v1", 6, q["event_type"].format(k=3), "macro-expression"),
        _row("v1", 7, q["spot_micro"], "10-20; 300-320"),
        _row("v1", 8, q["spot_macro"], "500-700"),
    ]
    answers = ["5", "two", "I don't know", "brow lowerer", "micro", "micro", "10-20", "none"]
    preds = [{**row, "answer": a} for row, a in zip(truth, answers, strict=True)]
    block = score_rows(preds, truth)["overall"]
    lv = block["lvqa"]
    assert lv["count"]["total"] == {
        "mae": 2.0,
        "rmse": 2.0,
        "constant_mae": 0.0,
        "n": 1,
        "unparsed": 0,
    }
    assert lv["count"]["micro"]["mae"] == 0 and lv["count"]["macro"]["unparsed"] == 1
    assert lv["au_inventory"]["f1"] == pytest.approx(2 / 3)
    assert lv["au_inventory"]["jaccard"] == pytest.approx(1 / 2)
    # micro F1 = 2/3 (right), macro F1 = 0 (missed): UF1 1/3, UAR 1/2
    assert lv["event_type"]["uf1"] == pytest.approx(1 / 3) and lv["event_type"]["uar"] == 0.5
    spot = block["spotting"]
    assert (spot["tp"], spot["fp"], spot["fn"]) == (1, 0, 2)
    assert spot["by_type"]["macro"]["precision"] is None


def test_unreadable_ground_truth_is_a_user_error():
    row = _row("v1", 1, texts()["questions"]["count_total"], "several")
    with pytest.raises(UserError, match="names no number of events"):
        score_rows([row], [row])


def test_reversed_interval_in_the_ground_truth(tmp_path, capsys):
    q = texts()["questions"]
    truth = [_row("v1", 1, q["spot_macro"], "500-700"), _row("v1", 2, q["spot_micro"], "50-10")]
    gt, pred, out = tmp_path / "gt.jsonl", tmp_path / "pred.jsonl", tmp_path / "scores"
    write_jsonl(gt, truth)
    write_jsonl(pred, [{**row, "answer": "10-50"} for row in truth])
    assert cli(["score", "--pred", str(pred), "--gt", str(gt), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{gt}:2: ground-truth answer '50-10': onset 50" in err
    assert not out.exists()


def test_zero_events_and_none_are_not_reported_as_unparsed(tmp_path):
    q = texts()["questions"]
    truth = [
        _row("v1", 1, q["count_macro"], "0"),
        _row("v1", 2, q["spot_macro"], "none"),
        _row("v1", 3, q["spot_micro"], "10-20"),
    ]
    answers = ["0", "none", "I cannot tell"]
    gt, pred, out = tmp_path / "gt.jsonl", tmp_path / "pred.jsonl", tmp_path / "scores"
    write_jsonl(gt, truth)
    write_jsonl(pred, [{**row, "answer": a} for row, a in zip(truth, answers, strict=True)])
    assert cli(["score", "--pred", str(pred), "--gt", str(gt), "--out", str(out)]) == 0
    report = (out / "report.md").read_text().split("## Unparsed answers")[1]
    assert "| samm_lv_v1_3 | lvqa_spot_micro | lvqa_spot_micro | I cannot tell |" in report
    assert "samm_lv_v1_1" not in report and "samm_lv_v1_2" not in report


def test_consistency_makes_a_videos_answers_agree():
    from vqa.question_types import make_consistent, submission_name

    q = texts()["questions"]
    rows = [
        {"video_id": f"samm_test_1_001_2_{k}", "video": "1_001_2", "question": question}
        for k, question in enumerate(
            [
                q["count_total"],
                q["count_micro"],
                q["count_macro"],
                q["event_type"].format(k=2),
                q["spot_micro"],
                q["spot_macro"],
            ],
            1,
        )
    ]
    answers = ["5", "1", "1", "micro", "300-320, 10-20", "100-200"]
    assert make_consistent(rows, answers) == [
        "3",  # micro + macro
        "2",  # the listed micro-expressions
        "1",
        "macro-expression",  # events by onset: 10-20 micro, 100-200 macro, 300-320 micro
        "10-20; 300-320",
        "100-200",
    ]
    assert submission_name(rows[0], "2026") == "me_lvqa_samm_test_pred.jsonl"
