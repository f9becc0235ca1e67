"""The README's test-file path, run as a user runs it: synth --test-file, build-inputs from the
challenge test files, infer --consistency --submission-dir, for every input mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vqa.jsonl import read_jsonl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TESTS_2025 = [
    SHARED / "megc2025" / "test" / f"me_vqa_{db}_test_to_answer.jsonl" for db in ("samm", "casme3")
]
TESTS_2026 = [
    SHARED / "megc2026" / f"me_vqa_{db}_v2_test_to_answer.jsonl" for db in ("samm", "casme3")
]
MODES = ("video", "oao", "flow", "video+flow", "oao+flow")

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")


def me_vqa(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "vqa", *map(str, argv)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Synthetic test videos for both years' test files, and a tiny model."""
    work = tmp_path_factory.mktemp("challenge")
    tests = [*TESTS_2025, *TESTS_2026]
    me_vqa("synth", "--out", "syn", "--databases", "samm", "--subjects", "1", "--clips", "1",
           "--frames", "8", "--size", "64", "--test-file", *tests, cwd=work)  # fmt: skip
    me_vqa("tiny-model", "--out", "tiny", cwd=work)
    return work


def answer(work: Path, tests: list[Path], mode: str, *extra: str) -> Path:
    """build-inputs + infer --consistency --submission-dir; returns the submission folder."""
    tag = f"{mode.replace('+', '-')}{'-'.join(extra)}"
    me_vqa("build-inputs", "--qa", *tests, "--frames-root", "syn/test", "--mode", mode,
           "--num-frames", "4", "--size", "64", "--workers", "1", "--out", f"in-{tag}",
           cwd=work)  # fmt: skip
    me_vqa("infer", "--model", "tiny", "--inputs", f"in-{tag}/inputs.jsonl", "--consistency",
           "--batch-size", "16", "--out", f"ans-{tag}.jsonl", "--submission-dir", f"sub-{tag}",
           *extra, cwd=work)  # fmt: skip
    return work / f"sub-{tag}"


def assert_submission(submission: Path, test_file: Path) -> None:
    """The test file's rows, in order, with nothing but ``answer`` filled."""
    test_rows, answered = read_jsonl(test_file), read_jsonl(submission)
    assert len(answered) == len(test_rows)
    for asked, row in zip(test_rows, answered, strict=True):
        assert list(row) == ["video_id", "video", "question", "answer"]
        assert {k: row[k] for k in ("video_id", "video", "question")} == {
            k: asked[k] for k in ("video_id", "video", "question")
        }
        assert isinstance(row["answer"], str) and row["answer"].strip()


@pytest.mark.parametrize("mode", MODES)
def test_2025_test_files_are_answered_into_submissions_for_every_input(workdir, mode):
    submission = answer(workdir, TESTS_2025, mode)
    assert sorted(p.name for p in submission.iterdir()) == [
        "me_vqa_casme3_test_pred.jsonl",
        "me_vqa_samm_test_pred.jsonl",
    ]
    for test_file in TESTS_2025:
        name = test_file.name.replace("_to_answer", "_pred")
        assert_submission(submission / name, test_file)


def test_2026_v2_test_files_get_the_v2_submission_names(workdir):
    submission = answer(workdir, TESTS_2026, "flow", "--challenge", "2026")
    assert sorted(p.name for p in submission.iterdir()) == [
        "me_vqa_casme3_v2_test_pred.jsonl",
        "me_vqa_samm_v2_test_pred.jsonl",
    ]
    for test_file in TESTS_2026:
        assert_submission(submission / test_file.name.replace("_to_answer", "_pred"), test_file)


TESTS_LVQA = [
    SHARED / "megc2026" / f"me_lvqa_{db}_test_to_answer.jsonl" for db in ("samm", "casme3")
]


def test_lvqa_test_files_are_answered_into_submissions(workdir):
    """synth --long --test-file, build-inputs --mode long, infer --consistency --submission-dir."""
    me_vqa("synth", "--long", "--out", "syn-long", "--frames", "120", "--size", "64",
           "--test-file", *TESTS_LVQA, cwd=workdir)  # fmt: skip
    me_vqa("build-inputs", "--mode", "long", "--qa", *TESTS_LVQA, "--frames-root",
           "syn-long/test", "--num-frames", "8", "--size", "64", "--out", "in-long",
           cwd=workdir)  # fmt: skip
    me_vqa("infer", "--model", "tiny", "--inputs", "in-long/inputs.jsonl", "--consistency",
           "--batch-size", "32", "--out", "ans-long.jsonl", "--submission-dir", "sub-long",
           "--challenge", "2026", cwd=workdir)  # fmt: skip
    submission = workdir / "sub-long"
    assert sorted(p.name for p in submission.iterdir()) == [
        "me_lvqa_casme3_test_pred.jsonl",
        "me_lvqa_samm_test_pred.jsonl",
    ]
    for test_file in TESTS_LVQA:
        assert_submission(submission / test_file.name.replace("_to_answer", "_pred"), test_file)


@pytest.mark.parametrize("mode, test_file", [("flow", TESTS_2025[0]), ("long", TESTS_LVQA[0])])
def test_a_test_file_without_frames_root_is_a_one_line_error(tmp_path, capsys, mode, test_file):
    from vqa.cli import main

    argv = ["build-inputs", "--qa", str(test_file), "--mode", mode, "--out", str(tmp_path / "in")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {test_file}:1: a test row names a video but no --frames-root")
    assert "\n" not in err
    assert not (tmp_path / "in").exists()
