"""Frame files of a clip folder, keyed by the frame number written in their names."""

from __future__ import annotations

import re
from pathlib import Path

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
