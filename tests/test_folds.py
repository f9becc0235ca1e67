import json

import pytest

from vqa.cli import main
from vqa.errors import UserError
from vqa.folds import holdout_subjects, split_rows

ROWS = [
    {
        "id": f"{d}_{s}_{k}",
        "dataset": d,
        "subject": s,
        "question": "What is the coarse expression class?",
        "answer": a,
    }
    for d, s, a in [
        ("casme2", "sub01", "positive"),
        ("casme2", "sub02", "negative"),
        ("samm", "6", "surprise"),
    ]
    for k in (1, 2)
]


def test_split_by_full_and_bare_subject():
    train, held = split_rows(ROWS, ["casme2/sub02", "6"], "x.jsonl")
    assert {r["subject"] for r in held} == {"sub02", "6"} and {r["subject"] for r in train} == {
        "sub01"
    }


def test_unknown_subject_is_named():
    with pytest.raises(UserError, match="'sub09' does not exist"):
        split_rows(ROWS, ["sub09"], "x.jsonl")


def test_folds_file(tmp_path):
    folds = tmp_path / "folds.json"
    folds.write_text(json.dumps({"folds": [{"test": ["samm/6"]}, {"test": ["casme2/sub01"]}]}))
    assert holdout_subjects("casme2/sub02", folds, 1) == ["casme2/sub02", "casme2/sub01"]
    with pytest.raises(UserError, match="fold 2 does not exist"):
        holdout_subjects(None, folds, 2)
    with pytest.raises(UserError, match="--fold needs --folds"):
        holdout_subjects(None, None, 0)


def test_score_only_the_held_out_subjects(tmp_path, capsys):
    gt = tmp_path / "gt.jsonl"
    gt.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    pred = tmp_path / "pred.jsonl"
    wrong_elsewhere = [
        {**r, "answer": r["answer"] if r["subject"] == "6" else "negative"} for r in ROWS
    ]
    pred.write_text("".join(json.dumps(r) + "\n" for r in wrong_elsewhere))
    out = tmp_path / "score"
    assert (
        main(
            [
                "score",
                "--pred",
                str(pred),
                "--gt",
                str(gt),
                "--holdout-subjects",
                "samm/6",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overall"]["coarse"]["n"] == 2 and metrics["overall"]["coarse"]["uf1"] == 1.0
    assert metrics["extra"] == [] and metrics["missing"] == []
