"""Long videos of the spotting databases: label sheet + frame folders -> expression events.

One :class:`LongSpec` per database says how its sheet is read and where a video's frames are:

- ``samm_lv``, SAMM Long Videos v2: 9 preamble rows above the header (found, not counted);
  ``Filename`` 006_1_2 is event 2 of video 006_1; ``Type`` is ``Macro`` or ``Micro - 1/2``;
  apex -1 is not annotated; frames ``SAMM_longvideos/006_1/006_1_0001.jpg``; 200 fps.
- ``casme_sq``, CAS(ME)^2: no header row; columns subject, event, onset, apex, offset, AUs,
  coarse emotion, type (``macro-expression`` / ``micro-expression``), fine emotion, duration,
  video folder (``s15/15_0401girlcrashing``); 0 is not annotated; frames
  ``rawpic/s15/15_0401girlcrashing/img1.jpg``; 30 fps.
- ``casme3_lv``, CAS(ME)^3 Part A: the clip sheet's columns plus an optional ``Type`` column;
  video ``spNO.1_a`` is ``part_A/spNO.1/a/color/``; 30 fps. The shared Part A sheet has no
  type column and lists micro-expressions only, so without one every event is a micro-expression
  (the summary says so).

Events are sorted by onset (then offset). An event whose offset is not annotated is kept (it
counts as an event of its type), with ``offset: null``; it cannot be an interval, so it is
left out of intervals.jsonl and the localisation question of its type is not asked for its
video. A type that disagrees with the MEGC2021 rule (micro when offset - onset <= 0.5 s x fps)
is kept as the sheet says, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from data_builders.au import ActionUnit, parse_aus_lenient
from data_builders.clips import Options, Report, child_dir, frame_int
from data_builders.frames import frame_files
from data_builders.sheets import Record, read_positional, read_records
from vqa.databases import DATABASES
from vqa.errors import UserError
from vqa.taxonomy import FINE_TO_COARSE, OTHERS, normalize_emotion

MICRO_MAX_SECONDS = 0.5
EVENT_TYPES = ("micro", "macro")
UNKNOWN_FRAME = {"", "-1", "0", "/", "null"}  # apex/offset cells meaning "not annotated"


@dataclass
class Event:
    """One expression event of a long video (frame numbers as in the frame file names)."""

    onset: int
    apex: int | None
    offset: int | None
    type: str  # micro | macro
    aus: list[ActionUnit]
    fine: str | None
    coarse: str | None
    source: dict

    def to_row(self) -> dict:
        return {
            "onset": self.onset,
            "apex": self.apex,
            "offset": self.offset,
            "type": self.type,
            "aus": [au.name for au in self.aus],
            "fine": self.fine,
            "coarse": self.coarse,
            "source": self.source,
        }


@dataclass
class LongVideo:
    """One long video and its events, sorted by onset."""

    dataset: str
    subject: str
    video: str
    frames_dir: str
    fps: int
    n_frames: int | None
    events: list[Event]
    annotated: tuple[str, ...] = EVENT_TYPES  # the types the sheet lists (micro only: Part A)

    def to_row(self, frames_root: Path) -> dict:
        """The videos.jsonl row."""
        return {
            "dataset": self.dataset,
            "subject": self.subject,
            "video": self.video,
            "frames_root": str(frames_root),
            "frames_dir": self.frames_dir,
            "fps": self.fps,
            "n_frames": self.n_frames,
            "events": [event.to_row() for event in self.events],
            "annotated": list(self.annotated),
        }


def interval_rows(videos: list[LongVideo]) -> list[dict]:
    """intervals.jsonl: one spotting row per event with a known offset (emotion: coarse class)."""
    rows = []
    for video in videos:
        for event in video.events:
            if event.offset is None:
                continue
            row = {
                "dataset": video.dataset,
                "video": video.video,
                "onset": event.onset,
                "offset": event.offset,
                "type": event.type,
            }
            if event.coarse:
                row["emotion"] = event.coarse
            rows.append(row)
    return rows


def rule_type(onset: int, offset: int, fps: int) -> str:
    """The MEGC2021 type of an interval: micro when it lasts at most 0.5 s."""
    return "micro" if offset - onset <= MICRO_MAX_SECONDS * fps else "macro"


@dataclass(frozen=True)
class Place:
    """Where a sheet row's video is: subject id, video name, folders under --frames."""

    subject: str
    video: str
    folders: tuple[str, ...]


@dataclass(frozen=True)
class LongSpec:
    """How one long-video database's sheet is read and where its frames are."""

    dataset: str
    read: Callable[[Path], tuple[str, list[Record]]]
    place: Callable[[dict], Place]  # raises ValueError for a cell it cannot read

    @property
    def fps(self) -> int:
        return DATABASES[self.dataset].fps


def _samm_place(cells: dict) -> Place:
    filename, subject = cells["filename"], cells["subject"]
    if "_" not in filename or not subject.isdigit():
        raise ValueError(f"cannot read video of Filename {filename!r} and Subject {subject!r}")
    video = filename.rsplit("_", 1)[0]
    return Place(str(int(subject)), video, (video,))


def _casme_sq_place(cells: dict) -> Place:
    folders = tuple(p for p in cells["folder"].replace("\\", "/").split("/") if p)
    if len(folders) != 2:
        raise ValueError(
            f"video folder {cells['folder']!r} is not subject/video (s15/15_0401girlcrashing)"
        )
    return Place(folders[0], folders[1], folders)


def _casme3_place(cells: dict) -> Place:
    subject, filename = cells["subject"], cells["filename"].lower()
    if not subject or not filename:
        raise ValueError("row has no Subject or Filename")
    return Place(subject, f"{subject}_{filename}", (subject, filename, "color"))


SAMM_LV_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset", "Onset Frame"),
    "apex": ("Apex", "Apex Frame"),
    "offset": ("Offset", "Offset Frame"),
    "type": ("Type",),
    "aus": ("Action Units",),
}
CASME_SQ_FIELDS = (
    "subject_number",
    "event",
    "onset",
    "apex",
    "offset",
    "aus",
    "coarse",
    "type",
    "fine",
    "duration",
    "folder",
)
CASME3_LV_COLUMNS = {
    "subject": ("Subject",),
    "filename": ("Filename",),
    "onset": ("Onset", "OnsetFrame"),
    "apex": ("Apex", "ApexFrame"),
    "offset": ("Offset", "OffsetFrame"),
    "aus": ("AU", "AUs", "Action Units"),
    "fine": ("emotion", "Estimated Emotion"),
    "type": ("Type", "Expression type"),
}

SPECS = {
    "samm_lv": LongSpec("samm_lv", lambda path: read_records(path, SAMM_LV_COLUMNS), _samm_place),
    "casme_sq": LongSpec(
        "casme_sq", lambda path: read_positional(path, CASME_SQ_FIELDS), _casme_sq_place
    ),
    "casme3_lv": LongSpec(
        "casme3_lv",
        lambda path: read_records(path, CASME3_LV_COLUMNS, optional=("type",)),
        _casme3_place,
    ),
}


def _type(cell: str, source: str, row: int) -> str | None:
    """micro/macro of a type cell (``Micro - 1/2``, ``macro-expression``); None when empty."""
    text = cell.strip().lower()
    for kind in EVENT_TYPES:
        if text.startswith(kind):
            return kind
    if not text:
        return None
    raise UserError(
        f"unknown expression type {cell!r}",
        file=source,
        row=row,
        fix="write Micro/Macro (SAMM) or micro-expression/macro-expression (CAS(ME)^2)",
    )


def _frame(cells: dict, what: str, source: str, row: int) -> int | None:
    text = cells[what]
    return None if text.lower() in UNKNOWN_FRAME else frame_int(text, what, source, row)


def _timing(cells: dict, source: str, row: int) -> tuple[int, int | None, int | None]:
    onset = frame_int(cells["onset"], "onset", source, row)
    apex, offset = _frame(cells, "apex", source, row), _frame(cells, "offset", source, row)
    if offset is not None and onset > offset:
        raise UserError(
            f"onset {onset} is after offset {offset}",
            file=source,
            row=row,
            fix="correct the frame numbers, or pass --skip-bad-rows to leave such rows out",
        )
    return onset, apex, offset


def _emotions(cells: dict, where: str, report: Report) -> tuple[str | None, str | None]:
    """(fine, coarse) of a row: the sheet's coarse cell if it has one, else the taxonomy's."""
    text = cells.get("fine", "").strip().lower()
    if not text:
        return None, cells.get("coarse", "").strip().lower() or None
    fine = normalize_emotion(text)
    if fine is None:
        report.warn("emotion outside the taxonomy", f"{where}: {text!r} kept as written")
        fine = text
    coarse = cells.get("coarse", "").strip().lower()
    if not coarse:
        coarse = FINE_TO_COARSE.get(fine, OTHERS)
    return fine, coarse


def _event(spec: LongSpec, record: Record, source: str, report: Report) -> Event:
    """The event of one sheet row (UserError for a row that cannot be read)."""
    cells, row, where = record.cells, record.row, f"{source}:{record.row}"
    onset, apex, offset = _timing(cells, source, row)
    if apex is not None and not (onset <= apex and (offset is None or apex <= offset)):
        report.warn("apex outside event", f"{where}: apex {apex} outside {onset}..{offset}")
        apex = None
    kind = _type(cells.get("type", ""), source, row)
    if kind is None:
        kind = "micro"
        if "no type column" not in report.warnings:
            report.warn(
                "no type column",
                f"{source}: every event counted as a micro-expression (the shared CAS(ME)^3 "
                "Part A sheet lists micro-expressions only; add a Type column for macro ones); "
                "only what micro-expressions alone tell is asked",
            )
    if offset is None:
        report.warn("offset unknown", f"{where}: kept as an event, left out of intervals.jsonl")
    elif rule_type(onset, offset, spec.fps) != kind:
        report.warn(
            "type disagrees with the 0.5 s rule",
            f"{where}: {kind} lasting {offset - onset} frames at {spec.fps} fps; kept as {kind}",
        )
    aus, dropped = parse_aus_lenient(cells["aus"])
    if dropped:
        report.warn("AU text dropped", f"{where}: {' '.join(dropped)!r} in {cells['aus']!r}")
    fine, coarse = _emotions(cells, where, report)
    return Event(onset, apex, offset, kind, aus, fine, coarse, {"sheet": source, "row": row})


def _video_frames(
    frames_root: Path, place: Place, events: list[Event], report: Report
) -> tuple[str, int | None]:
    """(frames_dir relative to --frames, number of frame files) of a video; warns about gaps."""
    folder: Path | None = frames_root
    for name in place.folders:
        folder = child_dir(folder, name) if folder else None
    if folder is None:
        report.warn("frame folder missing", f"{place.video}: no folder under {frames_root}")
        return "/".join(place.folders), None
    frames = frame_files(folder)
    first, last = (min(frames), max(frames)) if frames else (None, None)
    for event in events:
        end = event.offset if event.offset is not None else event.onset
        if first is None or event.onset < first or end > last:
            report.warn(
                "event outside the frames",
                f"{place.video}: event {event.onset}..{event.offset} outside frames "
                f"{first}..{last} in {folder}",
            )
    return folder.relative_to(frames_root).as_posix(), len(frames)


def read_videos(
    database: str, labels: Path, frames_root: Path, options: Options
) -> tuple[list[LongVideo], Report]:
    """Every long video of a sheet (in order of first appearance), its events, and the report."""
    spec = SPECS[database]
    source, records = spec.read(labels)
    report = Report(read=len(records))
    grouped: dict[Place, list[Event]] = {}
    seen: dict[tuple, int] = {}
    for record in tqdm(records, desc=f"{database} events", unit="row", leave=False, delay=1):
        try:
            place = spec.place(record.cells)
        except ValueError as e:
            raise UserError(
                str(e), file=source, row=record.row, fix="use the database's own sheet"
            ) from None
        try:
            event = _event(spec, record, source, report)
        except UserError as e:
            if not options.skip_bad_rows:
                raise
            report.dropped["bad frame numbers"] += 1
            report.warn("row skipped", f"{source}:{record.row}: {e.what}")
            continue
        key = (place.video, event.onset, event.offset, event.type)
        if key in seen:
            report.dropped["duplicate event"] += 1
            report.warn("duplicate event", f"{source}:{record.row}: same as row {seen[key]}")
            continue
        seen[key] = record.row
        grouped.setdefault(place, []).append(event)
    annotated = ("micro",) if "no type column" in report.warnings else EVENT_TYPES
    videos = []
    for place, events in tqdm(grouped.items(), desc="videos", unit="video", leave=False, delay=1):
        events.sort(key=lambda e: (e.onset, e.offset if e.offset is not None else e.onset))
        frames_dir, n_frames = _video_frames(frames_root, place, events, report)
        videos.append(
            LongVideo(
                spec.dataset,
                place.subject,
                place.video,
                frames_dir,
                spec.fps,
                n_frames,
                events,
                annotated,
            )
        )
    return videos, report
