"""Which frames a clip's visual input uses, and the apex when the annotation has none."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import cv2
import numpy as np

from vqa.errors import UserError

# Apex estimation works on frames shrunk to this many pixels on the long side.
APEX_WORKING_SIZE = 64


def check_num_frames(n: int) -> None:
    if n < 2 or n % 2:
        raise UserError(
            f"--num-frames {n} is not allowed",
            fix="give an even number of at least 2 (Qwen2.5-VL pairs video frames)",
        )


def video_frames(numbers: list[int], onset: int, offset: int, n: int) -> list[int]:
    """``n`` frame numbers evenly spaced over onset..offset (existing frames), in order."""
    check_num_frames(n)
    inside = [k for k in numbers if onset <= k <= offset] or numbers
    positions = np.linspace(0, len(inside) - 1, n)
    return [inside[int(round(p))] for p in positions]


def oao_frames(onset: int, apex: int, offset: int) -> list[int]:
    return [onset, apex, offset]


def _small_grey(image: np.ndarray) -> np.ndarray:
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scale = APEX_WORKING_SIZE / max(grey.shape)
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return small.astype(np.float32)


def motion_score(onset: np.ndarray, frame: np.ndarray) -> float:
    """How much ``frame`` changed from ``onset`` where it changed most (the top 0.5% of pixels),
    once the head shift (phase correlation) and the lighting change (median) are removed."""
    (dx, dy), _ = cv2.phaseCorrelate(onset, frame)
    shift = np.float32([[1, 0, -dx], [0, 1, -dy]])
    aligned = cv2.warpAffine(frame, shift, frame.shape[::-1], borderMode=cv2.BORDER_REPLICATE)
    change = cv2.GaussianBlur(aligned, (0, 0), 1.0) - cv2.GaussianBlur(onset, (0, 0), 1.0)
    change = np.abs(change - np.median(change))
    return float(np.sort(change, axis=None)[-max(1, change.size // 200) :].mean())


def estimate_apex(numbers: Iterable[int], read: Callable[[int], np.ndarray]) -> int:
    """The frame of largest motion relative to the first one, streaming at low resolution."""
    numbers = list(numbers)
    onset = _small_grey(read(numbers[0]))
    best, best_score = numbers[0], -1.0
    for number in numbers[1:]:
        score = motion_score(onset, _small_grey(read(number)))
        if score > best_score:
            best, best_score = number, score
    return best


def timing(chosen: list[int], first: int, fps: float) -> dict:
    """Frame numbers, times from the video's first frame, and the effective rate of a sample."""
    times = [round((k - first) / fps, 4) for k in chosen]
    span = times[-1] - times[0]
    rate = (len(chosen) - 1) / span if len(chosen) > 1 and span > 0 else fps
    return {"frame_numbers": chosen, "frame_times": times, "sample_fps": round(rate, 6)}
