"""Benchmark of build-inputs: per-clip time of oao and flow against the decode floor, and peak
memory, on synthetic clips at SAMM size (2040x1088 greyscale JPEG) and CASME II size (640x480).

The decode floor is the time to just decode the frames a mode needs (oao: onset, apex, offset
in colour; flow: onset and apex in grey). Every figure printed is measured in this run.
Targets: oao <= 1.3x the floor, flow <= 3x the floor, peak RSS < 600 MB for 100 SAMM-size
clips with 2 workers. Usage: python scripts/bench/inputs.py [--clips 6] [--memory-clips 100]
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

from data_builders.face import FaceShape
from data_builders.frames import read_frame
from data_builders.inputs import ClipJob, Params, build_all, build_clip
from data_builders.synthetic import render_clip

SIZES = {"SAMM 2040x1088 grey": ((1088, 2040), True), "CASME II 640x480": ((480, 640), False)}
FRAMES = 12
ONSET, APEX, OFFSET = 0, 5, FRAMES - 1


def write_clip(folder: Path, shape: tuple[int, int], grey: bool, seed: int) -> ClipJob:
    """A synthetic clip, its face centred in a frame of ``shape``."""
    rng = np.random.default_rng(seed)
    faces = render_clip(FaceShape.sample(rng), "6+12", FRAMES, APEX, min(shape), rng)
    folder.mkdir(parents=True)
    for n, face in enumerate(faces):
        frame = np.full((*shape, 3), 90, np.uint8)
        x0 = (shape[1] - face.shape[1]) // 2
        frame[:, x0 : x0 + face.shape[1]] = face
        cv2.imwrite(
            str(folder / f"{n:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if grey else frame
        )
    return ClipJob(folder.name, folder, ONSET, APEX, OFFSET, folder, 1)


def floor(job: ClipJob, mode: str) -> float:
    """Seconds to only decode the frames ``mode`` needs."""
    start = time.perf_counter()
    if mode == "oao":
        for n in (ONSET, APEX, OFFSET):
            read_frame(job.folder / f"{n:05d}.jpg")
    else:
        for n in (ONSET, APEX):
            read_frame(job.folder / f"{n:05d}.jpg", grey=True)
    return time.perf_counter() - start


def per_clip(jobs: list[ClipJob], mode: str, out: Path) -> tuple[float, float]:
    """(build seconds, floor seconds) per clip, median over the clips."""
    params = Params(mode, face_crop="none")
    builds, floors = [], []
    for job in jobs:
        floors.append(floor(job, mode))
        start = time.perf_counter()
        build_clip(job, params, out)
        builds.append(time.perf_counter() - start)
    return float(np.median(builds)), float(np.median(floors))


def peak_memory(job: ClipJob, n_clips: int, tmp: Path) -> float:
    """Peak RSS in MB (this process + the largest worker) building n_clips SAMM-size clips."""
    jobs = []
    for k in range(n_clips):  # hard links: 100 clips without writing 100 clips of frames
        folder = tmp / "many" / f"clip{k:03d}"
        folder.mkdir(parents=True)
        for n in (ONSET, APEX, OFFSET):
            os.link(job.folder / f"{n:05d}.jpg", folder / f"{n:05d}.jpg")
        jobs.append(ClipJob(folder.name, folder, ONSET, APEX, OFFSET, folder, 1))
    (tmp / "many-out" / "clips").mkdir(parents=True)
    build_all(jobs, Params("oao+flow", face_crop="none"), tmp / "many-out", workers=2)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=6, help="clips per size")
    parser.add_argument("--memory-clips", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("| frames | mode | build ms/clip | decode floor ms/clip | ratio | target |")
        print("|---|---|---|---|---|---|")
        for label, (shape, grey) in SIZES.items():
            jobs = [
                write_clip(tmp / label[:4] / f"c{k}", shape, grey, k) for k in range(args.clips)
            ]
            for mode, target in (("oao", 1.3), ("flow", 3.0)):
                (tmp / f"out-{label[:4]}-{mode}" / "clips").mkdir(parents=True)
                build, base = per_clip(jobs, mode, tmp / f"out-{label[:4]}-{mode}")
                print(
                    f"| {label} | {mode} | {build * 1e3:.1f} | {base * 1e3:.1f} | "
                    f"{build / base:.2f}x | <= {target}x |"
                )
        samm = write_clip(tmp / "memory-source", SIZES["SAMM 2040x1088 grey"][0], True, 0)
        mb = peak_memory(samm, args.memory_clips, tmp)
        print(
            f"\npeak RSS building {args.memory_clips} SAMM-size oao+flow clips with 2 workers: "
            f"{mb:.0f} MB (this process + the largest worker; target < 600 MB)"
        )


if __name__ == "__main__":
    main()
