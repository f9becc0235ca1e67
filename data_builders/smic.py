"""SMIC-HS: no label sheet; labels come from ``HS/s1/micro/negative/s1_ne_01/image020843.bmp``.

``--frames`` is the ``HS`` folder. The emotion folder (``positive``, ``negative``,
``surprise``) is the coarse class; there is no fine class, AU or apex. Onset is the first
frame, offset the last. 100 fps. The organisers zero-pad the subject in ids: the folder
``s1_ne_01`` is the clip ``s01_ne_01`` of subject ``s01``.
"""

from __future__ import annotations

import re
from pathlib import Path

from tqdm import tqdm

from data_builders.clips import Clip, Options, Report, check_frames, child_dir
from data_builders.frames import frame_files
from vqa.databases import DATABASES
from vqa.errors import UserError

COARSE_FOLDERS = {"positive": "positive", "negative": "negative", "surprise": "surprise"}
_SUBJECT = re.compile(r"^s(\d+)$", re.IGNORECASE)
_CLIP_SUBJECT = re.compile(r"^s\d+", re.IGNORECASE)


def _subject_folders(frames_root: Path) -> list[tuple[int, Path]]:
    found = [
        (int(m.group(1)), p)
        for p in frames_root.iterdir()
        if p.is_dir() and (m := _SUBJECT.match(p.name))
    ]
    if not found:
        raise UserError(
            "no SMIC subject folders (s1, s2, ...)",
            file=frames_root,
            fix="give the SMIC HS folder as --frames",
        )
    return sorted(found)


def _clip_folders(frames_root: Path) -> list[tuple[int, str, Path]]:
    """(subject number, coarse class, folder) of every micro clip, in subject, class, name order."""
    clips = []
    for number, subject in _subject_folders(frames_root):
        micro = child_dir(subject, "micro")
        for emotion_dir in sorted(p for p in (micro.iterdir() if micro else []) if p.is_dir()):
            coarse = COARSE_FOLDERS.get(emotion_dir.name.lower())
            if coarse is None:
                raise UserError(
                    f"unknown emotion folder {emotion_dir.name!r}",
                    file=emotion_dir,
                    fix=f"SMIC emotion folders are {', '.join(COARSE_FOLDERS)}",
                )
            clips += [(number, coarse, p) for p in sorted(emotion_dir.iterdir()) if p.is_dir()]
    return clips


def _clip(number: int, coarse: str, folder: Path, frames_root: Path, report: Report) -> Clip | None:
    subject = f"s{number:02d}"
    image_id = _CLIP_SUBJECT.sub(subject, folder.name)
    frames = frame_files(folder)
    if not frames:
        report.dropped["no frames in folder"] += 1
        report.warn("frame folder empty", f"{image_id}: no frames in {folder}")
        return None
    onset, offset = min(frames), max(frames)
    check_frames(folder, image_id, onset, offset, report)
    report.warn("apex unknown", f"{image_id}: SMIC has no apex; it will be estimated")
    rel = folder.relative_to(frames_root).as_posix()
    return Clip(
        dataset="smic",
        subject=subject,
        filename=image_id,
        image_id=image_id,
        frames_dir=rel,
        onset=onset,
        apex=None,
        offset=offset,
        fps=DATABASES["smic"].fps,
        aus=[],
        fine=None,
        coarse=coarse,
        source={"sheet": None, "row": None, "folder": rel},
    )


def read_clips(
    labels: Path | None, frames_root: Path, options: Options
) -> tuple[list[Clip], Report]:
    """Every micro clip under the HS folder (``labels`` must be None: SMIC has no sheet)."""
    del options  # SMIC clips carry no emotion to filter on
    if labels is not None:
        raise UserError(
            "SMIC takes no --labels",
            file=labels,
            fix="its labels come from the folder names; drop --labels",
        )
    folders = _clip_folders(frames_root)
    report = Report(read=len(folders))
    clips = [
        _clip(*entry, frames_root, report)
        for entry in tqdm(folders, desc="smic clips", unit="clip", leave=False, delay=1)
    ]
    return [c for c in clips if c is not None], report
