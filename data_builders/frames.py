"""Frame files of a clip folder, keyed by the frame number written in their names, and what the
clip and long-video builders share: reading, caching and building in parallel."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from multiprocessing import Event, Pool
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from vqa.databases import DATABASES
from vqa.errors import UserError
from vqa.records import challenge_video_name, parse_video_id

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def frame_number(path: Path) -> int | None:
    """The digits at the end of a file stem: img46.jpg -> 46, 006_05562.jpg -> 5562."""
    match = _TRAILING_NUMBER.search(Path(path).stem)
    return int(match.group(1)) if match else None


def frame_files(folder: str | Path) -> dict[int, Path]:
    """Frame number -> file for every image in ``folder``, in ascending frame order."""
    found = {}
    for path in Path(folder).iterdir():
        number = frame_number(path)
        if path.suffix.lower() in IMAGE_SUFFIXES and number is not None:
            found[number] = path
    return dict(sorted(found.items()))


def nearest_frame(frames: dict[int, Path], number: int) -> int | None:
    """The existing frame number closest to ``number`` (None for an empty folder)."""
    return min(frames, key=lambda n: (abs(n - number), n), default=None)


_FLAGS = {
    (False, 1): cv2.IMREAD_COLOR,
    (False, 2): cv2.IMREAD_REDUCED_COLOR_2,
    (False, 4): cv2.IMREAD_REDUCED_COLOR_4,
    (False, 8): cv2.IMREAD_REDUCED_COLOR_8,
    (True, 1): cv2.IMREAD_GRAYSCALE,
    (True, 2): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (True, 4): cv2.IMREAD_REDUCED_GRAYSCALE_4,
    (True, 8): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}


def read_frame(path: Path, grey: bool = False, reduce: int = 1) -> np.ndarray:
    """Decode one frame, optionally at 1/2, 1/4 or 1/8 size (JPEG decodes that much faster);
    a file that decodes to nothing is a user error."""
    image = cv2.imread(str(path), _FLAGS[grey, reduce])
    if image is None:
        raise _damaged(path)
    return image


def frame_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image from its header, without decoding it; a file without an
    image header (an empty or damaged one) is a user error."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError:  # PIL's UnidentifiedImageError is one
        raise _damaged(path) from None


def _damaged(path: Path) -> UserError:
    return UserError("image decodes to nothing", file=path, fix="replace the damaged frame file")


def reduction(long_side: float, target: int) -> int:
    """The largest decode reduction (1, 2, 4 or 8) that keeps ``long_side`` >= ``target``."""
    return max((r for r in (1, 2, 4, 8) if long_side / r >= target), default=1)


def files_digest(h, frames: dict[int, Path]) -> str:
    """``h`` (a hashlib object) updated with every frame file's number, name, size and mtime:
    the short hex key of a cache that a changed, added or removed frame invalidates."""
    for number, path in frames.items():
        stat = path.stat()
        h.update(f"{number}:{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def folder_frames(
    label: str, folder: Path, listing: str, minimum: int, *, file: Path, row: int
) -> dict[int, Path]:
    """The frame files of a clip's or video's folder named by ``file:row`` (a ``listing`` such
    as clips.jsonl); a missing folder or fewer than ``minimum`` frames is a UserError."""
    if not folder.is_dir():
        raise UserError(
            f"{label}: frame folder {folder} does not exist",
            file=file,
            row=row,
            fix=f"check --frames-root or the frames_root/frames_dir of {listing}",
        )
    frames = frame_files(folder)
    if len(frames) < minimum:
        raise UserError(
            f"{label}: {len(frames) or 'no'} frame images in {folder}, {minimum} needed",
            file=file,
            row=row,
            fix="put the frames there as image files named by their number (img46.jpg), "
            "or check --frames-root",
        )
    return frames


def frame_rate(value, *, file: Path, row: int) -> float:
    """The ``fps`` of a clips.jsonl or videos.jsonl row, checked to be a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise UserError(
            f"fps {value!r} is not a frame rate",
            file=file,
            row=row,
            fix="write the database's frames per second, as me-vqa convert does",
        )
    return value


def cached(parent: Path, name: str, key: str) -> tuple[Path, dict | None]:
    """The cache folder of one clip or video built with ``key``, and its record (marked
    ``cached``) when it was built already, else None."""
    folder = parent / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}-{key}"
    record = folder / "record.json"
    if not record.is_file():
        return folder, None
    return folder, {**json.loads(record.read_text("utf-8")), "cached": True}


def challenge_video(row: dict, frames_root: Path | None, file: Path, lineno: int):
    """A challenge test row's frame folder, FRAMES_ROOT/<video>, and the frame rate of the
    database its ``video_id`` names (None when unknown); no --frames-root is an error."""
    name = challenge_video_name(row, file, lineno)
    if frames_root is None:
        raise UserError(
            "a test row names a video but no --frames-root was given",
            file=file,
            row=lineno,
            fix="pass --frames-root, the folder holding one frame folder per video",
        )
    test_id = parse_video_id(str(row.get("video_id", "")))
    database = DATABASES.get(test_id.dataset) if test_id else None
    return frames_root / name, database.fps if database else None


def build_in_parallel(build: Callable, tasks: list[tuple], workers: int, desc: str, unit: str):
    """``build(*task)`` for every task, in ``workers`` processes when more than one, in order.
    When a task fails, the tasks not started are skipped and those under way are finished (a
    worker killed halfway would leave its temporary folder behind) before the error is raised."""
    with tqdm(total=len(tasks), desc=desc, unit=unit) as bar:
        if workers > 1 and len(tasks) > 1:
            failed = Event()
            with Pool(min(workers, len(tasks)), _share_failed, (failed,)) as pool:
                try:
                    for result in pool.imap(_call, [(build, task) for task in tasks]):
                        bar.update()
                        yield result
                except Exception:
                    failed.set()
                    pool.close()
                    pool.join()
                    raise
            return
        for task in tasks:
            result = build(*task)
            bar.update()
            yield result


_failed = None  # in a worker: the pool's event set once a task has failed


def _share_failed(failed) -> None:
    global _failed
    _failed = failed


def _call(job: tuple[Callable, tuple]):
    if _failed.is_set():
        return None
    build, task = job
    return build(*task)
