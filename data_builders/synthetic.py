"""Synthetic micro-expression databases in the real databases' on-disk layouts.

Each clip is a cartoon face (:mod:`data_builders.face`) whose action units rise from the onset
to the apex frame and fall back by the offset frame, with small head jitter, illumination
changes, pixel noise and a per-subject face shape, so that motion and not a fixed pixel tells
the class. The emotion follows the AU combination. Every database is written as the real one
is laid out (label sheet format and frame file names, see ``../shared/data/SOURCES.md``),
so the converters read it exactly as they read the real database.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from data_builders.au import parse_aus
from data_builders.face import FaceShape, Pose, render
from vqa.cli import command_parser
from vqa.databases import DATABASES as KNOWN
from vqa.errors import UserError
from vqa.jsonl import atomic_folder, read_jsonl
from vqa.records import challenge_video_name

# left in every folder synth writes: only such a folder (or an empty one) is replaced
STAMP = ".written-by-me-vqa-synth"

# the clip databases synth renders, in the table's order (each one's random stream)
DATABASES = tuple(name for name, db in KNOWN.items() if db.synth_frames and not db.long)

# Emotion -> AU strings (CASME II notation) that show it; clips cycle through the variants.
EMOTION_AUS = {
    "happiness": ("6+12", "12", "6+12+25"),
    "surprise": ("1+2+5", "1+2", "1+2+5+26"),
    "disgust": ("4+7+10", "9", "4+L10"),
    "anger": ("4+5", "4+7+24", "4+23+24"),
    "fear": ("1+4+20", "1+4+5+20"),
    "sadness": ("15", "15+17", "1+15"),
    "contempt": ("R12", "L14"),
    "repression": ("14", "24", "17+24"),
    "others": ("25", "17", "L7"),
}
SMIC_COARSE_EMOTION = {"positive": "happiness", "negative": "disgust", "surprise": "surprise"}

# How each database spells its emotions (None: the emotion is not in that database).
SPELLINGS = {
    "casme2": {e: e for e in ("happiness", "surprise", "disgust", "repression", "others")},
    "samm": {e: e.capitalize() for e in EMOTION_AUS if e not in ("repression", "others")}
    | {"others": "Other"},
    "casme3": {
        "happiness": "happy",
        "sadness": "sad",
        "surprise": "surprise",
        "anger": "anger",
        "disgust": "disgust",
        "fear": "fear",
        "others": "others",
    },
    "smic": {"happiness": "positive", "disgust": "negative", "surprise": "surprise"},
}


@dataclass
class SynthClip:
    """Ground truth of one rendered clip."""

    database: str
    subject: int
    filename: str
    folder: Path
    emotion: str
    aus: str
    onset: int
    apex: int
    offset: int
    apex_written: str  # the apex cell as the sheet writes it ('/' when unknown)


@dataclass
class SynthDatabase:
    name: str
    labels: Path | None
    frames: Path
    clips: list[SynthClip]


def au_levels(aus: str, intensity: float) -> dict[int, tuple[float, float]]:
    """Per-AU (subject-left, subject-right) intensities of an AU string at ``intensity``."""
    levels = {}
    for unit in parse_aus(aus)[0]:
        left = intensity if unit.side in (None, "L") else 0.0
        right = intensity if unit.side in (None, "R") else 0.0
        levels[unit.number] = (left, right)
    return levels


def intensity_curve(n_frames: int, apex_index: int) -> np.ndarray:
    """Smooth 0 -> 1 -> 0 intensity over a clip, peaking at ``apex_index``."""
    t = np.arange(n_frames, dtype=float)
    rise = np.sin(0.5 * np.pi * np.clip(t / max(apex_index, 1), 0, 1)) ** 2
    fall = (
        np.sin(0.5 * np.pi * np.clip((n_frames - 1 - t) / max(n_frames - 1 - apex_index, 1), 0, 1))
        ** 2
    )
    return np.where(t <= apex_index, rise, fall) ** 2  # squared: a clear peak at the apex


def render_clip(
    shape: FaceShape, aus: str, n_frames: int, apex_index: int, size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """The BGR frames of one clip: AU motion plus head jitter, lighting drift and noise."""
    jitter = np.zeros((n_frames, 3))
    for k in range(1, n_frames):  # head jitter that wanders a little and returns
        jitter[k] = 0.7 * jitter[k - 1] + rng.normal(0, 0.15, 3)
    gains = 1.0 + np.cumsum(rng.normal(0, 0.004, n_frames))
    frames = []
    for k, level in enumerate(intensity_curve(n_frames, apex_index)):
        pose = Pose(dx=jitter[k, 0], dy=jitter[k, 1], angle=0.3 * jitter[k, 2], gain=gains[k])
        img = render(shape, au_levels(aus, float(level)), size, pose).astype(np.float32)
        img += rng.normal(0, 1.5, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def samm_notation(aus: str, k: int) -> str:
    """SAMM's messier spelling of an AU string: intensity letters, stray spaces, free text."""
    parts = aus.split("+")
    if k % 3 == 1:
        parts = [p + "ABCDE"[(k + i) % 5] for i, p in enumerate(parts)]
    text = " + ".join(parts) if k % 4 == 2 else "+".join(parts)
    return text + "+soft focus" if k % 7 == 3 else text


def _emotions(database: str) -> list[str]:
    return list(SPELLINGS[database])


def _write_frames(folder: Path, names: list[str], frames: list[np.ndarray], grey: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(names, frames, strict=True):
        image = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if grey else frame
        if not cv2.imwrite(str(folder / name), image):
            raise UserError("could not write frame", file=folder / name, fix="check disk space")


def _clip_layout(database: str, root: Path, subject: int, k: int, emotion: str, start: int):
    """(filename, folder, frame file namer) of clip ``k`` of ``subject``."""
    if database == "casme2":
        filename = f"EP{k + 1:02d}_{subject:02d}" + ("f" if k % 2 == 0 else "")
        return filename, root / f"sub{subject:02d}" / filename, lambda n: f"img{n}.jpg"
    if database == "samm":
        filename = f"{subject:03d}_{1 + k % 3}_{k + 1}"
        width = 5 if start >= 10000 else 4
        return (
            filename,
            root / f"{subject:03d}" / filename,
            lambda n: f"{subject:03d}_{n:0{width}d}.jpg",
        )
    if database == "smic":
        short = {"positive": "po", "negative": "ne", "surprise": "sur"}[SPELLINGS["smic"][emotion]]
        filename = f"s{subject}_{short}_{k + 1:02d}"
        folder = root / f"s{subject}" / "micro" / SPELLINGS["smic"][emotion] / filename
        return filename, folder, lambda n: f"image{n:06d}.bmp"
    filename = "abcdefghijklmnopqrstuvwxyz"[k % 26]
    return filename, root / f"spNO.{subject}" / filename / "color", lambda n: f"{n}.jpg"


def _subject_number(database: str, index: int) -> int:
    return index + (6 if database == "samm" else 1)


def _plan_clip(
    database: str, subject_index: int, k: int, clips_per_subject: int, rng: np.random.Generator
) -> tuple[str, str]:
    """(emotion, AU string) of one clip: emotions cycle so every subject sees several."""
    emotions = _emotions(database)
    emotion = emotions[(subject_index * clips_per_subject + k) % len(emotions)]
    if database == "smic":
        emotion = list(SMIC_COARSE_EMOTION.values())[(subject_index + k) % 3]
    variants = EMOTION_AUS[emotion]
    return emotion, variants[int(rng.integers(len(variants)))]


def _render_database(
    database: str,
    root: Path,
    subjects: int,
    clips_per_subject: int,
    n_frames: int,
    size: int,
    rng: np.random.Generator,
) -> list[SynthClip]:
    clips = []
    progress = tqdm(total=subjects * clips_per_subject, desc=f"synth {database}", unit="clip")
    for s in range(subjects):
        subject = _subject_number(database, s)
        shape = FaceShape.sample(rng)
        for k in range(clips_per_subject):
            emotion, aus = _plan_clip(database, s, k, clips_per_subject, rng)
            start = int(rng.integers(8000, 12000) if database == "samm" else rng.integers(20, 400))
            filename, folder, name_of = _clip_layout(database, root, subject, k, emotion, start)
            apex_index = int(rng.integers(n_frames // 3, n_frames // 2 + 1))
            frames = render_clip(shape, aus, n_frames, apex_index, size, rng)
            numbers = list(range(start, start + n_frames))
            _write_frames(folder, [name_of(n) for n in numbers], frames, grey=database == "samm")
            apex_cell = (
                "/" if database == "casme2" and (subject + k) % 4 == 3 else str(numbers[apex_index])
            )
            clips.append(
                SynthClip(
                    database,
                    subject,
                    filename,
                    folder,
                    emotion,
                    aus,
                    numbers[0],
                    numbers[apex_index],
                    numbers[-1],
                    apex_cell,
                )
            )
            progress.update()
    progress.close()
    return clips


SAMM_PREAMBLE = (
    "SAMM Dataset - Master FACS Codes (synthetic stand-in written by me-vqa)",
    None,
    "Emotional and objective classes are included.",
    None,
    None,
    "Symbol Key:",
    '"/" = or',
    '"?" = unclear offset',
    None,
    "AU Help:",
    '"L2 or R2" = unilateral AU 2 on the left / right side of the face',
    '"A2" = asymmetric AU 2',
    None,
)


# The CASME II coding sheet's header row (its unnamed columns stay empty).
CASME2_HEADER = [
    "Subject",
    "Filename",
    None,
    "OnsetFrame",
    "ApexFrame",
    "OffsetFrame",
    None,
    "Action Units",
    "Estimated Emotion",
]


def _sheet_rows(database: str, clips: list[SynthClip]) -> tuple[list, list[list]]:
    """(header, rows) of a database's label sheet in its own cell formats."""
    if database == "casme2":
        header = CASME2_HEADER
        rows = [
            [
                f"{c.subject:02d}" if c.subject % 2 else c.subject,
                c.filename,
                None,
                c.onset,
                c.apex if c.apex_written != "/" else "/",
                c.offset,
                None,
                c.aus,
                SPELLINGS["casme2"][c.emotion],
            ]
            for c in clips
        ]
        return header, rows
    if database == "samm":
        header = [
            "Subject",
            "Filename",
            "Inducement Code",
            "Onset Frame",
            "Apex Frame",
            "Offset Frame",
            "Duration",
            "Micro",
            "Action Units",
            "Estimated Emotion",
            "Objective Classes",
            "Notes",
        ]
        rows = [
            [
                c.subject,
                c.filename,
                int(c.filename.split("_")[1]),
                c.onset,
                c.apex,
                c.offset,
                c.offset - c.onset + 1,
                "Micro - 1/2",
                samm_notation(c.aus, k),
                SPELLINGS["samm"][c.emotion],
                None,
                None,
            ]
            for k, c in enumerate(clips)
        ]
        return header, rows
    header = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
    rows = [
        [
            f"spNO.{c.subject}",
            c.filename,
            str(c.onset),
            str(c.apex),
            str(c.offset),
            c.aus,
            "I",
            "Others" if c.emotion == "others" and k % 2 else SPELLINGS["casme3"][c.emotion],
        ]
        for k, c in enumerate(clips)
    ]
    return header, rows


def write_sheet(database: str, clips: list[SynthClip], path: Path) -> None:
    """The label sheet as the real database ships it (.xlsx)."""
    from openpyxl import Workbook

    header, rows = _sheet_rows(database, clips)
    book = Workbook()
    sheet = book.active
    sheet.title = {"casme2": "Sheet1", "samm": "FACS Codes", "casme3": "label"}[database]
    for line in SAMM_PREAMBLE if database == "samm" else ():
        sheet.append([line])
    for row in [header, *rows]:
        sheet.append(row)
    book.save(path)


@contextlib.contextmanager
def synth_folder(path: Path) -> Iterator[Path]:
    """:func:`atomic_folder` replacing ``path``, refused when ``path`` holds files synth did not
    write (a user's folder given as ``--out`` is never deleted)."""
    if path.is_dir() and any(path.iterdir()) and not (path / STAMP).is_file():
        raise UserError(
            "folder not written by me-vqa synth, which would replace it",
            file=path,
            fix="give --out a new folder",
        )
    with atomic_folder(path, overwrite=True) as build:
        (build / STAMP).touch()
        yield build


def synthesize(
    database: str,
    out_dir: str | Path,
    *,
    subjects: int = 3,
    clips_per_subject: int = 4,
    frames: int = 20,
    size: int = 128,
    seed: int = 0,
) -> SynthDatabase:
    """Render one database into ``out_dir/<database>`` (replaced whole, atomically)."""
    if database not in DATABASES:
        raise UserError(f"unknown database {database!r}", fix=f"use {', '.join(DATABASES)}")
    if frames < 6 or size < 48:
        raise UserError("too small a clip", fix="use --frames >= 6 and --size >= 48")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / database
    rng = np.random.default_rng([seed, DATABASES.index(database)])
    out_dir.mkdir(parents=True, exist_ok=True)
    with synth_folder(target) as build:
        layout = KNOWN[database]
        root = build / layout.synth_frames
        clips = _render_database(database, root, subjects, clips_per_subject, frames, size, rng)
        labels = build / layout.synth_sheet if layout.synth_sheet else None
        if labels:
            write_sheet(database, clips, labels)
    moved = [
        SynthClip(**{**vars(c), "folder": target / c.folder.relative_to(build)}) for c in clips
    ]
    return SynthDatabase(database, labels and target / labels.name, target / root.name, moved)


def videos_of_test_file(test_file: str | Path) -> list[str]:
    """The ``video`` names of a challenge test jsonl, in order of first appearance."""
    rows = [(lineno, row) for lineno, row in enumerate(read_jsonl(test_file), 1) if "video" in row]
    if not rows:
        raise UserError(
            "no 'video' field in any row",
            file=test_file,
            fix="give a challenge test file (video_id, video, question, answer)",
        )
    return list(dict.fromkeys(challenge_video_name(row, test_file, n) for n, row in rows))


def synthesize_test_videos(
    videos: list[str], out_dir: str | Path, *, frames: int = 20, size: int = 128, seed: int = 0
) -> Path:
    """One unannotated clip per video of a test file (:func:`videos_of_test_file`), in
    ``out_dir/<video>/``."""
    rng = np.random.default_rng([seed, 99])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    emotions = [e for e in EMOTION_AUS if e != "others"]
    for i, video in enumerate(tqdm(videos, desc="synth test videos", unit="clip")):
        aus = EMOTION_AUS[emotions[i % len(emotions)]][0]
        clip = render_clip(FaceShape.sample(rng), aus, frames, frames // 2, size, rng)
        with synth_folder(out_dir / video) as folder:
            _write_frames(folder, [f"{n:05d}.jpg" for n in range(1, frames + 1)], clip, False)
    return out_dir


def main(argv: list[str]) -> int:
    parser = command_parser("synth", __doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", required=True, type=Path, help="folder to write the databases into"
    )
    parser.add_argument(
        "--databases",
        help="comma list of " + ", ".join(DATABASES) + " (default: all of them), or with --long "
        "of samm_lv, casme_sq (default: both)",
    )
    parser.add_argument(
        "--long",
        action="store_true",
        help="render long videos (SAMM Long Videos, CAS(ME)^2) with several micro- and "
        "macro-expressions each; --clips is then videos per subject",
    )
    parser.add_argument("--subjects", type=int, default=3, help="subjects per database")
    parser.add_argument("--clips", type=int, default=4, help="clips (videos) per subject")
    parser.add_argument(
        "--frames",
        type=int,
        help="frames per clip (default 20) or per long video (default: twice the least "
        "that holds a micro- and a macro-expression)",
    )
    parser.add_argument("--size", type=int, default=128, help="face image size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument(
        "--test-file",
        type=Path,
        nargs="*",
        default=[],
        help="challenge test jsonl: also render one unannotated clip per video "
        "into OUT/test/<video>/",
    )
    args = parser.parse_args(argv)
    if args.long:
        return _main_long(args)
    databases = args.databases or ",".join(DATABASES)
    args.frames = args.frames or 20
    tests = {test_file: videos_of_test_file(test_file) for test_file in args.test_file}
    for name in _names(databases):
        db = synthesize(name, args.out, clips_per_subject=args.clips, **_sizes(args))
        labels = f"labels {db.labels}  " if db.labels else ""
        print(f"{name}: {len(db.clips)} clips  {labels}frames {db.frames}")
    for test_file, videos in tests.items():
        folder = synthesize_test_videos(
            videos, args.out / "test", frames=args.frames, size=args.size, seed=args.seed
        )
        print(f"test videos of {test_file}: {folder}")
    return 0


def _names(databases: str) -> list[str]:
    return [d.strip() for d in databases.split(",") if d.strip()]


def _sizes(args) -> dict:
    """The size options ``synthesize`` and ``synthesize_long`` share."""
    return {"subjects": args.subjects, "frames": args.frames, "size": args.size, "seed": args.seed}


def _main_long(args) -> int:
    """``synth --long``: long-video databases."""
    from data_builders.synthetic_long import (
        LONG_DATABASES,
        long_videos_of_test_file,
        synthesize_long,
        synthesize_long_test_videos,
    )

    databases = args.databases or ("" if args.test_file else ",".join(LONG_DATABASES))
    tests = {test_file: long_videos_of_test_file(test_file) for test_file in args.test_file}
    for test_file, videos in tests.items():
        folder = synthesize_long_test_videos(
            videos, args.out / "test", frames=args.frames, size=args.size, seed=args.seed
        )
        print(f"long test videos of {test_file}: {folder}")
    for name in _names(databases):
        db = synthesize_long(name, args.out, videos_per_subject=args.clips, **_sizes(args))
        events = sum(len(v.events) for v in db.videos)
        print(
            f"{name}: {len(db.videos)} videos, {events} events  labels {db.labels}  "
            f"frames {db.frames}"
        )
    return 0
