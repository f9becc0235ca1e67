import hashlib
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pandas as pd
import pytest

from data_builders.face import FaceShape, landmarks, lips
from data_builders.frames import frame_files
from data_builders.synthetic import (
    DATABASES,
    render_clip,
    synthesize,
    synthesize_test_videos,
    videos_of_test_file,
)
from vqa.cli import main

SMALL = dict(subjects=2, clips_per_subject=3, frames=8, size=64)


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return {name: synthesize(name, out, **SMALL) for name in DATABASES}


def test_every_clip_folder_holds_onset_to_offset(databases):
    for db in databases.values():
        assert len(db.clips) == 6
        for clip in db.clips:
            frames = frame_files(clip.folder)
            assert list(frames) == list(range(clip.onset, clip.offset + 1))
            assert clip.onset < clip.apex < clip.offset


def test_casme2_sheet_reads_like_the_real_one(databases):
    sheet = pd.read_excel(databases["casme2"].labels, sheet_name="Sheet1")
    assert list(sheet.columns[:9]) == [
        "Subject", "Filename", "Unnamed: 2", "OnsetFrame", "ApexFrame", "OffsetFrame",
        "Unnamed: 6", "Action Units", "Estimated Emotion",
    ]  # fmt: skip
    assert sheet["Unnamed: 2"].isna().all() and sheet["Unnamed: 6"].isna().all()
    subjects = pd.read_excel(databases["casme2"].labels, dtype=object)["Subject"]
    assert {type(v) for v in subjects} == {str, int}  # "01" as text and 1 as a number
    assert (sheet["ApexFrame"] == "/").any()


def test_samm_sheet_has_its_preamble(databases):
    sheet = pd.read_excel(databases["samm"].labels, header=13)
    assert list(sheet.columns[:4]) == ["Subject", "Filename", "Inducement Code", "Onset Frame"]
    assert sheet["Estimated Emotion"].str[0].str.isupper().all()
    image = cv2.imread(str(databases["samm"].clips[0].folder / "x"), cv2.IMREAD_UNCHANGED)
    first = next(iter(frame_files(databases["samm"].clips[0].folder).values()))
    assert cv2.imread(str(first), cv2.IMREAD_UNCHANGED).ndim == 2 and image is None  # greyscale
    assert len(first.stem.split("_")[1]) in (4, 5)


def test_casme3_cells_are_text(databases):
    from openpyxl import load_workbook

    sheet = load_workbook(databases["casme3"].labels)["label"]
    rows = list(sheet.iter_rows(min_row=2))
    assert rows and all(cell.data_type == "s" for row in rows for cell in row)
    frame = pd.read_excel(databases["casme3"].labels, sheet_name="label", dtype=object)
    assert list(frame.columns[:5]) == ["Subject", "Filename", "Onset", "Apex", "Offset"]
    assert all(isinstance(v, str) for v in frame["Onset"])


def test_smic_is_folders_only(databases):
    db = databases["smic"]
    assert db.labels is None
    names = {p.name for p in db.frames.glob("s*/micro/*")}
    assert names <= {"positive", "negative", "surprise"}
    first = next(iter(frame_files(db.clips[0].folder).values()))
    assert first.name.startswith("image") and first.suffix == ".bmp"


def _peak_motion(aus: str, size: int = 128) -> tuple[np.ndarray, FaceShape]:
    """(x, y) of the largest onset -> apex difference, and the face shape used."""
    rng = np.random.default_rng(3)
    shape = FaceShape.sample(rng)
    frames = render_clip(shape, aus, 12, 5, size, rng)
    diff = np.abs(frames[5].astype(float) - frames[0].astype(float)).sum(axis=2)
    diff = cv2.GaussianBlur(diff, (9, 9), 0)
    y, x = np.unravel_index(np.argmax(diff), diff.shape)
    return np.array([x, y], float), shape


def _pixels(point: np.ndarray, size: int = 128) -> np.ndarray:
    return point * size + size / 2


def test_au12_moves_the_mouth_corners():
    peak, shape = _peak_motion("12")
    marks = landmarks(shape)
    corners = [_pixels(marks[f"mouth_corner_{s}"]) for s in "LR"]
    assert min(np.linalg.norm(peak - c) for c in corners) < 12


def test_au4_moves_the_brows():
    peak, shape = _peak_motion("4")
    marks = landmarks(shape)
    brows = [_pixels(marks[f"brow_{p}_{s}"]) for p in ("inner", "outer") for s in "LR"]
    assert min(np.linalg.norm(peak - b) for b in brows) < 14
    assert peak[1] < 64  # upper half of the face


def test_a_left_au_moves_the_image_right_half():
    for aus in ("L12", "L10", "L2"):
        peak, _ = _peak_motion(aus)
        assert peak[0] > 64, aus  # the subject's left is the image's right


@pytest.mark.parametrize("aus", [(17,), (17, 24), (17, 23), (15, 17), (17, 25), (12, 17)])
def test_the_lower_lip_never_crosses_the_upper_one(aus):
    rng = np.random.default_rng(0)
    for shape, level in [(FaceShape.sample(rng), lv) for _ in range(5) for lv in (0.0, 0.5, 1.0)]:
        _, opening = lips(shape, {au: (level, level) for au in aus})
        top, bottom = opening[1:4, 1], opening[5:8, 1][::-1]  # inner lips, left to right
        assert np.all(bottom >= top - 1e-9), (aus, level, top, bottom)


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".xlsx"):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def test_deterministic_for_a_seed(tmp_path):
    a = synthesize("casme2", tmp_path / "a", **SMALL, seed=5)
    b = synthesize("casme2", tmp_path / "b", **SMALL, seed=5)
    c = synthesize("casme2", tmp_path / "c", **SMALL, seed=6)
    assert _digest(a.frames) == _digest(b.frames) != _digest(c.frames)
    assert pd.read_excel(a.labels).equals(pd.read_excel(b.labels))


def test_test_videos_are_named_like_the_test_file(tmp_path):
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(
        '{"video_id": "samm_test_SAMM-1_1", "video": "SAMM-1", "question": "q", "answer": ""}\n'
        '{"video_id": "samm_test_SAMM-2_1", "video": "SAMM-2", "question": "q", "answer": ""}\n'
    )
    out = synthesize_test_videos(
        videos_of_test_file(test_file), tmp_path / "test", frames=6, size=48
    )
    assert sorted(p.name for p in out.iterdir()) == ["SAMM-1", "SAMM-2"]
    assert len(frame_files(out / "SAMM-1")) == 6


def test_cli_writes_and_reports(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--databases", "smic", "--subjects", "1",
                 "--clips", "2", "--frames", "6", "--size", "48"]) == 0  # fmt: skip
    assert "smic: 2 clips" in capsys.readouterr().out


def test_unknown_database_is_a_user_error(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--databases", "mmew"]) == 2
    assert "unknown database 'mmew'" in capsys.readouterr().err


def test_synth_replaces_its_own_output_but_never_a_users_folder(tmp_path, capsys):
    argv = ["synth", "--out", str(tmp_path), "--databases", "casme2", "--subjects", "1"]
    argv += ["--clips", "1", "--frames", "8", "--size", "64"]
    assert main(argv) == 0
    assert main(argv) == 0  # its own output is replaced
    (tmp_path / "casme2" / "notes.txt").write_text("mine")
    (tmp_path / "casme2" / ".written-by-me-vqa-synth").unlink()
    assert main(argv) == 2
    assert "casme2: folder not written by me-vqa synth" in capsys.readouterr().err
    assert (tmp_path / "casme2" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "args, video_id",
    [(["--databases", "smic"], "samm_test_SAMM-1_1"), (["--long"], "samm_test_006_1_1")],
)
def test_a_bad_test_file_is_refused_before_anything_is_written(tmp_path, capsys, args, video_id):
    test_file = tmp_path / "test.jsonl"
    test_file.write_text(f'{{"video_id": "{video_id}", "video": 7, "question": "q"}}\n')
    out = tmp_path / "out"
    argv = ["synth", "--out", str(out), *args, "--subjects", "1", "--clips", "1"]
    assert main([*argv, "--frames", "6", "--size", "48", "--test-file", str(test_file)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {test_file}:1: video 7 is not a folder name "
        "(give the challenge test file's rows (video_id, video, question, answer))"
    ]
    assert not out.exists()


def test_a_synth_killed_while_writing_leaves_nothing_after_the_next_run(tmp_path):
    argv = ["synth", "--out", str(tmp_path), "--databases", "casme2", "--subjects", "3"]
    argv += ["--clips", "4", "--frames", "20", "--size", "96"]
    proc = subprocess.Popen([sys.executable, "-m", "vqa", *argv], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(tmp_path.glob(".casme2.*.tmp/*/*")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".casme2.*.tmp")), "the run ended before it could be killed"
    assert main(argv) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["casme2"]
    assert not list(tmp_path.rglob("*.tmp"))
