"""Bad input to ``me-vqa convert``: one line naming file, row and fix; status 2; nothing written."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from data_builders.synthetic import CASME2_HEADER as HEADER
from vqa.cli import main

GOOD = ["01", "EP02_01f", None, 46, 59, 50, None, "12", "happiness"]


def write_sheet(path: Path, rows: list[list]) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


@pytest.fixture
def frames(tmp_path) -> Path:
    folder = tmp_path / "frames" / "sub01" / "EP02_01f"
    folder.mkdir(parents=True)
    for n in range(46, 51):
        (folder / f"img{n}.jpg").touch()
    return tmp_path / "frames"


def convert(database: str, labels: Path, frames: Path, out: Path, *extra: str) -> int:
    """``me-vqa convert DATABASE --labels ... --frames ... --out ...``; its exit status."""
    args = ["--labels", str(labels), "--frames", str(frames), "--out", str(out)]
    return main(["convert", database, *args, *extra])


def run_bad(capsys, tmp_path: Path, frames: Path, labels: Path, out: Path | None = None) -> str:
    out = out or tmp_path / "out"
    status = convert("casme2", labels, frames, out)
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert lines and lines[-1].startswith("error: ")
    assert not (out / "clips.jsonl").exists() and not (out / "qa.jsonl").exists()
    return lines[-1]


def sheet_with(tmp_path: Path, row: list) -> Path:
    return write_sheet(tmp_path / "coding.xlsx", [HEADER, GOOD, row])


def test_good_sheet_converts(tmp_path, frames, capsys):
    labels = write_sheet(tmp_path / "coding.xlsx", [HEADER, GOOD])
    assert convert("casme2", labels, frames, tmp_path / "o") == 0
    assert "1 clips read, 1 kept, 0 dropped" in capsys.readouterr().out
    assert len((tmp_path / "o" / "qa.jsonl").read_text().splitlines()) == 6


def test_missing_label_file(tmp_path, frames, capsys):
    line = run_bad(capsys, tmp_path, frames, tmp_path / "nope.xlsx")
    assert line == (
        f"error: {tmp_path / 'nope.xlsx'}: label sheet not found "
        "(give the database's label sheet with --labels)"
    )


def test_sheet_without_subject_and_filename(tmp_path, frames, capsys):
    labels = write_sheet(
        tmp_path / "coding.xlsx", [["Who", "Clip", "Onset"], ["01", "EP02_01f", 46]]
    )
    line = run_bad(capsys, tmp_path, frames, labels)
    assert line == (
        f"error: {labels}: no header row with Subject and Filename columns "
        "(use the database's label sheet, with its header row)"
    )


def test_header_missing_another_column(tmp_path, frames, capsys):
    labels = write_sheet(tmp_path / "coding.xlsx", [["note"], HEADER[:6], GOOD[:6]])
    line = run_bad(capsys, tmp_path, frames, labels)
    assert line.startswith(  # the sheet as given, not its base name, as other commands do
        f"error: {labels}[Sheet]:2: header row has no Action Units, Estimated Emotion column"
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["01", "EP02_01f", None, 60, 59, 50, None, "12", "happiness"],
         "onset 60 is after offset 50 "
         "(correct the frame numbers, or pass --skip-bad-rows to leave such rows out)"),
        (["01", "EP02_01f", None, "4x6", 59, 50, None, "12", "happiness"],
         "onset frame '4x6' is not a number (write whole frame numbers)"),
        (["01", "EP02_01f", None, 46, 48, 50, None, "12", "joy"],
         "unknown emotion 'joy' (use one of "),
        (["01", "EP02_01f", None, 46, 48, 50, None, "soft focus", "disgust"],
         "no action unit in 'soft focus' (write AUs like 4+L10 or R12A)"),
    ],
)  # fmt: skip
def test_a_bad_cell_is_named_with_its_row(tmp_path, frames, capsys, row, message):
    line = run_bad(capsys, tmp_path, frames, sheet_with(tmp_path, row))
    expected = f"error: {tmp_path / 'coding.xlsx'}[Sheet]:3: {message}"
    if message.endswith("use one of "):  # the list of emotions follows
        assert line.startswith(expected)
    else:
        assert line == expected


def test_frames_folder_missing(tmp_path, capsys):
    labels = write_sheet(tmp_path / "coding.xlsx", [HEADER, GOOD])
    line = run_bad(capsys, tmp_path, tmp_path / "no-frames", labels)
    assert line == (
        f"error: {tmp_path / 'no-frames'}: frames folder not found "
        "(give --frames the folder of clip frame folders)"
    )


def test_unwritable_out(tmp_path, frames, capsys):
    labels = write_sheet(tmp_path / "coding.xlsx", [HEADER, GOOD])
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "out"
    line = run_bad(capsys, tmp_path, frames, labels, out)
    assert (
        line == f"error: {out}: cannot write the output folder here (give --out a writable folder)"
    )


def test_sheet_databases_need_labels(tmp_path, frames, capsys):
    assert main(["convert", "samm", "--frames", str(frames), "--out", str(tmp_path / "o")]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: samm needs --labels (give the database's label sheet with --labels)"
    )
    assert not (tmp_path / "o").exists()


def test_smic_takes_no_labels(tmp_path, frames, capsys):
    labels = write_sheet(tmp_path / "coding.xlsx", [HEADER, GOOD])
    assert convert("smic", labels, frames, tmp_path / "o") == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {labels}: SMIC takes no --labels "
        "(its labels come from the folder names; drop --labels)"
    )
    assert not (tmp_path / "o").exists()


def test_frame_problems_are_warnings(tmp_path, frames, capsys):
    (frames / "sub01" / "EP02_01f" / "img46.jpg").unlink()
    missing_folder = ["1", "EP09_09", None, 1, 2, 3, None, "4", "disgust"]
    labels = write_sheet(tmp_path / "coding.xlsx", [HEADER, GOOD, missing_folder])
    assert convert("casme2", labels, frames, tmp_path / "o") == 0
    out = capsys.readouterr().out
    assert "2 clips read, 2 kept, 0 dropped" in out
    assert f"sub01_EP02_01f: 4 frames in {frames.resolve()}/sub01/EP02_01f, labels span 5" in out
    assert "sub01_EP02_01f: no frame 46 in" in out and "(nearest is img47.jpg)" in out
    assert "warning (frame folder missing): 1" in out and "sub01_EP09_09: no frame folder" in out


@pytest.mark.parametrize(
    "vocab_row",
    [
        '{"dataset": "casme2", "aus": "12"}',  # not a list of AUs
        '{"id": "casme2_1", "dataset": "casme2", "image_id": "x", "question": "q"}',  # a qa row
    ],
)
def test_vocab_from_takes_only_clip_rows(tmp_path, frames, capsys, vocab_row):
    labels = write_sheet(tmp_path / "coding.xlsx", [HEADER, GOOD])
    vocab = tmp_path / "vocab.jsonl"
    vocab.write_text(vocab_row + "\n")
    status = convert("casme2", labels, frames, tmp_path / "out", "--vocab-from", str(vocab))
    assert status == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {vocab}:1: row has no aus list of action units ({{code, number, ...}}) "
        "(give --vocab-from the clips.jsonl files written by me-vqa convert)"
    ]
    assert not (tmp_path / "out").exists()
