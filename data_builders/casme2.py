"""CASME II: ``CASME2-coding-*.xlsx`` plus ``CASME2_RAW_selected/sub01/EP02_01f/img46.jpg``.

``--frames`` is the folder holding ``sub01``, ``sub02``... (the raw or the cropped copy;
``reg_img46.jpg`` names work too). Subjects may be written ``01`` or ``1``; an apex of ``/``
is unknown. 200 fps. Fear and sadness clips are dropped by default, as the challenge did.
"""

from __future__ import annotations

from pathlib import Path

from data_builders.clips import Clip, Options, Report, SheetSpec, child_dir, read_sheet_clips


def subject_id(cell: str) -> str:
    """``01``, ``1`` or ``sub01`` -> ``sub01``."""
    digits = cell.lower().removeprefix("sub")
    if not digits.isdigit():
        raise ValueError(f"subject {cell!r} is not a CASME II subject number")
    return f"sub{int(digits):02d}"


def clip_folder(frames_root: Path, subject_cell: str, filename: str) -> Path | None:
    subject = child_dir(frames_root, subject_id(subject_cell))
    return child_dir(subject, filename) if subject else None


SPEC = SheetSpec(
    dataset="casme2",
    subject=subject_id,
    folder=clip_folder,
    image_id=lambda subject, filename, onset: f"{subject}_{filename}",
    drops_fear_sadness=True,
)


def read_clips(labels: Path, frames_root: Path, options: Options) -> tuple[list[Clip], Report]:
    return read_sheet_clips(SPEC, labels, frames_root, options)
