"""CAS(ME)^3 Part A: the ``label`` sheet plus ``part_A/spNO.1/a/color/355.jpg`` frames.

``--frames`` is the ``part_A`` folder holding ``spNO.1``, ``spNO.2``... Every cell of the sheet
is text; folder names are matched ignoring case (the sheet has ``J`` for ``j``); one subject
and filename can hold several clips, told apart by their onset (image id
``spNO.1_e_62``, with ``_2``... added if even that repeats). 30 fps.
"""

from __future__ import annotations

from pathlib import Path

from data_builders.clips import Clip, Options, Report, SheetSpec, child_dir, read_sheet_clips


def clip_folder(frames_root: Path, subject_cell: str, filename: str) -> Path | None:
    subject = child_dir(frames_root, subject_cell)
    clip = child_dir(subject, filename) if subject else None
    return child_dir(clip, "color") if clip else None


SPEC = SheetSpec(
    dataset="casme3",
    subject=str,
    folder=clip_folder,
    image_id=lambda subject, filename, onset: f"{subject}_{filename}_{onset}",
)


def read_clips(labels: Path, frames_root: Path, options: Options) -> tuple[list[Clip], Report]:
    return read_sheet_clips(SPEC, labels, frames_root, options)
