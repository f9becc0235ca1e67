"""``me-vqa build-inputs``: the model's visual input per clip (video, oao, flow and mixes).

For every clip of ``--clips`` (or every test video under ``--frames-root``) the needed frames
are read, cropped to the face found on the onset frame, resized to ``--size`` on the long
side and written under ``OUTDIR/clips/``; ``OUTDIR/inputs.jsonl`` lists every QA row with its
visual paths (relative to OUTDIR). A clip's images are cached under a key of its source frames
and the parameters: a rebuild decodes nothing for unchanged clips, and an interrupted build
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

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
    nearest_frame,
    read_frame,
    reduction,
)
from data_builders.long_inputs import build_long
from data_builders.sampling import (
    APEX_WORKING_SIZE,
    check_num_frames,
    estimate_apex,
    oao_frames,
    timing,
    video_frames,
)
from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.jsonl import atomic_folder, make_folder, read_jsonl, write_jsonl
from vqa.records import VISUAL_KEYS, check_test_rows

MODES = ("video", "oao", "flow", "video+flow", "oao+flow")
CACHE_VERSION = 3


@dataclass(frozen=True)
class Params:
    """Everything that changes a clip's images (part of its cache key)."""

    mode: str
    num_frames: int = 8
    size: int = 448
    flow: str = "dis"
    flow_size: int = 256
    face_crop: str | tuple = "auto"
    overlay: bool = False
    reference: str = "nose"


@dataclass
class ClipJob:
    """One clip to build: its frame folder and annotated frames (None when unknown)."""

    name: str
    folder: Path
    onset: int | None
    apex: int | None
    offset: int | None
    file: Path  # the clips.jsonl (or test file) row that named the clip, for messages
    row: int
    fps: float | None = None  # the clip's frame rate, for the true time of sampled frames


def _span(job: ClipJob, numbers: list[int]) -> tuple[int, int]:
    """Onset and offset: the annotated ones, or the first and last frame."""
    onset = numbers[0] if job.onset is None else job.onset
    offset = numbers[-1] if job.offset is None else job.offset
    return onset, offset


def _check_frame(job: ClipJob, frames: dict[int, Path], number: int) -> None:
    if number not in frames:
        near = nearest_frame(frames, number)
        raise UserError(
            f"clip {job.name}: frame {number} is missing from {job.folder}",
            file=job.file,
            row=job.row,
            fix=f"the nearest existing frame is {near}; fix the annotation or the folder",
        )


def list_frames(job: ClipJob) -> dict[int, Path]:
    """The clip's frame files, checking that the folder and its annotated frames exist."""
    frames = folder_frames(
        f"clip {job.name}", job.folder, "clips.jsonl", 1, file=job.file, row=job.row
    )
    for number in (job.onset, job.apex, job.offset):
        if number is not None:
            _check_frame(job, frames, number)
    return frames


def cache_key(job: ClipJob, frames: dict[int, Path], params: Params) -> str:
    """Hash of the source frames (name, size, mtime), the annotation and the parameters."""
    h = hashlib.sha256(
        json.dumps([CACHE_VERSION, asdict(params), job.onset, job.apex, job.offset]).encode()
    )
    return files_digest(h, frames)


class ClipFrames:
    """Decodes each needed frame of a clip once, at the largest JPEG reduction that still gives
    the output size: in colour where a picture of it is written, in grey for the flow."""

    def __init__(self, frames: dict[int, Path], box: Box | None, params: Params, colour: set[int]):
        width, height = frame_size(next(iter(frames.values())))
        long_side = max(box[2:]) if box else max(width, height)
        self.frames, self.box, self.colour_numbers = frames, box, colour
        self.colour_reduce = reduction(long_side, params.size)
        self.grey_reduce = reduction(long_side, params.flow_size)
        self.cache: dict[int, np.ndarray] = {}

    def colour(self, number: int, size: int) -> np.ndarray:
        """The frame cropped and resized to ``size`` on the long side."""
        if number not in self.cache:
            self.cache[number] = read_frame(self.frames[number], reduce=self.colour_reduce)
        return crop_and_resize(self.cache[number], self.box, size, self.colour_reduce)

    def grey(self, number: int, size: int) -> np.ndarray:
        if number in self.colour_numbers and self.colour_reduce == self.grey_reduce:
            image = self.colour(number, size)
            return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        image = read_frame(self.frames[number], grey=True, reduce=self.grey_reduce)
        return crop_and_resize(image, self.box, size, self.grey_reduce)


def _flow_image(clip: ClipFrames, onset: int, apex: int, params: Params) -> np.ndarray:
    """The rendered onset -> apex flow at ``params.size``, head motion removed."""
    first, second = clip.grey(onset, params.flow_size), clip.grey(apex, params.flow_size)
    picture = flowlib.flow_picture(first, second, params.flow, params.reference, params.overlay)
    return crop_and_resize(picture, None, params.size)


def _write(folder: Path, name: str, image: np.ndarray) -> str:
    if not cv2.imwrite(str(folder / name), image):
        raise UserError("could not write image", file=folder / name, fix="check disk space")
    return name


def _render(job: ClipJob, frames: dict[int, Path], apex: int, params: Params, tmp: Path) -> dict:
    """Write the clip's images into ``tmp``; returns the picture and video-frame file names."""
    onset, offset = _span(job, list(frames))
    is_video = params.mode.startswith("video")
    sampled = video_frames(list(frames), onset, offset, params.num_frames) if is_video else []
    oao = oao_frames(onset, apex, offset) if params.mode.startswith("oao") else []
    box = crop_box(params.face_crop, frames[onset])
    clip = ClipFrames(frames, box, params, set(sampled) | set(oao))
    frame_names = [
        _write(tmp, f"frame_{i:02d}_{n}.jpg", clip.colour(n, params.size))
        for i, n in enumerate(sampled)
    ]
    images = [
        _write(tmp, f"{role}_{n}.jpg", clip.colour(n, params.size))
        for role, n in zip(("onset", "apex", "offset"), oao, strict=False)
    ]
    if "flow" in params.mode:
        images.append(_write(tmp, "flow.png", _flow_image(clip, onset, apex, params)))
    rate = timing(sampled, sampled[0], job.fps)["sample_fps"] if sampled and job.fps else None
    return {"images": images, "frames": frame_names, "sample_fps": rate, "face_box": box}


def build_clip(job: ClipJob, params: Params, out_dir: Path) -> dict:
    """Build (or find in the cache) one clip's images; returns its record."""
    frames = list_frames(job)
    key = cache_key(job, frames, params)
    folder, record = cached(out_dir / "clips", job.name, key)
    if record:
        return record
    onset, offset = _span(job, list(frames))
    numbers = [n for n in frames if onset <= n <= offset]
    apex = job.apex
    if apex is None:
        r = reduction(max(frame_size(frames[onset])), APEX_WORKING_SIZE)
        apex = estimate_apex(numbers, lambda n: read_frame(frames[n], grey=True, reduce=r))
    with atomic_folder(folder, overwrite=True) as tmp:
        record = _render(job, frames, apex, params, tmp)
        record.update(apex=apex, apex_estimated=job.apex is None, folder=folder.name)
        (tmp / "record.json").write_text(json.dumps(record), encoding="utf-8")
    return {**record, "cached": False}


def check_clip_row(clip: dict, file: Path, row: int) -> None:
    """A clips.jsonl row build-inputs can use: its names and folder as text, its onset, apex
    and offset whole frame numbers (or null) and its fps a frame rate (or null)."""
    texts = {key: clip.get(key) for key in ("dataset", "image_id", "frames_dir")}
    texts["frames_root"] = clip.get("frames_root", "")  # may be absent: --frames-root then
    for key, value in texts.items():
        if not isinstance(value, str):
            raise UserError(
                f"row has no {key}" if value is None else f"{key} {value!r} is not text",
                file=file,
                row=row,
                fix="give the clips.jsonl written by me-vqa convert",
            )
    for key in ("onset", "apex", "offset"):
        value = clip.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise UserError(
                f"{key} {value!r} is not a frame number",
                file=file,
                row=row,
                fix="write whole frame numbers as in the frame file names (null: not annotated)",
            )
    if clip.get("fps") is not None:
        frame_rate(clip["fps"], file=file, row=row)


def clip_jobs(clips_files: list[Path], frames_root: Path | None) -> dict[tuple, ClipJob]:
    """(dataset, image_id) -> job for every clip of some clips.jsonl files."""
    jobs = {}
    numbered = [(f, n, c) for f in clips_files for n, c in enumerate(read_jsonl(f), 1)]
    for clips_file, lineno, clip in numbered:
        check_clip_row(clip, clips_file, lineno)
        root = frames_root or Path(clip.get("frames_root", ""))
        jobs[(clip["dataset"], clip["image_id"])] = ClipJob(
            name=f"{clip['dataset']}_{clip['image_id']}",
            folder=root / clip["frames_dir"],
            onset=clip.get("onset"),
            apex=clip.get("apex"),
            offset=clip.get("offset"),
            file=clips_file,
            row=lineno,
            fps=clip.get("fps"),
        )
    return jobs


def join_rows(
    qa_files: list[Path], clips_files: list[Path], frames_root: Path | None
) -> list[tuple[dict, ClipJob]]:
    """Every QA row with the clip it asks about (test rows: the folder FRAMES_ROOT/<video>)."""
    jobs = clip_jobs(clips_files, frames_root)
    joined = []
    numbered = [(f, n, row) for f in qa_files for n, row in enumerate(read_jsonl(f), 1)]
    check_test_rows(numbered)
    for qa_file, lineno, row in numbered:
        if "video" in row and "image_id" not in row:
            folder, fps = challenge_video(row, frames_root, qa_file, lineno)
            key = ("test", row["video"])
            jobs.setdefault(
                key, ClipJob(row["video"], folder, None, None, None, qa_file, lineno, fps=fps)
            )
        else:
            key = (row.get("dataset"), row.get("image_id"))
            if None in key:
                raise UserError(
                    "row has no video (test rows) nor dataset and image_id (qa rows)",
                    file=qa_file,
                    row=lineno,
                    fix="give qa.jsonl from me-vqa convert or a challenge test file",
                )
            if key not in jobs:
                raise UserError(
                    f"no clip {key[0]}/{key[1]} in the clips file",
                    file=qa_file,
                    row=lineno,
                    fix="give the clips.jsonl written with this qa.jsonl by me-vqa convert",
                )
        joined.append((row, jobs[key]))
    return joined


def build_all(jobs: list[ClipJob], params: Params, out_dir: Path, workers: int) -> dict[str, dict]:
    """Build every clip (in parallel with ``workers`` > 1); returns name -> record."""
    (out_dir / "clips").mkdir(parents=True, exist_ok=True)
    tasks = [(job, params, out_dir) for job in jobs]
    built = build_in_parallel(build_clip, tasks, workers, f"build-inputs {params.mode}", "clip")
    return {job.name: record for job, record in zip(jobs, built, strict=True)}


def input_row(row: dict, record: dict, params: Params) -> dict:
    """A QA row plus its visual input, paths relative to the inputs.jsonl folder."""
    out = {k: v for k, v in row.items() if k not in VISUAL_KEYS}
    out["mode"] = params.mode
    prefix = f"clips/{record['folder']}/"
    if record["images"]:
        out["images"] = [prefix + name for name in record["images"]]
    if record["frames"]:
        out["frames"] = [prefix + name for name in record["frames"]]
    if record["sample_fps"]:
        out["sample_fps"] = record["sample_fps"]
    out["apex_estimated"] = record["apex_estimated"]
    if "flow" in params.mode:
        out["flow_legend"] = flowlib.legend_sentence(params.overlay)
    return out


def _parser():
    parser = command_parser("build-inputs", __doc__.split("\n\n")[0])
    parser.add_argument(
        "--clips", type=Path, nargs="+", default=[], help="clips.jsonl file(s) from me-vqa convert"
    )
    parser.add_argument(
        "--qa",
        type=Path,
        nargs="+",
        required=True,
        help="qa.jsonl file(s), or challenge test files",
    )
    parser.add_argument(
        "--mode", required=True, help=f"one of {', '.join(MODES)}, or long (long videos)"
    )
    parser.add_argument(
        "--videos", type=Path, nargs="+", default=[], help="long: videos.jsonl from me-vqa convert"
    )
    parser.add_argument(
        "--sampler",
        default="motion",
        help="long: motion (frames where the face moves, the default) or uniform",
    )
    parser.add_argument(
        "--window-seconds", type=float, help="long: ask localisation questions per window"
    )
    parser.add_argument("--stride-seconds", type=float, help="long: seconds between windows")
    parser.add_argument(
        "--window-input",
        default="frames",
        help="long: a window's frames (the default) or flow: one flow image, first frame -> peak",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder for inputs.jsonl")
    parser.add_argument(
        "--num-frames", type=int, default=8, help="video frames per clip, video or window (even)"
    )
    parser.add_argument("--size", type=int, default=448, help="pixels on the long side")
    parser.add_argument("--flow", default="dis", help="farneback, dis or tvl1")
    parser.add_argument("--flow-size", type=int, default=256, help="working size of the flow")
    parser.add_argument(
        "--flow-reference",
        choices=flowlib.REFERENCES,
        default="nose",
        help="head motion measured on the nose area or the whole face (median)",
    )
    parser.add_argument("--flow-overlay", action="store_true", help="draw flow over the grey onset")
    parser.add_argument("--face-crop", default="auto", help="auto, none or x,y,w,h")
    parser.add_argument(
        "--frames-root",
        type=Path,
        help="folder of frame folders (overrides clips.jsonl; test files)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="clips (or long videos) built at a time, each in its own process",
    )
    return parser


def check_counts(args) -> None:
    """Refuse a size or worker count below 1 (both modes) before anything is read or written."""
    for option in ("size", "flow_size", "workers"):
        value = getattr(args, option)
        if value < 1:
            flag = "--" + option.replace("_", "-")
            raise UserError(f"{flag} {value} is not allowed", fix=f"give {flag} of at least 1")


def params_from(args) -> Params:
    if args.mode not in MODES:
        raise UserError(f"unknown mode {args.mode!r}", fix=f"use one of {', '.join(MODES)}, long")
    if args.mode.startswith("video"):
        check_num_frames(args.num_frames)
    if "flow" in args.mode:
        flowlib.check_method(args.flow)
    return Params(
        args.mode,
        args.num_frames,
        args.size,
        args.flow,
        args.flow_size,
        parse_face_crop(args.face_crop),
        args.flow_overlay,
        args.flow_reference,
    )


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    check_counts(args)
    if args.frames_root is not None and not args.frames_root.is_dir():
        raise UserError("frames root does not exist", file=args.frames_root, fix="check the path")
    if args.mode == "long":
        rows, line = build_long(args)
        write_jsonl(args.out / "inputs.jsonl", rows)
        print(line)
        return 0
    params = params_from(args)
    joined = join_rows(args.qa, args.clips, args.frames_root)
    jobs = list({job.name: job for _, job in joined}.values())
    for job in jobs:
        list_frames(job)  # every folder and annotated frame checked before anything is written
    make_folder(args.out)
    records = build_all(jobs, params, args.out, args.workers)
    write_jsonl(
        args.out / "inputs.jsonl", [input_row(r, records[j.name], params) for r, j in joined]
    )
    if "flow" in params.mode:
        cv2.imwrite(str(args.out / "flow_legend.png"), flowlib.legend_image())
    hits = sum(r["cached"] for r in records.values())
    estimated = sum(r["apex_estimated"] for r in records.values())
    print(
        f"build-inputs {params.mode}: {len(records)} clips ({len(records) - hits} built, "
        f"{hits} from cache, {estimated} with estimated apex), {len(joined)} rows "
        f"-> {args.out / 'inputs.jsonl'}"
    )
    warning = crop_warning(params.face_crop, [r["face_box"] for r in records.values()], "clip")
    if warning:
        print(warning)
    return 0
