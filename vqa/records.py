"""What one inputs.jsonl row is: a qa (or challenge test) row plus the visual keys
``build-inputs`` adds. Every module that writes or reads such rows takes its keys from here.

- ``images``: picture files (onset/apex/offset frames, the flow image), in prompt order;
- ``frames``: the sampled video frames, shown to the model as one video;
- ``mode``, ``apex_estimated``, ``flow_legend``: how the visuals were built;
- long videos (``mode`` ``long``): ``frame_numbers`` and ``frame_times`` (seconds from the
  video's first frame) of each sampled frame, ``sample_fps``, the effective rate of the
  sampled frames (frames over the time they span) that the model's time encoding is given,
  and on a spotting window's row ``window`` (its first and last video frame) and
  ``frame_offset`` (video frame = window frame + offset: frame 1 of a window is its first).

Paths are relative to the inputs.jsonl folder. The challenge test schema's own ``video`` is
the clip's name and stays untouched; a frame list is never stored under it (the format this
replaces did, and is refused with a request to rebuild).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from vqa.errors import UserError

WINDOW_KEY, OFFSET_KEY = "window", "frame_offset"
# A window row's answer is the question's as the window sees it; the video's own is kept beside.
VIDEO_ANSWER_KEY = "video_answer"
LONG_KEYS = ("frame_numbers", "frame_times", "sample_fps", WINDOW_KEY, OFFSET_KEY, VIDEO_ANSWER_KEY)
VISUAL_KEYS = ("mode", "images", "frames", "apex_estimated", "flow_legend", *LONG_KEYS)
# Rows loaded for training remember the folder their visual paths are relative to.
BASE_KEY = "inputs_dir"
TEST_MARK = "_test_"


def qa_part(row: dict) -> dict:
    """The qa row inside an inputs row: visual keys and empty values (None) dropped."""
    return {
        k: v for k, v in row.items() if k not in VISUAL_KEYS and k != BASE_KEY and v is not None
    }


def is_inputs_row(row: dict) -> bool:
    """Whether a row is one build-inputs wrote: a ``mode`` and its pictures or frames."""
    return "mode" in row and ("images" in row or "frames" in row)


def visual_files(row: dict) -> list[str]:
    """The row's picture and frame paths, relative to its inputs.jsonl folder."""
    return list(row.get("images") or []) + list(row.get("frames") or [])


def resolve_visual(
    base_dir: Path, relative: str, *, file: Path | str | None = None, row=None
) -> Path:
    """Absolute path of a visual input listed in inputs.jsonl; refuses paths leaving its folder."""
    path, inside = _resolved(Path(base_dir), relative)
    if not inside:
        raise UserError(
            f"visual path {relative!r} points outside {Path(base_dir).resolve()}",
            file=file,
            row=row,
            fix="inputs.jsonl paths must be relative to its own folder; rebuild with build-inputs",
        )
    return path


@functools.lru_cache(maxsize=1 << 16)
def _resolved(base_dir: Path, relative: str) -> tuple[Path, bool]:
    """A visual path resolved, and whether it stays inside ``base_dir``: once per process, as
    every question of a clip (and the row check before its prompts) names the same files."""
    base = base_dir.resolve()
    path = (base / relative).resolve()
    return path, not Path(relative).is_absolute() and path.is_relative_to(base)


def check_row(row: dict, base_dir: Path, file: Path, lineno: int) -> None:
    """An inputs row of the current format whose visual files all exist."""
    stale = isinstance(row.get("video"), list) or ("video_id" in row and "video" not in row)
    if stale:
        raise UserError(
            "inputs.jsonl was written by an older build-inputs (frame list under 'video')",
            file=file,
            row=lineno,
            fix="rebuild it with me-vqa build-inputs",
        )
    for rel in visual_files(row):
        if not resolve_visual(base_dir, rel, file=file, row=lineno).is_file():
            raise UserError(
                f"visual file {rel!r} is missing",
                file=file,
                row=lineno,
                fix="rebuild the inputs with me-vqa build-inputs",
            )


@dataclass(frozen=True)
class TestId:
    """A challenge test row's ``video_id``: ``samm_test_SAMM-1_3`` or ``samm_test_1_001_2_5``."""

    dataset: str
    video: str
    number: int


def parse_video_id(video_id: str) -> TestId | None:
    """The parts of a test ``video_id`` (``{dataset}_test_{video}_{k}``); None for other ids."""
    dataset, mark, rest = video_id.partition(TEST_MARK)
    video, _, number = rest.rpartition("_")
    if not (mark and dataset and video and number.isdigit()):
        return None
    return TestId(dataset, video, int(number))


def is_test_row(row: dict) -> bool:
    """Whether a row is a challenge test row: a ``video_id``, or a ``video`` without an id."""
    return "video_id" in row or ("video" in row and "id" not in row and "image_id" not in row)


def challenge_video_name(row: dict, file: Path, lineno: int) -> str:
    """A challenge test row's ``video``, the name of its frame folder, checked to be one."""
    name = row.get("video")
    if not isinstance(name, str) or not name:
        raise UserError(
            "test row has no video" if name is None else f"video {name!r} is not a folder name",
            file=file,
            row=lineno,
            fix="give the challenge test file's rows (video_id, video, question, answer)",
        )
    return name


def check_test_rows(rows: Iterable[tuple[Path, int, dict]]) -> None:
    """Refuse challenge test rows (of ``(file, row number, row)``; other rows pass) whose
    ``video_id`` does not parse, names another video than the row's ``video`` or another
    database than the file's other rows, or repeats one given before; and a video named by
    test files of two databases (one folder FRAMES_ROOT/<video> at two frame rates)."""
    first_at: dict[str, str] = {}
    databases: dict[Path, str] = {}
    video_databases: dict[str, tuple[str, Path]] = {}
    for file, lineno, row in rows:
        if not is_test_row(row):
            continue
        challenge_video_name(row, file, lineno)
        problem = _video_id_problem(row, databases.get(file), first_at)
        if problem:
            raise UserError(
                problem, file=file, row=lineno, fix="give the challenge test files as released"
            )
        database = databases.setdefault(file, parse_video_id(row["video_id"]).dataset)
        first_at[row["video_id"]] = f"{file}:{lineno}"
        other, other_file = video_databases.setdefault(row["video"], (database, file))
        if other != database:
            raise UserError(
                f"video {row['video']} is also a {other} test video in {other_file}",
                file=file,
                row=lineno,
                fix="build the inputs of each database's test file in its own run, "
                "with its own --frames-root",
            )


def _video_id_problem(row: dict, database: str | None, first_at: dict[str, str]) -> str | None:
    """What is wrong with a test row's ``video_id``, given its file's database (None before
    its first test row) and where each earlier ``video_id`` was."""
    video_id = row.get("video_id")
    if video_id is None:
        return "test row has no video_id"
    test_id = parse_video_id(video_id) if isinstance(video_id, str) else None
    if test_id is None:
        return f"video_id {video_id!r} is not a challenge test id (like samm_test_SAMM-1_1)"
    if test_id.video != row.get("video"):
        video = row.get("video")
        return f"video_id {video_id} names video {test_id.video!r}, the row's video is {video!r}"
    if database not in (None, test_id.dataset):
        return f"video_id {video_id} names database {test_id.dataset}, the file's rows {database}"
    if video_id in first_at:
        return f"video_id {video_id} is already at {first_at[video_id]}"
    return None
