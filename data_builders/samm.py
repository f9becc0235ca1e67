"""SAMM: ``SAMM_Micro_FACS_Codes_v2.xlsx`` plus ``SAMM/006/006_1_2/006_05562.jpg``.

``--frames`` is the folder holding ``006``, ``007``... The sheet has 13 preamble rows above
its header (found, not counted); frame numbers are padded to 4 or 5 digits in file names.
Emotions are capitalised (``Anger``, ``Other``). 200 fps. The organisers' subject id is the
number without padding (``6``) and the image id is the filename (``006_1_2``).
"""

from __future__ import annotations

from pathlib import Path

from data_builders.clips import Clip, Options, Report, SheetSpec, child_dir, read_sheet_clips


def subject_id(cell: str) -> str:
    """``6`` or ``006`` -> ``6``."""
    if not cell.isdigit():
        raise ValueError(f"subject {cell!r} is not a SAMM subject number")
    return str(int(cell))


def clip_folder(frames_root: Path, subject_cell: str, filename: str) -> Path | None:
    subject = child_dir(frames_root, f"{int(subject_id(subject_cell)):03d}")
    return child_dir(subject, filename) if subject else None


SPEC = SheetSpec(
    dataset="samm",
    subject=subject_id,
    folder=clip_folder,
    image_id=lambda subject, filename, onset: filename,
)


def read_clips(labels: Path, frames_root: Path, options: Options) -> tuple[list[Clip], Report]:
    return read_sheet_clips(SPEC, labels, frames_root, options)
