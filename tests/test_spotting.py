"""Spotting scored the MEGC way: hand-computed matches, recognition/STRS, and the command."""

import csv
import json
from fractions import Fraction

import pytest

from vqa.cli import main
from vqa.spotting import Interval, iou, match_intervals, spotting_block, spotting_metrics


def iv(video, onset, offset, kind="macro", dataset="samm_lv", emotion=None):
    return Interval(dataset, video, onset, offset, kind, emotion)


def test_iou_is_exact_over_inclusive_frames():
    assert iou(iv("v", 1, 100), iv("v", 1, 50)) == Fraction(1, 2)
    assert iou(iv("v", 100, 199), iv("v", 150, 249)) == Fraction(50, 150)
    assert iou(iv("v", 1, 10), iv("v", 11, 20)) == 0
    assert iou(iv("v", 5, 5), iv("v", 5, 5)) == 1


@pytest.mark.parametrize(
    "pred,matched",
    [
        ((1, 50), True),  # IoU exactly 0.5 counts
        ((101, 200), False),  # shifted past the end
        ((35, 134), False),  # shifted: IoU 66/134 < 0.5
        ((34, 133), True),  # shifted: IoU 67/133 >= 0.5
    ],
)
def test_threshold(pred, matched):
    pairs = match_intervals([iv("v", *pred)], [iv("v", 1, 100)])
    assert bool(pairs) is matched


def test_one_prediction_matches_one_truth_and_vice_versa():
    """Trap 15: a prediction covering two true intervals counts once."""
    truth = [iv("v", 1, 60), iv("v", 41, 100)]
    pairs = match_intervals([iv("v", 1, 100)], truth)
    assert pairs == [(iv("v", 1, 100), iv("v", 1, 60))]  # tie: earlier true onset


def test_pairs_are_taken_by_highest_iou_first():
    truth = [iv("v", 1, 100), iv("v", 51, 150)]
    preds = [iv("v", 26, 125), iv("v", 1, 100)]  # in sheet order the first would take (1, 100)
    pairs = match_intervals(preds, truth)
    assert sorted((p.onset, t.onset) for p, t in pairs) == [(1, 1), (26, 51)]


# Six videos, hand-scored: split, merged, missing, extra, wrong type, shifted.
TRUTH = [
    iv("v1", 1, 100),
    iv("v2", 1, 60),
    iv("v2", 41, 100),
    iv("v3", 10, 19, "micro"),
    iv("v4", 10, 19, "micro", "casme_sq"),
    iv("v5", 1, 100, "macro", "casme_sq"),
    iv("v6", 100, 199, "macro", "casme_sq"),
]
PREDS = [
    iv("v1", 1, 50),  # split: one half matches (IoU 0.5), the other is a false positive
    iv("v1", 51, 100),
    iv("v2", 1, 100),  # merged: matches one of two
    iv("v4", 10, 19, "micro", "casme_sq"),  # v3 has no prediction: a miss
    iv("v4", 300, 309, "micro", "casme_sq"),  # extra
    iv("v5", 1, 100, "micro", "casme_sq"),  # right frames, wrong type
    iv("v6", 150, 249, "macro", "casme_sq"),  # shifted: IoU 1/3
]


def test_hand_computed_tables():
    block = spotting_block(PREDS, TRUTH)
    micro, macro = block["by_type"]["micro"], block["by_type"]["macro"]
    assert (micro["tp"], micro["fp"], micro["fn"]) == (1, 2, 1)
    assert micro["precision"] == pytest.approx(1 / 3) and micro["recall"] == 0.5
    assert micro["f1"] == pytest.approx(0.4)
    assert (macro["tp"], macro["fp"], macro["fn"]) == (2, 2, 3)
    assert macro["precision"] == 0.5 and macro["recall"] == 0.4
    assert macro["f1"] == pytest.approx(4 / 9)
    assert (block["tp"], block["fp"], block["fn"]) == (3, 4, 4)
    assert block["f1"] == pytest.approx(3 / 7)
    assert block["recognition"] is None and block["strs"] is None
    by_db = spotting_metrics(PREDS, TRUTH)["by_dataset"]
    samm = by_db["samm_lv"]["spotting"]["by_type"]
    assert (samm["micro"]["tp"], samm["micro"]["fn"], samm["micro"]["precision"]) == (0, 1, None)
    assert (samm["macro"]["tp"], samm["macro"]["fp"], samm["macro"]["fn"]) == (2, 1, 1)
    cas = by_db["casme_sq"]["spotting"]
    assert (cas["tp"], cas["fp"], cas["fn"]) == (1, 3, 2)


def test_recognition_on_true_positives_and_strs():
    truth = [iv("v", 1, 100, emotion=e) for e in ("negative",)]
    truth += [iv("v", 201, 300, emotion="positive"), iv("v", 401, 500, emotion="positive")]
    preds = [
        iv("v", 1, 100, emotion="negative"),
        iv("v", 201, 300, emotion="negative"),
        iv("v", 401, 500, emotion="positive"),
        iv("v", 700, 800, emotion="positive"),  # false positive: not in recognition
    ]
    block = spotting_block(preds, truth)
    assert block["f1"] == pytest.approx(6 / 7)
    rec = block["recognition"]
    assert rec["uf1"] == pytest.approx(2 / 3) and rec["uar"] == pytest.approx(0.75)
    # negative: precision 1/2 (a positive called negative), recall 1; positive: 1 and 1/2
    assert rec["f1"] == pytest.approx(0.75) and rec["precision"] == pytest.approx(0.75)
    assert block["strs"] == pytest.approx(6 / 7 * 0.75)


def test_recognition_classes_are_those_of_the_predictions_and_the_truth():
    """As the public STRS script: a class only predicted ("others") or only true and never
    spotted counts, with precision and recall 0."""
    truth = [iv("v", 1, 100, emotion="negative"), iv("v", 201, 300, emotion="positive")]
    truth += [iv("v", 401, 500, emotion="negative")]
    preds = [iv("v", 1, 100, emotion="negative"), iv("v", 201, 300, emotion="others")]
    preds += [iv("v", 401, 500, emotion="negative"), iv("v", 700, 800, emotion="positive")]
    block = spotting_block(preds, truth)
    rec = block["recognition"]  # negative: P = R = 1; positive and others: 0
    assert (rec["uf1"], rec["uar"], rec["precision"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert rec["f1"] == pytest.approx(1 / 3)
    assert block["strs"] == pytest.approx(6 / 7 * 1 / 3)


def test_strs_is_zero_when_nothing_is_spotted():
    truth = [iv("v", 1, 100, emotion="negative")]
    block = spotting_block([iv("v", 500, 600, emotion="negative")], truth)
    assert block["f1"] == 0 and block["recognition"]["f1"] is None and block["strs"] == 0


def _write(path, rows):
    if path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(intervals):
    return [
        {
            "dataset": i.dataset,
            "video": i.video,
            "onset": i.onset,
            "offset": i.offset,
            "type": i.type,
        }
        for i in intervals
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_command_reads_jsonl_and_csv(tmp_path, capsys, suffix):
    gt = _write(tmp_path / f"gt{suffix}", _rows(TRUTH))
    pred = _write(tmp_path / f"pred{suffix}", _rows(PREDS))
    out = tmp_path / "scores"
    assert main(["score-spotting", "--pred", str(pred), "--gt", str(gt), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    spot = metrics["overall"]["spotting"]
    assert list(spot) == "tp fp fn precision recall f1 by_type recognition strs".split()
    assert (spot["tp"], spot["fp"], spot["fn"]) == (3, 4, 4)
    assert set(metrics["by_dataset"]) == {"samm_lv", "casme_sq"}
    assert "| SAMM Long Videos | 2 | 1 | 2 | 0.6667 |" in (out / "report.md").read_text()
    assert "| Overall | 3 | 4 | 4 | 0.4286 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad,message",
    [
        ({"onset": 20, "offset": 10}, "pred.jsonl:1: onset 20 is after offset 10"),
        ({"video": "nope"}, "pred.jsonl:1: unknown video samm_lv/nope"),
        ({"onset": "ten"}, "pred.jsonl:1: onset 'ten' is not a frame number"),
        ({"onset": 1.5}, "pred.jsonl:1: onset 1.5 is not a frame number"),
        ({"type": "meso"}, "pred.jsonl:1: unknown type 'meso'"),
        ({"emotion": "bogus"}, "pred.jsonl:1: unknown emotion 'bogus'"),
        ({"emotion": 5}, "pred.jsonl:1: unknown emotion 5"),
    ],
)
def test_bad_rows_are_one_line_and_exit_2(tmp_path, capsys, bad, message):
    gt = _write(tmp_path / "gt.jsonl", _rows(TRUTH))
    pred = _write(tmp_path / "pred.jsonl", [{**_rows(PREDS)[0], **bad}])
    out = tmp_path / "scores"
    assert main(["score-spotting", "--pred", str(pred), "--gt", str(gt), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def _fails(tmp_path, capsys, gt, pred, message):
    out = tmp_path / "scores"
    assert main(["score-spotting", "--pred", str(pred), "--gt", str(gt), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_unknown_emotion_in_the_ground_truth(tmp_path, capsys):
    rows = [{**row, "emotion": "negative"} for row in _rows(TRUTH)]
    pred = _write(tmp_path / "pred.jsonl", rows)
    rows[1]["emotion"] = "bogus"
    gt = _write(tmp_path / "gt.jsonl", rows)
    _fails(tmp_path, capsys, gt, pred, "gt.jsonl:2: unknown emotion 'bogus'")


def test_interval_listed_twice_in_the_ground_truth(tmp_path, capsys):
    rows = _rows(TRUTH)
    gt = _write(tmp_path / "gt.jsonl", [*rows, {**rows[2], "emotion": "others"}])
    pred = _write(tmp_path / "pred.jsonl", _rows(PREDS))
    message = f"gt.jsonl:{len(rows) + 1}: interval 41-100 (macro) of samm_lv/v2 is already at row 3"
    _fails(tmp_path, capsys, gt, pred, message)


def test_csv_row_with_a_cell_beyond_the_header(tmp_path, capsys):
    gt = _write(tmp_path / "gt.csv", _rows(TRUTH))
    pred = _write(tmp_path / "pred.csv", _rows(PREDS))
    lines = pred.read_text().splitlines()
    lines[2] += ",extra"
    pred.write_text("\n".join(lines) + "\n")
    _fails(tmp_path, capsys, gt, pred, "pred.csv:3: row has 6 cells, the header 5")
