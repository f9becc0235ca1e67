"""Subject-independent folds: LOSO and k-fold over clips of several databases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vqa.cli import main
from vqa.jsonl import write_jsonl

# (dataset, subject, clips): samm "1" and casme2 "1"-like names must not collide.
SUBJECTS = [("casme2", f"sub{i:02d}", i) for i in range(1, 8)] + [
    ("samm", str(i), 9 - i) for i in range(1, 6)
]
SUBJECTS += [("smic", "1", 2)]


@pytest.fixture
def clips(tmp_path) -> list[Path]:
    paths = []
    for dataset in ("casme2", "samm", "smic"):
        rows = [
            {"dataset": d, "subject": s, "image_id": f"{s}_{n}"}
            for d, s, count in SUBJECTS
            if d == dataset
            for n in range(count)
        ]
        paths.append(tmp_path / f"{dataset}.jsonl")
        write_jsonl(paths[-1], rows)
    return paths


def run_split(tmp_path: Path, clips: list[Path], *args: str) -> dict:
    out = tmp_path / "folds.json"
    assert main(["split", "--clips", *map(str, clips), "--out", str(out), *args]) == 0
    return json.loads(out.read_text())


def check_independent(plan: dict) -> None:
    everyone = set(plan["subjects"])
    assert len(everyone) == len(SUBJECTS)
    tested = []
    for fold in plan["folds"]:
        assert not set(fold["test"]) & set(fold["train"])
        assert set(fold["test"]) | set(fold["train"]) == everyone
        assert fold["test_clips"] + fold["train_clips"] == sum(plan["subjects"].values())
        tested += fold["test"]
    assert sorted(tested) == sorted(everyone)  # each subject tested exactly once


def test_crossval_and_split_make_the_same_loso_folds(tmp_path, clips):
    """``crossval --protocol loso`` folds are split's LOSO folds, in the same natural order
    (samm/2 before samm/10)."""
    from vqa.crossval import fold_plan

    more = tmp_path / "samm10.jsonl"
    write_jsonl(more, [{"dataset": "samm", "subject": "10", "image_id": "10_1"}])
    plan = run_split(tmp_path, [*clips, more], "--protocol", "loso")
    rows = [json.loads(line) for path in (*clips, more) for line in path.read_text().splitlines()]
    assert fold_plan(rows, "loso", None) == [f["test"] for f in plan["folds"]]
    assert plan["folds"][-2]["test"] == ["samm/10"]  # after samm/5, before smic/1


def test_loso(tmp_path, clips, capsys):
    plan = run_split(tmp_path, clips, "--protocol", "loso")
    check_independent(plan)
    assert [f["test"] for f in plan["folds"]][:3] == [
        ["casme2/sub01"],
        ["casme2/sub02"],
        ["casme2/sub03"],
    ]
    assert {"samm/1", "smic/1"} <= set(plan["subjects"]) and plan["subjects"]["samm/1"] == 8
    assert plan["k"] == len(SUBJECTS) and "13 subjects" in capsys.readouterr().out


def test_kfold_is_balanced_and_deterministic(tmp_path, clips):
    plan = run_split(tmp_path, clips, "--protocol", "kfold", "--k", "4", "--seed", "3")
    check_independent(plan)
    sizes = [f["test_clips"] for f in plan["folds"]]
    assert len(sizes) == 4 and max(sizes) - min(sizes) <= max(count for *_, count in SUBJECTS)
    assert run_split(tmp_path, clips, "--protocol", "kfold", "--k", "4", "--seed", "3") == plan
    others = [
        run_split(tmp_path, clips, "--protocol", "kfold", "--k", "4", "--seed", str(s))["folds"]
        for s in range(4, 9)
    ]
    assert any(f != plan["folds"] for f in others)


def test_kfold_needs_enough_subjects(tmp_path, clips, capsys):
    assert (
        main(
            [
                "split",
                "--clips",
                str(clips[0]),
                "--protocol",
                "kfold",
                "--k",
                "10",
                "--out",
                str(tmp_path / "f.json"),
            ]
        )
        == 2
    )
    assert (
        capsys.readouterr().err.strip()
        == "error: --k 10 does not fit 7 subjects (choose 2 <= k <= number of subjects)"
    )
    assert not (tmp_path / "f.json").exists()


def test_rows_without_subject_are_refused(tmp_path, capsys):
    write_jsonl(
        tmp_path / "bad.jsonl",
        [{"dataset": "casme2", "subject": "sub01", "image_id": "sub01_1"}, {"dataset": "casme2"}],
    )
    assert (
        main(
            [
                "split",
                "--clips",
                str(tmp_path / "bad.jsonl"),
                "--protocol",
                "loso",
                "--out",
                str(tmp_path / "f.json"),
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'bad.jsonl'}:2: row has no dataset/subject "
        "(give clips.jsonl from me-vqa convert)"
    )


def one_class_subjects(tmp_path: Path, classes: list[str], clips: int) -> Path:
    """A clips file whose subject i shows only ``classes[i]``, ``clips`` times."""
    rows = [
        {"dataset": "casme2", "subject": f"sub{i}", "image_id": f"{i}_{n}", "coarse": coarse}
        for i, coarse in enumerate(classes)
        for n in range(clips)
    ]
    write_jsonl(tmp_path / "classes.jsonl", rows)
    return tmp_path / "classes.jsonl"


def test_kfold_spreads_each_class_over_the_folds(tmp_path):
    path = one_class_subjects(tmp_path, ["positive"] * 4 + ["negative"] * 4, clips=3)
    positive = {f"casme2/sub{i}" for i in range(4)}
    for seed in range(5):
        plan = run_split(tmp_path, [path], "--protocol", "kfold", "--k", "4", "--seed", str(seed))
        for fold in plan["folds"]:
            assert len(set(fold["test"]) & positive) == 1 and len(fold["test"]) == 2


def test_kfold_needs_a_class_with_k_clips(tmp_path, capsys):
    path = one_class_subjects(tmp_path, ["positive", "negative", "surprise"], clips=2)
    out = tmp_path / "f.json"
    args = ["split", "--clips", str(path), "--protocol", "kfold", "--k", "3", "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --k 3 is more than the clips of any one class (choose a smaller --k or loso)"
    )
    assert not out.exists()


def _fails(tmp_path, capsys, files, protocol, message):
    out = tmp_path / "f.json"
    argv = ["split", "--clips", *map(str, files), "--protocol", protocol, "--out", str(out)]
    assert main([*argv, "--k", "2"] if protocol == "kfold" else argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_qa_rows_are_not_clips(tmp_path, capsys):
    qa = tmp_path / "qa.jsonl"
    row = {"dataset": "casme2", "subject": "sub01", "image_id": "sub01_1"}
    write_jsonl(qa, [{**row, "question": "What is the coarse expression class?", "answer": ""}])
    _fails(tmp_path, capsys, [qa], "loso", f"{qa}:1: row is a question")


def test_a_clip_given_twice_is_refused(tmp_path, clips, capsys):
    message = f"{clips[0]}:1: clip casme2/sub01_0 is already at {clips[0]}:1"
    _fails(tmp_path, capsys, [clips[0], *clips], "loso", message)


def test_subject_that_is_not_text_is_refused(tmp_path, capsys):
    path = tmp_path / "clips.jsonl"
    write_jsonl(path, [{"dataset": "samm", "subject": 6, "image_id": "006_1_2"}])
    _fails(tmp_path, capsys, [path], "loso", f"{path}:1: subject 6 is not a name")


@pytest.mark.parametrize(
    "coarse,message", [(None, "row has no coarse class"), ("meh", "unknown coarse class 'meh'")]
)
def test_kfold_refuses_a_clip_without_a_known_class(tmp_path, capsys, coarse, message):
    path = one_class_subjects(tmp_path, ["positive", "negative", "surprise"], clips=2)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[3]["coarse"] = coarse
    write_jsonl(path, rows)
    _fails(tmp_path, capsys, [path], "kfold", f"{path}:4: {message}")


def test_long_videos_split_without_classes(tmp_path):
    path = tmp_path / "videos.jsonl"
    rows = [
        {"dataset": "samm_lv", "subject": str(i), "video": f"00{i}_1", "events": []}
        for i in range(1, 5)
    ]
    write_jsonl(path, rows)
    plan = run_split(tmp_path, [path], "--protocol", "kfold", "--k", "2")
    assert [f["test_clips"] for f in plan["folds"]] == [2, 2]
