"""The clip record every database reader produces, and the checks all readers share.

A reader turns a database's labels and frame folders into :class:`Clip` objects and notes
what it dropped or doubted in a :class:`Report`. Sheet-based databases (CASME II, SAMM,
CAS(ME)^3) only declare a :class:`SheetSpec`; :func:`read_sheet_clips` does the rest.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from data_builders.au import ActionUnit, AUParseError, parse_aus
from data_builders.frames import frame_files, nearest_frame
from data_builders.sheets import Record, read_records
from vqa.databases import DATABASES
from vqa.errors import UserError
from vqa.taxonomy import EMOTION_SPELLINGS, OTHERS, coarse_of, normalize_emotion


@dataclass
class Clip:
    """One labelled clip; frame numbers are those written in the frame file names."""

    dataset: str
    subject: str
    filename: str
    image_id: str
    frames_dir: str
    onset: int
    apex: int | None
    offset: int
    fps: int
    aus: list[ActionUnit]
    fine: str | None
    coarse: str
    source: dict

    def to_row(self, frames_root: Path) -> dict:
        """The clips.jsonl row (see the data contract in the guide)."""
        return {
            "dataset": self.dataset,
            "subject": self.subject,
            "filename": self.filename,
            "image_id": self.image_id,
            "frames_root": str(frames_root),
            "frames_dir": self.frames_dir,
            "onset": self.onset,
            "apex": self.apex,
            "offset": self.offset,
            "fps": self.fps,
            "aus": [au.to_dict() for au in self.aus],
            "fine": self.fine,
            "coarse": self.coarse,
            "source": self.source,
        }


@dataclass
class Report:
    """What a conversion read, dropped (by reason) and warned about (by kind)."""

    read: int = 0
    dropped: Counter = field(default_factory=Counter)
    warnings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def warn(self, kind: str, message: str) -> None:
        self.warnings[kind].append(message)


@dataclass(frozen=True)
class Options:
    """Conversion choices: which emotions to keep, and whether bad timing rows stop it."""

    keep_others: bool = False
    keep_fear_sadness: bool = False
    skip_bad_rows: bool = False


# Field -> header spellings used by the CASME II, SAMM and CAS(ME)^3 sheets.
SHEET_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("OnsetFrame", "Onset"),
    "apex": ("ApexFrame", "Apex"),
    "offset": ("OffsetFrame", "Offset"),
    "aus": ("Action Units", "AU", "AUs"),
    "emotion": ("Estimated Emotion", "Emotion"),
}


@dataclass(frozen=True)
class SheetSpec:
    """How one sheet-based database names its columns, subjects, clips and frame folders.

    ``subject(cell)`` gives the organisers' subject id; ``folder(frames_root, subject_cell,
    filename_cell)`` finds the clip's frame folder (None if absent); ``image_id(subject,
    filename, onset)`` gives the organisers' clip id.
    """

    dataset: str
    subject: Callable[[str], str]
    folder: Callable[[Path, str, str], Path | None]
    image_id: Callable[[str, str, int], str]
    drops_fear_sadness: bool = False


def child_dir(parent: Path, name: str) -> Path | None:
    """The sub-folder of ``parent`` called ``name``, matched exactly first, then ignoring case."""
    exact = parent / name
    if exact.is_dir():
        return exact
    if not parent.is_dir():
        return None
    matches = sorted(p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower())
    return matches[0] if matches else None


def frame_int(text: str, what: str, source: str, row: int) -> int:
    """A frame number cell as an int (UserError naming the cell otherwise)."""
    try:
        return int(text)
    except ValueError:
        raise UserError(
            f"{what} frame {text!r} is not a number",
            file=source,
            row=row,
            fix="write whole frame numbers",
        ) from None


def emotion(text: str, source: str, row: int) -> str:
    """Canonical fine label (or ``others``) of an emotion cell; UserError for unknown ones."""
    fine = normalize_emotion(text)
    if fine is None:
        raise UserError(
            f"unknown emotion {text!r}",
            file=source,
            row=row,
            fix=f"use one of {', '.join(sorted(EMOTION_SPELLINGS))}",
        )
    return fine


def drop_reason(fine: str, drops_fear_sadness: bool, options: Options) -> str | None:
    """Why a clip with this emotion is left out by default, or None to keep it."""
    if fine == OTHERS and not options.keep_others:
        return "emotion others"
    if drops_fear_sadness and fine in ("fear", "sadness") and not options.keep_fear_sadness:
        return f"emotion {fine} (dropped as the challenge did)"
    return None


def check_frames(folder: Path, image_id: str, onset: int, offset: int, report: Report) -> None:
    """Warn about a clip folder with missing onset/offset files or fewer frames than labelled."""
    frames = frame_files(folder)
    expected = offset - onset + 1
    if len(frames) < expected:
        report.warn(
            "fewer frames", f"{image_id}: {len(frames)} frames in {folder}, labels span {expected}"
        )
    for what, number in (("onset", onset), ("offset", offset)):
        if number not in frames:
            near = nearest_frame(frames, number)
            hint = f"nearest is {frames[near].name}" if near is not None else "folder has no frames"
            report.warn(
                f"{what} frame missing", f"{image_id}: no frame {number} in {folder} ({hint})"
            )


def checked_apex(
    apex_text: str, onset: int, offset: int, image_id: str, report: Report
) -> int | None:
    """The apex frame, or None (with a warning) when it is unknown or outside onset..offset."""
    try:
        apex = int(apex_text)
    except ValueError:
        report.warn(
            "apex unknown",
            f"{image_id}: apex {apex_text!r} is not a frame number; it will be estimated",
        )
        return None
    if not onset <= apex <= offset:
        report.warn(
            "apex outside clip",
            f"{image_id}: apex {apex} outside {onset}..{offset}; it will be estimated",
        )
        return None
    return apex


def _timing(spec: SheetSpec, cells: dict, source: str, row: int) -> tuple[int, int]:
    onset = frame_int(cells["onset"], "onset", source, row)
    offset = frame_int(cells["offset"], "offset", source, row)
    if onset > offset:
        raise UserError(
            f"onset {onset} is after offset {offset}",
            file=source,
            row=row,
            fix="correct the frame numbers, or pass --skip-bad-rows to leave such rows out",
        )
    return onset, offset


def _aus(text: str, image_id: str, source: str, row: int, report: Report) -> list[ActionUnit]:
    try:
        aus, dropped = parse_aus(text)
    except AUParseError as e:
        raise UserError(str(e), file=source, row=row, fix="write AUs like 4+L10 or R12A") from None
    for part in dropped:
        report.warn("AU free text dropped", f"{image_id}: {part!r} in {text!r} is not an AU")
    return aus


def _sheet_clip(
    spec: SheetSpec,
    record: Record,
    source: str,
    frames_root: Path,
    options: Options,
    report: Report,
):
    """The clip of one sheet row, or None when it is dropped."""
    cells, row = record.cells, record.row
    if not cells["subject"] or not cells["filename"]:
        raise UserError(
            "row has no Subject or Filename",
            file=source,
            row=row,
            fix="fill both cells or delete the row",
        )
    fine = emotion(cells["emotion"], source, row)
    reason = drop_reason(fine, spec.drops_fear_sadness, options)
    if reason:
        report.dropped[reason] += 1
        return None
    try:
        onset, offset = _timing(spec, cells, source, row)
    except UserError as e:
        if not options.skip_bad_rows:
            raise
        report.dropped["bad frame numbers"] += 1
        report.warn("row skipped", f"{source}:{row}: {e.what}")
        return None
    try:
        subject = spec.subject(cells["subject"])
    except ValueError as e:
        raise UserError(
            str(e), file=source, row=row, fix="write the subject as the database's sheet does"
        ) from None
    image_id = spec.image_id(subject, cells["filename"], onset)
    aus = _aus(cells["aus"], image_id, source, row, report)
    apex = checked_apex(cells["apex"], onset, offset, image_id, report)
    folder = spec.folder(frames_root, cells["subject"], cells["filename"])
    if folder is None:
        report.warn(
            "frame folder missing",
            f"{image_id}: no frame folder for {source}:{row} under {frames_root}",
        )
        frames_dir = f"{subject}/{cells['filename']}"
    else:
        check_frames(folder, image_id, onset, offset, report)
        if cells["filename"] not in folder.parts:
            report.warn(
                "folder case differs",
                f"{image_id}: sheet says {cells['filename']!r}, folder is {folder}",
            )
        frames_dir = folder.relative_to(frames_root).as_posix()
    return Clip(
        dataset=spec.dataset,
        subject=subject,
        filename=cells["filename"],
        image_id=image_id,
        frames_dir=frames_dir,
        onset=onset,
        apex=apex,
        offset=offset,
        fps=DATABASES[spec.dataset].fps,
        aus=aus,
        fine=fine,
        coarse=coarse_of(fine) if fine != OTHERS else OTHERS,
        source={"sheet": source, "row": row},
    )


def unique_image_ids(clips: list[Clip], report: Report) -> None:
    """Give repeated image_ids a ``_2``, ``_3``... suffix (rows of the same clip stay separate)."""
    seen: Counter = Counter()
    for clip in clips:
        seen[clip.image_id] += 1
        if seen[clip.image_id] > 1:
            new_id = f"{clip.image_id}_{seen[clip.image_id]}"
            report.warn(
                "repeated clip",
                f"{clip.image_id} ({clip.source['sheet']}:{clip.source['row']}) renamed {new_id}",
            )
            clip.image_id = new_id


def read_sheet_clips(
    spec: SheetSpec, labels: Path, frames_root: Path, options: Options
) -> tuple[list[Clip], Report]:
    """Every kept clip of a sheet-based database, in sheet order, and the report."""
    source, records = read_records(labels, SHEET_COLUMNS)
    report = Report(read=len(records))
    clips = []
    for record in tqdm(records, desc=f"{spec.dataset} clips", unit="clip", leave=False, delay=1):
        clip = _sheet_clip(spec, record, source, frames_root, options, report)
        if clip is not None:
            clips.append(clip)
    unique_image_ids(clips, report)
    return clips, report
