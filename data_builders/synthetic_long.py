"""Synthetic long videos in the SAMM Long Videos and CAS(ME)^2 layouts (``me-vqa synth --long``).

Each video is one cartoon face (:mod:`data_builders.face`) over a few hundred to a few thousand
frames showing micro-expressions (offset - onset at most 0.5 s) and macro-expressions (0.6 to
1.2 s) apart in time, alternating; the gaps hold what real long videos hold between events:
blinks (AU45, not annotated, as in the real sheets), a head turn that comes back, head jitter,
lighting drift and pixel noise. The databases are written as the real ones (layouts in
``../shared/data/SOURCES.md``): SAMM Long Videos as ``SAMM_longvideos/006_1/006_1_0001.jpg``
plus an .xlsx with 9 preamble rows (event numbers not in onset order, one apex -1); CAS(ME)^2 as
``rawpic/s15/15_0401girlcrashing/img1.jpg`` plus a header-less .xlsx (one offset written 0, as
44 real rows are).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_builders.face import FaceShape, Pose, render
from data_builders.synthetic import (
    EMOTION_AUS,
    SAMM_PREAMBLE,
    _write_frames,
    au_levels,
    intensity_curve,
    samm_notation,
    synth_folder,
)
from vqa.databases import DATABASES
from vqa.errors import UserError
from vqa.jsonl import read_jsonl
from vqa.records import challenge_video_name, parse_video_id
from vqa.taxonomy import FINE_TO_COARSE, OTHERS

LONG_DATABASES = tuple(name for name, db in DATABASES.items() if db.long and db.synth_frames)
# Seconds: (shortest, longest) offset - onset of each type, and of the gaps between events.
DURATIONS = {"micro": (0.15, 0.5), "macro": (0.6, 1.2), "gap": (0.3, 0.6)}
BLINK_SECONDS = 0.12
STIMULI = (
    ("anger", "0401girlcrashing"),
    ("disgust", "0101disgustingteeth"),
    ("happy", "0502funny"),
)
EMOTIONS = tuple(EMOTION_AUS)


@dataclass(frozen=True)
class SynthEvent:
    """Ground truth of one rendered event (frame numbers as in the file names)."""

    onset: int
    apex: int
    offset: int
    type: str
    aus: str  # CASME II notation
    emotion: str
    apex_written: bool = True  # False: the sheet says "not annotated"
    offset_written: bool = True


@dataclass
class SynthVideo:
    subject: int
    video: str
    folder: Path
    n_frames: int
    events: list[SynthEvent]  # sorted by onset


@dataclass
class SynthLongDatabase:
    name: str
    labels: Path
    frames: Path
    videos: list[SynthVideo]


def _frames_of(seconds: float, fps: int) -> int:
    return max(1, round(seconds * fps))


def minimum_frames(fps: int) -> int:
    """Frames a video needs to surely hold one micro- and one macro-expression."""
    longest = {kind: _frames_of(DURATIONS[kind][1], fps) for kind in DURATIONS}
    return 3 * longest["gap"] + longest["micro"] + longest["macro"] + 3


def plan_events(n_frames: int, fps: int, first: str, rng: np.random.Generator) -> list[SynthEvent]:
    """Alternating micro/macro events (starting with ``first``) separated by gaps, frames from 1."""
    events, kind = [], first
    start = 1 + int(rng.integers(*(_frames_of(s, fps) for s in DURATIONS["gap"])))
    while True:
        low, high = (_frames_of(s, fps) for s in DURATIONS[kind])
        if kind == "micro":
            high = math.floor(0.5 * fps)  # offset - onset <= 0.5 s x fps: micro by MEGC2021
        length = int(rng.integers(low, high + 1))
        if start + length + _frames_of(DURATIONS["gap"][0], fps) > n_frames:
            return events
        apex = start + int(rng.integers(length // 3, length // 2 + 1))
        emotion = EMOTIONS[int(rng.integers(len(EMOTIONS)))]
        variants = EMOTION_AUS[emotion]
        aus = variants[int(rng.integers(len(variants)))]
        events.append(SynthEvent(start, apex, start + length, kind, aus, emotion))
        gap = int(rng.integers(*(_frames_of(s, fps) for s in DURATIONS["gap"])))
        start += length + gap
        kind = "macro" if kind == "micro" else "micro"


def _gaps(events: list[SynthEvent], n_frames: int) -> list[tuple[int, int]]:
    """(first, last) frame of each stretch without an event."""
    edges = [0, *(x for e in events for x in (e.onset, e.offset)), n_frames + 1]
    return [(a + 1, b - 1) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a > 2]


def render_video(
    shape: FaceShape,
    events: list[SynthEvent],
    n_frames: int,
    fps: int,
    size: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """The BGR frames of one long video (frame n is element n - 1)."""
    levels: list[dict] = [{} for _ in range(n_frames)]
    for e in events:
        curve = intensity_curve(e.offset - e.onset + 1, e.apex - e.onset)
        for i, level in enumerate(curve):
            levels[e.onset - 1 + i] = au_levels(e.aus, float(level))
    turn = np.zeros(n_frames)
    blink = _frames_of(BLINK_SECONDS, fps) + 2
    for first, last in _gaps(events, n_frames):
        if last - first + 1 > blink + 2:  # a blink somewhere in the gap
            at = int(rng.integers(first, last - blink + 1))
            for i, level in enumerate(intensity_curve(blink, blink // 2)):
                levels[at - 1 + i] = {45: (float(level), float(level))}
        if rng.random() < 0.5:  # a head turn that comes back within the gap
            span = np.arange(first - 1, last)
            turn[span] = rng.uniform(-3, 3) * np.sin(np.pi * (span - span[0]) / max(len(span), 1))
    jitter = np.zeros((n_frames, 3))
    for k in range(1, n_frames):
        jitter[k] = 0.9 * jitter[k - 1] + rng.normal(0, 0.1, 3)
    gains = 1.0 + 0.02 * np.sin(np.linspace(0, 2 * np.pi * rng.uniform(0.5, 2), n_frames))
    frames = []
    for k in range(n_frames):
        pose = Pose(dx=jitter[k, 0] + turn[k], dy=jitter[k, 1], angle=0.3 * jitter[k, 2] + turn[k])
        image = render(shape, levels[k], size, replace(pose, gain=float(gains[k])))
        noisy = image.astype(np.float32) + rng.normal(0, 1.5, image.shape)
        frames.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return frames


def _layout(database: str, root: Path, subject: int, v: int) -> tuple[str, Path, callable]:
    """(video name, folder, frame file namer) of video ``v`` of ``subject``."""
    if database == "samm_lv":
        video = f"{subject:03d}_{v + 1}"
        return video, root / video, lambda n: f"{video}_{n:04d}.jpg"
    stimulus = STIMULI[v % len(STIMULI)][1] + (str(v // len(STIMULI)) if v >= len(STIMULI) else "")
    video = f"{subject}_{stimulus}"
    return video, root / f"s{subject}" / video, lambda n: f"img{n}.jpg"


def _samm_rows(videos: list[SynthVideo], rng: np.random.Generator) -> list[list]:
    rows = []
    for video in videos:
        numbers = rng.permutation(len(video.events)) + 1  # event numbers are not in onset order
        for k, (e, number) in enumerate(zip(video.events, numbers, strict=True)):
            rows.append(
                [
                    f"{video.subject:03d}",
                    f"{video.video}_{number}",
                    int(video.video.split("_")[1]),
                    e.onset,
                    e.apex if e.apex_written else -1,
                    e.offset,
                    e.offset - e.onset,
                    "Micro - 1/2" if e.type == "micro" else "Macro",
                    samm_notation(e.aus, k),
                    "Blinks" if k % 3 == 2 else None,
                ]
            )
    return rows


def _casme_sq_rows(videos: list[SynthVideo]) -> list[list]:
    rows = []
    for video in videos:
        stimulus = video.video.split("_", 1)[1]
        word = next((w for w, code in STIMULI if stimulus.startswith(code)), "happy")
        for k, e in enumerate(video.events):
            offset = e.offset if e.offset_written else 0
            coarse = FINE_TO_COARSE.get(e.emotion, OTHERS)
            rows.append(
                [
                    video.subject - 14,
                    f"{word}{1 + video.subject % 3}_{k + 1}",
                    e.onset,
                    e.apex,
                    offset,
                    e.aus,
                    coarse,
                    f"{e.type}-expression",
                    e.emotion,
                    offset - e.onset,
                    f"s{video.subject}/{video.video}",
                ]
            )
    return rows


def write_sheet(database: str, videos: list[SynthVideo], path: Path, rng) -> None:
    """The label sheet as the real database ships it (.xlsx)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    if database == "samm_lv":
        sheet.title = "FACS"
        for line in SAMM_PREAMBLE[:9]:
            sheet.append([line])
        sheet.append(
            [
                "Subject",
                "Filename",
                "Inducement Code",
                "Onset",
                "Apex",
                "Offset",
                "Duration",
                "Type",
                "Action Units",
                "Notes",
            ]
        )
        rows = _samm_rows(videos, rng)
    else:
        sheet.title = "Sheet1"
        rows = _casme_sq_rows(videos)
    for row in rows:
        sheet.append(row)
    book.save(path)


def _mark_unannotated(database: str, videos: list[SynthVideo]) -> None:
    """One event per database written as the real sheets write unknowns: SAMM apex -1,
    CAS(ME)^2 offset 0 (on a macro-expression, as in the real sheet)."""
    video = videos[0]
    if database == "samm_lv":
        video.events[0] = replace(video.events[0], apex_written=False)
        return
    k = next(i for i, e in enumerate(video.events) if e.type == "macro")
    video.events[k] = replace(video.events[k], offset_written=False)


def synthesize_long(
    database: str,
    out_dir: str | Path,
    *,
    subjects: int = 2,
    videos_per_subject: int = 1,
    frames: int | None = None,
    size: int = 64,
    seed: int = 0,
) -> SynthLongDatabase:
    """Render one long-video database into ``out_dir/<database>`` (replaced whole)."""
    if database not in LONG_DATABASES:
        raise UserError(
            f"unknown long-video database {database!r}", fix=f"use {', '.join(LONG_DATABASES)}"
        )
    fps = DATABASES[database].fps
    frames = frames or 2 * minimum_frames(fps)
    if frames < minimum_frames(fps) or size < 48:
        raise UserError(
            f"too short a {database} video",
            fix=f"use --frames >= {minimum_frames(fps)} and --size >= 48 with --long",
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 100 + LONG_DATABASES.index(database)])
    videos: list[SynthVideo] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    with synth_folder(out_dir / database) as build:
        root = build / DATABASES[database].synth_frames
        progress = tqdm(total=subjects * videos_per_subject, desc=f"synth {database}", unit="video")
        for s in range(subjects):
            subject = s + (6 if database == "samm_lv" else 15)
            shape = FaceShape.sample(rng)
            for v in range(videos_per_subject):
                video, folder, name_of = _layout(database, root, subject, v)
                first = ("micro", "macro")[(s + v) % 2]
                events = plan_events(frames, fps, first, rng)
                images = render_video(shape, events, frames, fps, size, rng)
                names = [name_of(n) for n in range(1, frames + 1)]
                _write_frames(folder, names, images, grey=database == "samm_lv")
                relative = folder.relative_to(build)
                videos.append(
                    SynthVideo(subject, video, out_dir / database / relative, frames, events)
                )
                progress.update()
        progress.close()
        _mark_unannotated(database, videos)
        write_sheet(database, videos, build / DATABASES[database].synth_sheet, rng)
    target = out_dir / database
    return SynthLongDatabase(
        database,
        target / DATABASES[database].synth_sheet,
        target / DATABASES[database].synth_frames,
        videos,
    )


def long_videos_of_test_file(test_file: str | Path) -> dict[str, int]:
    """Video name -> frame rate (of the database its ``video_id`` names) for every ``video`` of
    an ME-LVQA test jsonl, in order of first appearance."""
    videos = {}
    for lineno, row in enumerate(read_jsonl(test_file), 1):
        test = parse_video_id(str(row.get("video_id", "")))
        if test is None or test.dataset not in DATABASES or "video" not in row:
            raise UserError(
                "not an ME-LVQA test row",
                file=test_file,
                row=lineno,
                fix="give a challenge test file (video_id like samm_test_1_001_2_1, video, ...)",
            )
        videos.setdefault(challenge_video_name(row, test_file, lineno), DATABASES[test.dataset].fps)
    return videos


def synthesize_long_test_videos(
    videos: dict[str, int],
    out_dir: str | Path,
    *,
    frames: int | None = None,
    size: int = 64,
    seed=0,
) -> Path:
    """One unannotated long video per test video (see :func:`long_videos_of_test_file`), in
    ``out_dir/<video>/``, at its frame rate."""
    rng = np.random.default_rng([seed, 98])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, (video, fps) in enumerate(tqdm(videos.items(), desc="synth long test videos")):
        n_frames = frames or 2 * minimum_frames(fps)
        events = plan_events(n_frames, fps, ("micro", "macro")[i % 2], rng)
        images = render_video(FaceShape.sample(rng), events, n_frames, fps, size, rng)
        with synth_folder(out_dir / video) as folder:
            names = [f"img{n}.jpg" for n in range(1, n_frames + 1)]
            _write_frames(folder, names, images, grey=fps == DATABASES["samm_lv"].fps)
    return out_dir
