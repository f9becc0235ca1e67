"""QA rows from clips (order, phrasing, yes/no draws) and joining an official jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from data_builders.au import parse_aus
from data_builders.clips import Clip
from data_builders.qa import au_vocabulary, qa_rows
from vqa.cli import main
from vqa.jsonl import read_jsonl, write_jsonl
from vqa.question_types import question_type


def clip(
    image_id: str, aus: str | None, fine: str | None, coarse: str, dataset: str = "casme2"
) -> Clip:
    return Clip(
        dataset=dataset,
        subject="sub01",
        filename=image_id,
        image_id=image_id,
        frames_dir=f"sub01/{image_id}",
        onset=1,
        apex=None,
        offset=9,
        fps=200,
        aus=parse_aus(aus)[0] if aus else [],
        fine=fine,
        coarse=coarse,
        source={"sheet": "s.xlsx", "row": 2},
    )


def by_id(rows: list[dict]) -> dict[str, tuple[str, str]]:
    return {r["id"]: (r["question"], r["answer"]) for r in rows}


def test_order_and_phrasing_of_a_clip_with_lateral_aus():
    rows = qa_rows(
        [
            clip("EP1", "4+R7+L10", "disgust", "negative"),
            clip("EP2", "12", "happiness", "positive"),
        ],
        seed=0,
    )
    first = [r for r in rows if r["image_id"] == "EP1"]
    assert [r["id"] for r in first] == [f"casme2_EP1_{k}" for k in range(1, 8)]
    assert [(r["question"], r["answer"]) for r in first[:4]] == [
        ("What is the coarse expression class?", "negative"),
        ("What is the fine-grained expression class?", "disgust"),
        ("What are the action units?", "brow lowerer, lid tightener, upper lip raiser"),
        ("Is the action unit lid tightener located on the left or right face?", "right"),
    ]
    assert [r["answer"] for r in first[4:6]] == ["yes", "no"]
    assert first[6]["answer"] == (
        "The action units present are: brow lowerer, lid tightener, upper lip raiser. "
        "Therefore, the fine-grained expression class is disgust, "
        "and the coarse expression class is negative."
    )
    second = [r for r in rows if r["image_id"] == "EP2"]
    assert len(second) == 6 and second[2]["question"] == "What is the action unit?"
    assert second[3]["question"] == "Is the action unit lip corner puller shown on the face?"
    assert (
        second[4]["question"].startswith("Is the action unit ")
        and "lip corner puller" not in second[4]["question"]
    )
    assert set(first[0]) == {
        "id",
        "dataset",
        "image_id",
        "subject",
        "filename",
        "question",
        "answer",
    }


def test_asymmetric_aus_are_not_lateral_and_smic_gets_the_coarse_question_only():
    rows = qa_rows([clip("EP1", "A12+15A", "happiness", "positive")], seed=0)
    assert not any("left or right" in r["question"] for r in rows) and len(rows) == 6
    smic = qa_rows([clip("s01_po_01", None, None, "positive", dataset="smic")], seed=0)
    assert [(r["id"], r["question"], r["answer"]) for r in smic] == [
        ("smic_s01_po_01_1", "What is the coarse expression class?", "positive")
    ]


def test_yes_no_draws_depend_on_the_seed_not_on_other_clips():
    clips = [
        clip(f"EP{i}", "1+2+4" if i % 2 else "12+14", "surprise", "surprise") for i in range(20)
    ]
    assert au_vocabulary(clips) == [1, 2, 4, 12, 14]
    rows = by_id(qa_rows(clips, seed=1))
    assert by_id(qa_rows(clips, seed=1)) == rows
    pair = by_id(qa_rows(clips[4:6], seed=1))  # same vocabulary, fewer neighbours
    assert {k: rows[k] for k in pair} == pair
    assert by_id(qa_rows(clips, seed=2)) != rows
    for i, c in enumerate(clips):
        yes, no = rows[f"casme2_EP{i}_4"][0], rows[f"casme2_EP{i}_5"][0]
        own = {au.name for au in c.aus}
        assert any(name in yes for name in own) and not any(name in no for name in own)


def test_no_au_falls_back_to_all_aus_when_the_vocabulary_is_exhausted():
    rows = qa_rows([clip("EP1", "4", "disgust", "negative")], seed=0)
    assert rows[4]["answer"] == "no" and "brow lowerer" not in rows[4]["question"]


@pytest.fixture
def small_casme2(tmp_path) -> tuple[Path, Path]:
    book = openpyxl.Workbook()
    book.active.append(
        [
            "Subject",
            "Filename",
            "OnsetFrame",
            "ApexFrame",
            "OffsetFrame",
            "Action Units",
            "Estimated Emotion",
        ]
    )
    for name in ("EP01", "EP02"):
        book.active.append([1, name, 1, 2, 3, "4+7", "disgust"])
        folder = tmp_path / "frames" / "sub01" / name
        folder.mkdir(parents=True)
        for n in (1, 2, 3):
            (folder / f"img{n}.jpg").touch()
    book.save(tmp_path / "coding.xlsx")
    return tmp_path / "coding.xlsx", tmp_path / "frames"


def test_qa_from_keeps_official_rows_and_reports_missing_clips(small_casme2, tmp_path, capsys):
    labels, frames = small_casme2
    coarse = {"question": "What is the coarse expression class?", "answer": "negative"}
    official = [
        {"id": f"casme2_sub01_{name}_1", "dataset": "casme2", "image_id": f"sub01_{name}"}
        | {"subject": "sub01", "filename": name}
        | coarse
        for name in ("EP01", "EP03")
    ]
    official.append(
        {"id": "samm_006_1_2_1", "dataset": "samm", "image_id": "006_1_2", "subject": "6"}
        | {"filename": "006_1_2"}
        | coarse
    )
    write_jsonl(tmp_path / "official.jsonl", official)
    args = ["convert", "casme2", "--labels", str(labels), "--frames", str(frames)]
    args += ["--out", str(tmp_path / "out")]
    assert main([*args, "--qa-from", str(tmp_path / "official.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "warning (official row without clip): 1" in out and "casme2_sub01_EP03_1" in out
    qa = [json.loads(line) for line in (tmp_path / "out" / "qa.jsonl").read_text().splitlines()]
    assert qa == official[:1]
    clips = [
        json.loads(line) for line in (tmp_path / "out" / "clips.jsonl").read_text().splitlines()
    ]
    assert [c["image_id"] for c in clips] == ["sub01_EP01"]


def test_qa_from_refuses_the_test_schema(small_casme2, tmp_path, capsys):
    labels, frames = small_casme2
    write_jsonl(
        tmp_path / "test.jsonl",
        [{"video_id": "casme3_test_CAS-1_1", "video": "CAS-1", "question": "q", "answer": ""}],
    )
    args = ["convert", "casme2", "--labels", str(labels), "--frames", str(frames)]
    args += ["--out", str(tmp_path / "out")]
    assert main([*args, "--qa-from", str(tmp_path / "test.jsonl")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith(f"error: {tmp_path / 'test.jsonl'}:1: row has no dataset/image_id")
    )
    assert not (tmp_path / "out").exists()


V2_TESTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "megc2026"


def test_the_v2_question_set_asks_per_clip_what_the_v2_test_files_ask():
    clips = [clip(f"EP{i}", "4+R7" if i % 2 else "12", "disgust", "negative") for i in range(12)]
    rows = qa_rows(clips, seed=0, question_set="v2")
    per_clip = [[question_type(r["question"]) for r in rows if r["image_id"] == c.image_id]
                for c in clips]  # fmt: skip
    shapes = {("coarse", "fine", "au", "yes_no", "analysis")}
    if V2_TESTS.is_dir():  # the shapes of the real test files' clips
        test_rows = [
            r for f in V2_TESTS.glob("me_vqa_*_v2_test_to_answer.jsonl") for r in read_jsonl(f)
        ]
        videos = {r["video"] for r in test_rows}
        shapes = {
            tuple(question_type(r["question"]) for r in test_rows if r["video"] == v)
            for v in videos
        }
    assert {tuple(types) for types in per_clip} == shapes
    assert [r["id"] for r in rows[:5]] == [f"casme2_EP0_{k}" for k in range(1, 6)]
    answers = {r["answer"] for r in rows if question_type(r["question"]) == "yes_no"}
    assert answers == {"yes", "no"}  # one per clip, drawn
    for c in clips:
        question, answer = next(
            (r["question"], r["answer"]) for r in rows
            if r["image_id"] == c.image_id and question_type(r["question"]) == "yes_no"
        )  # fmt: skip
        assert any(au.name in question for au in c.aus) == (answer == "yes"), question
    assert qa_rows(clips, seed=0, question_set="v2") == rows


def test_the_v2_question_set_through_convert_and_its_refusals(small_casme2, tmp_path, capsys):
    labels, frames = small_casme2
    args = ["convert", "casme2", "--labels", str(labels), "--frames", str(frames)]
    assert main([*args, "--out", str(tmp_path / "out"), "--question-set", "v2"]) == 0
    assert len(read_jsonl(tmp_path / "out" / "qa.jsonl")) == 2 * 5
    write_jsonl(tmp_path / "official.jsonl", [])
    refused = [*args, "--out", str(tmp_path / "bad"), "--question-set", "v2"]
    assert main([*refused, "--qa-from", str(tmp_path / "official.jsonl")]) == 2
    assert "--qa-from keeps the official ones" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
