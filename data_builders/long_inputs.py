"""``build-inputs --mode long``: the frames a model sees of a long video, under a budget.

A micro-expression lasts under half a second, so frames spread evenly over minutes of video
rarely land on one. The ``motion`` sampler (the default) first draws a cheap motion curve:
every frame of a 40 ms grid, decoded small and grey and cropped to the face, is compared with
the frames 0.2 s and 0.5 s before and after it (head shift removed by phase correlation, as
the apex estimate of short clips does); a frame that differs from both sides is the top of a
change that comes and goes. The strongest such peaks get a frame each (up to three quarters
of ``--num-frames``); the rest fill the widest gaps, so the whole video stays in view. The
``uniform`` sampler spreads the frames evenly (the plain baseline).

With ``--window-seconds W --stride-seconds S`` the localisation questions are asked once per
window of W seconds (starting every S seconds, the last one ending on the last frame), each
with its own frames and its ``frame_offset``: the window's answer counts frames from 1 at the
window's first frame, and :func:`vqa.lvqa.merge_windows` maps the answers back to the video
and joins them before scoring. With ``--window-input flow`` a window is shown as one optical-flow
image instead of its frames: from its first frame to the frame of the window that differs most
from it (the window's onset -> peak, as the short clips' onset -> apex flow). Every other
question sees the whole video.

Every sample records its frames' numbers and times and the effective rate of its frames
(``sample_fps``), which the model's time encoding is given. Only the sampled frames (at the
output size) and the motion grid (small) are decoded; the face is found once per video; each
video's frames are cached under a key of its files and the parameters, so a rebuild decodes
nothing for unchanged videos and a killed build resumes. ``--workers`` builds several videos at
a time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_builders import flow as flowlib
from data_builders.facecrop import Box, crop_and_resize, crop_box, crop_warning, parse_face_crop
from data_builders.frames import (
    build_in_parallel,
    cached,
    challenge_video,
    files_digest,
    folder_frames,
    frame_rate,
    frame_size,
    read_frame,
    reduction,
)
from data_builders.sampling import check_num_frames, motion_score, timing, video_frames
from vqa import lvqa
from vqa.errors import UserError
from vqa.jsonl import atomic_folder, make_folder, read_jsonl
from vqa.question_types import question_type
from vqa.records import (
    OFFSET_KEY,
    VIDEO_ANSWER_KEY,
    VISUAL_KEYS,
    WINDOW_KEY,
    check_test_rows,
    parse_video_id,
)

SAMPLERS = ("motion", "uniform")
WINDOW_INPUTS = ("frames", "flow")  # what a localisation window shows the model
CACHE_VERSION = 2  # 2: whole-video times from the first frame with flow windows
MOTION_STEP_SECONDS = 0.04  # the motion grid: a frame every 40 ms (8 at 200 fps, 1 at 30 fps)
MOTION_SIZE = 64  # pixels on the long side of the face in the motion grid
MOTION_SCALES_SECONDS = (0.2, 0.5, 1.0)  # a change is compared with the face this long before/after
PEAK_SHARE = 0.75  # at most this share of the budget goes to motion peaks


@dataclass(frozen=True)
class LongParams:
    """Everything that changes a long video's samples (part of its cache key)."""

    sampler: str = "motion"
    num_frames: int = 16
    size: int = 448
    window_seconds: float | None = None
    stride_seconds: float | None = None
    face_crop: str | tuple = "auto"
    window_input: str = "frames"
    flow: str = "dis"  # the flow windows: method, working size, head-motion reference, overlay
    flow_size: int = 256
    flow_reference: str = "nose"
    flow_overlay: bool = False


@dataclass
class VideoJob:
    """One long video to build: its frame folder and frame rate."""

    name: str
    folder: Path
    fps: float
    file: Path  # the row that named the video, for messages
    row: int


# ---------------------------------------------------------------- choosing frames


def motion_grid(numbers: list[int], fps: float) -> list[int]:
    """The frames of the motion curve: every 40 ms of video (and the last frame)."""
    step = max(1, round(MOTION_STEP_SECONDS * fps))
    return sorted({*numbers[::step], numbers[-1]})


def motion_curve(faces: list[np.ndarray], fps: float, step_frames: float) -> np.ndarray:
    """Per grid frame, how far it differs from the face both before and after it (the
    largest over the scales), head shift removed; each pair of frames is compared once."""
    curve = np.zeros(len(faces))
    for seconds in MOTION_SCALES_SECONDS:
        lag = max(1, round(seconds * fps / step_frames))
        change = [motion_score(faces[i], faces[i + lag]) for i in range(len(faces) - lag)]
        for i in range(lag, len(faces) - lag):  # both sides needed: no false peaks at the ends
            curve[i] = max(curve[i], min(change[i - lag], change[i]))
    return curve


def peaks(curve: np.ndarray, radius: int) -> list[int]:
    """Indices of the curve's local maxima (within ``radius``), strongest first."""
    found = [
        i
        for i, value in enumerate(curve)
        if value > 0 and value == curve[max(0, i - radius) : i + radius + 1].max()
    ]
    return sorted(found, key=lambda i: (-curve[i], i))


def fill_gaps(chosen: set[int], numbers: list[int], n: int) -> list[int]:
    """``chosen`` plus, one at a time, the frame farthest from every chosen one (the middle
    frame first when none is), until there are ``n``."""
    pool = np.asarray(numbers)
    picked = sorted(chosen) or [numbers[len(numbers) // 2]]
    distance = np.abs(pool[:, None] - np.asarray(picked)[None]).min(axis=1)
    while len(picked) < min(n, len(numbers)):
        k = int(pool[np.argmax(distance)])  # the earliest of equally far frames
        picked.append(k)
        distance = np.minimum(distance, np.abs(pool - k))
    return sorted(picked)


def motion_frames(numbers: list[int], grid: list[int], curve: np.ndarray, n: int, fps: float):
    """The motion-aware choice: a frame on each of the strongest peaks, then the widest gaps."""
    inside = [i for i, k in enumerate(grid) if numbers[0] <= k <= numbers[-1]]
    local = curve[inside]
    radius = max(1, round(MOTION_SCALES_SECONDS[0] * fps / max(1, grid[1] - grid[0])))
    top = peaks(local, radius)[: int(PEAK_SHARE * n)]
    return fill_gaps({grid[inside[i]] for i in top}, numbers, n)


def windows(numbers: list[int], fps: float, seconds: float, stride: float) -> list[tuple[int, int]]:
    """(first, last) frame of every window: ``seconds`` long, one every ``stride`` seconds, the
    last one ending on the video's last frame."""
    length, step = max(1, round(seconds * fps)), max(1, round(stride * fps))
    first, last = numbers[0], numbers[-1]
    starts = list(range(first, max(first, last - length + 1) + 1, step))
    if starts[-1] + length - 1 < last:
        starts.append(last - length + 1)
    return [(s, min(last, s + length - 1)) for s in starts]


# ---------------------------------------------------------------- one video


def list_video(job: VideoJob) -> dict[int, Path]:
    """The video's frame files (at least two), checking that its folder exists."""
    return folder_frames(
        f"video {job.name}", job.folder, "videos.jsonl", 2, file=job.file, row=job.row
    )


def check_windows(job: VideoJob, frames: dict[int, Path], params: LongParams) -> None:
    """Every window holds a frame (two for its flow), before anything is built."""
    if not params.window_seconds:
        return
    numbers = list(frames)
    need = 2 if params.window_input == "flow" else 1
    for first, last in windows(numbers, job.fps, params.window_seconds, params.stride_seconds):
        held = sum(first <= k <= last for k in numbers)
        if held < need:
            raise UserError(
                f"video {job.name}: its window of frames {first}-{last} holds {held} frame(s) of "
                f"{job.folder}, a window needs {need}",
                file=job.file,
                row=job.row,
                fix="give a longer --window-seconds (or the missing frames)",
            )


def cache_key(job: VideoJob, frames: dict[int, Path], params: LongParams) -> str:
    """Hash of the frame files (name, size, mtime), the frame rate and the parameters."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, asdict(params), job.fps]).encode())
    return files_digest(h, frames)


class VideoFrames:
    """Decodes frames of one video cropped to its face box: small grey ones for the motion
    curve, output-size colour ones for the model, grey ones at the flow's working size for the
    flow windows."""

    def __init__(self, frames: dict[int, Path], box: Box | None, params: LongParams):
        long_side = max(box[2:]) if box else max(frame_size(next(iter(frames.values()))))
        self.frames, self.box, self.size, self.params = frames, box, params.size, params
        self.colour_reduce = reduction(long_side, params.size)
        self.grey_reduce = reduction(long_side, MOTION_SIZE)
        self.flow_reduce = reduction(long_side, params.flow_size)
        self.smalls: dict[int, np.ndarray] = {}  # each decoded once (curve and window grids)

    def small(self, number: int) -> np.ndarray:
        if number not in self.smalls:
            image = read_frame(self.frames[number], grey=True, reduce=self.grey_reduce)
            face = crop_and_resize(image, self.box, MOTION_SIZE, self.grey_reduce)
            self.smalls[number] = face.astype(np.float32)
        return self.smalls[number]

    def picture(self, number: int) -> np.ndarray:
        image = read_frame(self.frames[number], reduce=self.colour_reduce)
        return crop_and_resize(image, self.box, self.size, self.colour_reduce)

    def grey(self, number: int) -> np.ndarray:
        """The frame in grey at the flow's working size."""
        image = read_frame(self.frames[number], grey=True, reduce=self.flow_reduce)
        return crop_and_resize(image, self.box, self.params.flow_size, self.flow_reduce)

    def flow(self, first: int, second: int) -> np.ndarray:
        """The flow from frame ``first`` to ``second`` at the working size, head motion removed."""
        p = self.params
        return flowlib.head_free_flow(self.grey(first), self.grey(second), p.flow, p.flow_reference)

    def flow_picture(self, flow: np.ndarray, first: int, scale: float) -> np.ndarray:
        """``flow`` rendered at ``scale`` (over the grey ``first`` frame with the overlay), at
        the output size."""
        background = self.grey(first) if self.params.flow_overlay else None
        picture = flowlib.render(flow, background, scale=scale)
        return crop_and_resize(picture, None, self.size)


def choose(numbers, params: LongParams, fps: float, motion) -> list[int]:
    """The sample's frames by the chosen sampler (``motion``: the grid and its curve)."""
    if params.sampler == "uniform":
        return sorted(set(video_frames(numbers, numbers[0], numbers[-1], params.num_frames)))
    return motion_frames(numbers, *motion, params.num_frames, fps)


def window_peak(numbers: list[int], video: VideoFrames, fps: float) -> int:
    """The frame of a window's motion grid that differs most from the window's first frame."""
    grid = motion_grid(numbers, fps)
    start = video.small(grid[0])
    return max(grid[1:], key=lambda k: motion_score(start, video.small(k)))


def plan_video(frames: dict[int, Path], video: VideoFrames, params: LongParams, fps: float):
    """The whole-video sample and the window samples (frame numbers only, nothing written)."""
    numbers = list(frames)
    motion = None
    if params.sampler == "motion":
        grid = motion_grid(numbers, fps)
        faces = [video.small(k) for k in tqdm(grid, desc="motion", unit="frame", leave=False)]
        motion = (grid, motion_curve(faces, fps, grid[1] - grid[0] if len(grid) > 1 else 1))
    whole = choose(numbers, params, fps, motion)
    spans = []
    if params.window_seconds:
        spans = windows(numbers, fps, params.window_seconds, params.stride_seconds)
    cut = []
    for span in spans:
        inside = [k for k in numbers if span[0] <= k <= span[1]]
        if params.window_input == "flow":
            cut.append((span, [inside[0], window_peak(inside, video, fps)]))
        else:
            cut.append((span, choose(inside, params, fps, motion)))
    return whole, cut


def build_video(job: VideoJob, params: LongParams, out_dir: Path) -> dict:
    """Build (or find in the cache) one long video's samples; returns its record."""
    frames = list_video(job)
    key = cache_key(job, frames, params)
    folder, record = cached(out_dir / "videos", job.name, key)
    if record:
        return record
    first = next(iter(frames))
    box = crop_box(params.face_crop, frames[first])
    video = VideoFrames(frames, box, params)
    whole, cut = plan_video(frames, video, params, job.fps)
    make_folder(folder.parent)
    flow = params.window_input == "flow"
    with atomic_folder(folder, overwrite=True) as tmp:
        shown = {*whole, *(() if flow else (k for _, chosen in cut for k in chosen))}
        for number in sorted(shown):
            _write(tmp / f"frame_{number}.jpg", video.picture(number))
        samples = [{WINDOW_KEY: list(s), **timing(chosen, first, job.fps)} for s, chosen in cut]
        if flow:
            write_flow_windows(video, samples, tmp)
        record = {
            "folder": folder.name,
            "face_box": box,
            "video": timing(whole, first, job.fps),
            "windows": samples,
        }
        (tmp / "record.json").write_text(json.dumps(record), encoding="utf-8")
    return {**record, "cached": False}


def write_flow_windows(video: VideoFrames, samples: list[dict], tmp: Path) -> None:
    """Each window sample's flow image (between its two frames), drawn at one brightness scale
    for the whole video so that a still window stays dark. The flows wait in ``tmp`` while the
    scale is found: memory holds one magnitude per pixel, not every window's flow."""
    magnitudes = None
    for k, sample in enumerate(tqdm(samples, desc="flow windows", unit="window", leave=False)):
        motion = video.flow(*sample["frame_numbers"])
        if magnitudes is None:
            magnitudes = np.empty((len(samples), *motion.shape[:2]), np.float32)
        magnitudes[k] = flowlib.magnitude(motion)
        np.save(tmp / f"flow_{k}.npy", motion)
    scale = flowlib.magnitude_scale(magnitudes)
    del magnitudes
    for k, sample in enumerate(samples):
        waiting = tmp / f"flow_{k}.npy"
        motion = np.load(waiting)
        waiting.unlink()
        sample["images"] = ["flow_{}-{}.png".format(*sample["frame_numbers"])]
        sample["flow_legend"] = flowlib.legend_sentence(video.params.flow_overlay)
        picture = video.flow_picture(motion, sample["frame_numbers"][0], scale)
        _write(tmp / sample["images"][0], picture)


def _write(path: Path, image: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(path), image):
        raise UserError("could not write image", file=path, fix="check disk space")


# ---------------------------------------------------------------- rows and command


def video_jobs(rows: list[tuple[Path, int, dict]], videos_files: list[Path], frames_root):
    """Row index -> job: training rows by (dataset, video) of videos.jsonl, challenge test rows
    (``video_id``) by the folder FRAMES_ROOT/<video> at their database's frame rate."""
    known = {}
    for file in videos_files:
        for lineno, v in enumerate(read_jsonl(file), 1):
            root = frames_root or Path(v.get("frames_root", ""))
            name = f"{v['dataset']}_{v['video']}"
            fps = frame_rate(v.get("fps"), file=file, row=lineno)
            known[v["dataset"], v["video"]] = VideoJob(
                name, root / v["frames_dir"], fps, file, lineno
            )
    check_test_rows(rows)
    jobs = []
    for file, lineno, row in rows:
        test = parse_video_id(str(row["video_id"])) if "video_id" in row else None
        if test:
            folder, fps = challenge_video(row, frames_root, file, lineno)
            if fps is None:
                raise UserError(f"unknown database {test.dataset!r}", file=file, row=lineno)
            key = ("test", row["video"])
            known.setdefault(key, VideoJob(row["video"], folder, fps, file, lineno))
        else:
            key = (row.get("dataset"), row.get("video"))
            if key not in known:
                raise UserError(
                    f"no video {key[0]}/{key[1]} in the videos file",
                    file=file,
                    row=lineno,
                    fix="give --videos the videos.jsonl written with this lvqa.jsonl by convert",
                )
        jobs.append(known[key])
    return jobs


def sample_keys(prefix: str, sample: dict) -> dict:
    """An input row's visual keys for one sample of the video's record."""
    keys = {k: v for k, v in sample.items() if k in VISUAL_KEYS}
    if "images" in sample:  # a flow window: the image only, its two frames recorded
        keys["images"] = [prefix + name for name in sample["images"]]
    else:
        keys["frames"] = [f"{prefix}frame_{k}.jpg" for k in sample["frame_numbers"]]
    if WINDOW_KEY in sample:
        keys[OFFSET_KEY] = sample[WINDOW_KEY][0] - 1
    return keys


def input_rows(row: dict, record: dict) -> list[dict]:
    """One LVQA row as input rows: the whole-video sample, or per window for localisation
    questions when the video was cut into windows (answers in window frames)."""
    base = {k: v for k, v in row.items() if k not in VISUAL_KEYS}
    base["mode"] = "long"
    prefix = f"videos/{record['folder']}/"
    if question_type(row["question"]) not in lvqa.SPOT_TYPES or not record["windows"]:
        return [{**base, **sample_keys(prefix, record["video"])}]
    out = []
    for sample in record["windows"]:
        keys = sample_keys(prefix, sample)
        answer = row.get("answer")
        if answer:
            keys[VIDEO_ANSWER_KEY] = answer
            answer = lvqa.window_answer(answer, *sample[WINDOW_KEY])
        out.append({**base, "answer": answer, **keys} if "answer" in row else {**base, **keys})
    return out


def params_from(args) -> LongParams:
    """The long-video parameters of ``build-inputs --mode long``, checked."""
    if args.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {args.sampler!r}", fix=f"use {', '.join(SAMPLERS)}")
    check_num_frames(args.num_frames)
    if args.window_input not in WINDOW_INPUTS:
        raise UserError(
            f"unknown window input {args.window_input!r}", fix=f"use {', '.join(WINDOW_INPUTS)}"
        )
    if (args.window_seconds is None) != (args.stride_seconds is None):
        raise UserError(
            "--window-seconds and --stride-seconds go together", fix="give both or neither"
        )
    if args.window_input != "frames" and args.window_seconds is None:
        raise UserError(
            f"--window-input {args.window_input} needs windows", fix="give --window-seconds too"
        )
    if args.window_seconds is not None and not 0 < args.stride_seconds <= args.window_seconds:
        raise UserError(
            f"--stride-seconds {args.stride_seconds} does not fit --window-seconds "
            f"{args.window_seconds}",
            fix="give 0 < stride <= window so that the windows cover the video",
        )
    flow = {}
    if args.window_input == "flow":  # the flow options change nothing else (nor the cache key)
        flowlib.check_method(args.flow)
        flow = {
            "flow": args.flow,
            "flow_size": args.flow_size,
            "flow_reference": args.flow_reference,
            "flow_overlay": args.flow_overlay,
        }
    return LongParams(
        args.sampler,
        args.num_frames,
        args.size,
        args.window_seconds,
        args.stride_seconds,
        parse_face_crop(args.face_crop),
        args.window_input,
        **flow,
    )


def build_long(args) -> tuple[list[dict], str]:
    """Every row of ``args.qa`` as long-video input rows; returns them and a summary line."""
    params = params_from(args)
    numbered = [(f, n, row) for f in args.qa for n, row in enumerate(read_jsonl(f), 1)]
    jobs = video_jobs(numbered, args.videos, args.frames_root)
    unique = list({job.name: job for job in jobs}.values())
    for job in unique:  # every folder and its windows checked before anything is written
        check_windows(job, list_video(job), params)
    tasks = [(job, params, args.out) for job in unique]
    desc = f"build-inputs long ({params.sampler})"
    built = build_in_parallel(build_video, tasks, args.workers, desc, "video")
    records = {job.name: record for job, record in zip(unique, built, strict=True)}
    rows = [r for (_, _, row), job in zip(numbered, jobs, strict=True)
            for r in input_rows(row, records[job.name])]  # fmt: skip
    hits = sum(r["cached"] for r in records.values())
    line = (
        f"build-inputs long: {len(records)} videos ({len(records) - hits} built, {hits} from "
        f"cache), {len(numbered)} questions -> {len(rows)} rows -> {args.out / 'inputs.jsonl'}"
    )
    boxes = [r["face_box"] for r in records.values()]
    warning = crop_warning(params.face_crop, boxes, "video")
    return rows, line + (f"\n{warning}" if warning else "")
