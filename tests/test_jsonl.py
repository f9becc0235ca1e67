"""Atomic outputs: a folder appears complete or not at all."""

import os
import socket
import subprocess
import sys

import pytest

from vqa.errors import UserError
from vqa.jsonl import (
    atomic_folder,
    check_output_file,
    make_folder,
    read_jsonl,
    write_jsonl,
    write_jsonl_files,
)


def test_folder_appears_whole_as_an_ordinary_folder(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as scratch:
        (scratch / "weights").write_text("w")
        assert not target.exists()
    assert (target / "weights").read_text() == "w"
    assert target.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_failed_block_keeps_the_old_folder_and_leaves_nothing(tmp_path):
    target = tmp_path / "clip"
    target.mkdir()
    (target / "old").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target, overwrite=True) as scratch:
        (scratch / "half").write_text("half")
        raise RuntimeError("power cut")
    assert [p.name for p in tmp_path.iterdir()] == ["clip"]
    assert [p.name for p in target.iterdir()] == ["old"]


def test_overwrite_replaces_a_full_folder(tmp_path):
    target = tmp_path / "clip"
    target.mkdir()
    (target / "old").write_text("old")
    with atomic_folder(target, overwrite=True) as scratch:
        (scratch / "new").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new"]


def test_without_overwrite_only_an_empty_folder_is_replaced(tmp_path):
    (tmp_path / "empty").mkdir()
    with atomic_folder(tmp_path / "empty") as scratch:
        (scratch / "new").write_text("new")
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["new"]
    with pytest.raises(OSError), atomic_folder(tmp_path / "empty") as scratch:
        (scratch / "other").write_text("other")
    assert [p.name for p in (tmp_path / "empty").iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_missing_parent_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="output folder does not exist"):
        with atomic_folder(tmp_path / "no" / "model"):
            pass


def test_outputs_get_the_users_umask_not_the_temporary_files_privacy(tmp_path):
    old = os.umask(0o027)
    try:
        write_jsonl(tmp_path / "rows.jsonl", [{"id": 1}])
        with atomic_folder(tmp_path / "folder"):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "rows.jsonl").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o750


def test_a_file_in_the_way_of_an_output_folder_and_a_folder_in_place_of_a_file(tmp_path):
    (tmp_path / "notes").write_text("mine")
    with pytest.raises(UserError, match="notes: a file is in the way of this output folder"):
        make_folder(tmp_path / "notes" / "scores")
    with pytest.raises(UserError, match="notes: a file is in the way"):
        check_output_file(tmp_path / "notes" / "answers.jsonl")
    with pytest.raises(UserError, match="this output file is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(UserError, match="should be a file, not a folder"):
        write_jsonl(tmp_path, [])
    assert (tmp_path / "notes").read_text() == "mine"


def test_files_written_together_replace_the_old_ones_only_when_all_are_written(tmp_path):
    """A failure while writing the second file keeps both old files (convert's clips.jsonl and
    qa.jsonl are never from two runs), and leaves no temporary file."""
    first, second = tmp_path / "clips.jsonl", tmp_path / "qa.jsonl"
    write_jsonl_files({first: [{"run": 1}], second: [{"run": 1}]})

    def failing():
        yield {"run": 2}
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_jsonl_files({first: [{"run": 2}], second: failing()})
    assert read_jsonl(first) == read_jsonl(second) == [{"run": 1}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips.jsonl", "qa.jsonl"]
    write_jsonl_files({first: [{"run": 2}], second: [{"run": 2}]})
    assert read_jsonl(first) == read_jsonl(second) == [{"run": 2}]


def test_scratch_of_a_killed_process_is_removed_by_the_next_write(tmp_path):
    """A kill leaves the hidden scratch behind; the next output of that path deletes it when its
    process on this machine is gone, and keeps a running process's and another machine's."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    dead_file = tmp_path / f".rows.jsonl.{host}-{gone.stdout.strip()}.abc.tmp"
    dead_folder = tmp_path / f".rows.jsonl.{host}-{gone.stdout.strip()}.def.tmp"
    running = tmp_path / f".rows.jsonl.{host}-{os.getpid()}.ghi.tmp"
    elsewhere = tmp_path / f".rows.jsonl.other-node-{gone.stdout.strip()}.jkl.tmp"
    other_output = tmp_path / f".notes.jsonl.{host}-{gone.stdout.strip()}.mno.tmp"
    for path in (dead_file, running, elsewhere, other_output):
        path.write_text("half")
    dead_folder.mkdir()
    (dead_folder / "frame.jpg").write_text("half")
    write_jsonl(tmp_path / "rows.jsonl", [{"id": 1}])
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"rows.jsonl", running.name, elsewhere.name, other_output.name}
