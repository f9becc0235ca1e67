"""The synthetic databases, in all four on-disk formats, convert back to their ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_builders.au import parse_aus
from data_builders.synthetic import DATABASES, SMIC_COARSE_EMOTION, synthesize
from vqa.cli import main
from vqa.taxonomy import OTHERS, coarse_of


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return {
        name: synthesize(name, out, subjects=2, clips_per_subject=3, frames=6, size=48)
        for name in DATABASES
    }


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def expected_coarse(database: str, emotion: str) -> str:
    if database == "smic":
        return {v: k for k, v in SMIC_COARSE_EMOTION.items()}[emotion]
    return OTHERS if emotion == OTHERS else coarse_of(emotion)


@pytest.mark.parametrize("database", DATABASES)
def test_synthetic_database_converts_to_its_ground_truth(database, synthetic, tmp_path, capsys):
    db = synthetic[database]
    args = ["convert", database, "--frames", str(db.frames), "--out", str(tmp_path)]
    args += ["--labels", str(db.labels)] if db.labels else []
    assert main([*args, "--keep-others", "--keep-fear-sadness"]) == 0
    out = capsys.readouterr().out
    assert f"{len(db.clips)} clips read, {len(db.clips)} kept, 0 dropped" in out
    assert "frame missing" not in out and "fewer frames" not in out
    clips = {
        (Path(c["frames_root"]) / c["frames_dir"]).resolve(): c
        for c in read(tmp_path / "clips.jsonl")
    }
    assert len(clips) == len(db.clips)
    for truth in db.clips:
        clip = clips[truth.folder.resolve()]
        assert (clip["onset"], clip["offset"]) == (truth.onset, truth.offset)
        known_apex = database != "smic" and truth.apex_written != "/"
        assert clip["apex"] == (truth.apex if known_apex else None)
        assert clip["coarse"] == expected_coarse(database, truth.emotion)
        if database != "smic":
            assert clip["fine"] == truth.emotion
            assert [au["number"] for au in clip["aus"]] == [
                u.number for u in parse_aus(truth.aus)[0]
            ]
    qa = read(tmp_path / "qa.jsonl")
    assert {r["image_id"] for r in qa} == {c["image_id"] for c in clips.values()}
    assert all(r["id"].startswith(f"{database}_") for r in qa)


@pytest.mark.parametrize("database", [d for d in DATABASES if d != "smic"])
def test_analysis_adds_one_row_per_clip_that_reads_back_to_its_labels(
    database, synthetic, tmp_path
):
    from vqa.parse import parse_aus as parse_answer_aus
    from vqa.parse import parse_coarse, parse_fine
    from vqa.question_types import question_type

    db = synthetic[database]
    args = ["convert", database, "--frames", str(db.frames), "--labels", str(db.labels)]
    assert main([*args, "--out", str(tmp_path), "--analysis", "--seed", "3"]) == 0
    clips = {c["image_id"]: c for c in read(tmp_path / "clips.jsonl")}
    analyses = [
        r for r in read(tmp_path / "qa.jsonl") if question_type(r["question"]) == "analysis"
    ]
    assert sorted(r["image_id"] for r in analyses) == sorted(clips)
    for row in analyses:
        clip = clips[row["image_id"]]
        assert parse_fine(row["answer"]) == clip["fine"]
        assert parse_coarse(row["answer"]) == clip["coarse"]
        assert parse_answer_aus(row["answer"]) == [au["name"] for au in clip["aus"]]
    assert len({r["answer"].split(" ")[0] for r in analyses}) > 1  # templates vary with the seed
