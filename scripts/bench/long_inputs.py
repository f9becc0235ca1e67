"""Benchmark of build-inputs --mode long on one SAMM-size long video (2040x1088 grey JPEG,
200 fps, 10,000 frames by default): frames decoded against the frames the mode needs, build
time against the decode floor, and peak memory. Every figure printed is measured in this run.

The frames the mode needs are the motion grid (small, grey), the sampled frames (output size)
and the first frame once for the face search; the decode floor is the time to decode just
those, at the same reductions. Decodes are counted by wrapping ``cv2.imread``. The video is a
few distinct rendered frames hard-linked in turn under 10,000 names, so decoding costs what a
real video costs without writing 10,000 files.
Targets: decoded <= 1.05x needed, build <= 1.5x the floor, peak RSS < 400 MB.
``--flow-windows`` also cuts the video into 0.5 s windows every 0.25 s, each shown as one flow
image (``--window-input flow``), and prints only the peak memory, the same target.
Usage: python scripts/bench/long_inputs.py [--frames 10000] [--num-frames 16] [--flow-windows]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from data_builders import long_inputs
from data_builders.face import FaceShape
from data_builders.facecrop import DETECT_SIZE
from data_builders.frames import frame_files, read_frame, reduction
from data_builders.synthetic import render_clip

SHAPE, FPS, DISTINCT = (1088, 2040), 200, 24


def write_video(folder: Path, n_frames: int) -> None:
    """``n_frames`` SAMM-size grey frames: ``DISTINCT`` rendered ones, hard-linked in turn."""
    rng = np.random.default_rng(0)
    faces = render_clip(FaceShape.sample(rng), "6+12", DISTINCT, DISTINCT // 2, SHAPE[0], rng)
    folder.mkdir(parents=True)
    for n in range(1, n_frames + 1):
        path = folder / f"img{n}.jpg"
        if n <= DISTINCT:
            frame = np.full(SHAPE, 90, np.uint8)
            x0 = (SHAPE[1] - SHAPE[0]) // 2
            frame[:, x0 : x0 + SHAPE[0]] = cv2.cvtColor(faces[n - 1], cv2.COLOR_BGR2GRAY)
            cv2.imwrite(str(path), frame)
        else:
            os.link(folder / f"img{(n - 1) % DISTINCT + 1}.jpg", path)


def decode_floor(frames: dict, record: dict, params) -> tuple[int, float]:
    """(frames needed, seconds to decode just them at the builder's reductions)."""
    box = record["face_box"]
    long_side = max(box[2:]) if box else max(SHAPE)
    grid = long_inputs.motion_grid(list(frames), FPS)
    sampled = record["video"]["frame_numbers"]
    start = time.perf_counter()
    read_frame(frames[1], grey=True, reduce=reduction(max(SHAPE), DETECT_SIZE))
    for n in grid:
        read_frame(frames[n], grey=True, reduce=reduction(long_side, long_inputs.MOTION_SIZE))
    for n in sampled:
        read_frame(frames[n], reduce=reduction(long_side, params.size))
    return 1 + len(grid) + len(sampled), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--flow-windows", action="store_true")
    args = parser.parse_args()
    windows = dict(window_seconds=0.5, stride_seconds=0.25, window_input="flow")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "video"
        write_video(folder, args.frames)
        job = long_inputs.VideoJob("bench", folder, FPS, folder, 1)
        params = long_inputs.LongParams(
            "motion", args.num_frames, 448, **(windows if args.flow_windows else {})
        )
        decoded, real = [0], cv2.imread

        def counting(*a):
            decoded[0] += 1
            return real(*a)

        cv2.imread = counting
        start = time.perf_counter()
        record = long_inputs.build_video(job, params, Path(tmp) / "out")
        built = time.perf_counter() - start
        cv2.imread = real
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if args.flow_windows:
            what = f"with {len(record['windows'])} flow windows"
            print(
                f"peak memory building {args.frames} SAMM-size frames {what}: {peak:.0f} MB (< 400)"
            )
            return
        needed, floor = decode_floor(frame_files(folder), record, params)
    print(f"frames decoded / needed: {decoded[0]} / {needed} = {decoded[0] / needed:.3f} (<= 1.05)")
    print(
        f"build time / decode floor: {built:.2f} s / {floor:.2f} s = {built / floor:.2f} (<= 1.5)"
    )
    print(f"peak memory building {args.frames} SAMM-size frames: {peak:.0f} MB (< 400)")


if __name__ == "__main__":
    main()
