"""Face crop: one box found on the onset frame and applied to every frame of the clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from data_builders.frames import frame_size, read_frame, reduction
from vqa.errors import UserError

Box = tuple[int, int, int, int]  # x, y, width, height
_CASCADE = "haarcascade_frontalface_default.xml"


def parse_face_crop(text: str) -> str | Box:
    """``auto``, ``none`` or an ``x,y,w,h`` box."""
    if text in ("auto", "none"):
        return text
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise UserError(
            f"--face-crop {text!r} is not understood", fix="use auto, none or x,y,w,h in pixels"
        ) from None
    if w <= 0 or h <= 0:
        raise UserError(
            f"--face-crop {text!r} has an empty box", fix="give a positive width and height"
        )
    return x, y, w, h


def detector() -> cv2.CascadeClassifier | None:
    """OpenCV's frontal-face detector when the installed OpenCV ships its cascade file."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    path = Path(folder or "") / _CASCADE
    if not folder or not path.is_file():
        return None
    cascade = cv2.CascadeClassifier(str(path))
    return None if cascade.empty() else cascade


def detect_face(grey: np.ndarray) -> Box | None:
    """The largest face on a grey frame, widened by 10% on each side; None when none is found."""
    cascade = detector()
    if cascade is None:
        return None
    faces = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
    if len(faces) == 0:
        return None
    x, y, w, h = (int(v) for v in max(faces, key=lambda f: f[2] * f[3]))  # numpy -> JSON-able
    pad_w, pad_h = int(0.1 * w), int(0.1 * h)
    x0, y0 = max(0, x - pad_w), max(0, y - pad_h)
    return x0, y0, min(grey.shape[1], x + w + pad_w) - x0, min(grey.shape[0], y + h + pad_h) - y0


DETECT_SIZE = 512  # the face detector looks at the onset frame shrunk to about this size


def crop_box(spec: str | Box, onset: Path) -> Box | None:
    """The box (in full-size pixels) to crop every frame of a clip with; None: the whole frame."""
    if spec == "none":
        return None
    if spec != "auto":
        return spec
    r = reduction(max(frame_size(onset)), DETECT_SIZE)
    found = detect_face(read_frame(onset, grey=True, reduce=r))
    return None if found is None else tuple(v * r for v in found)


def crop_warning(spec: str | Box, boxes: list[Box | None], unit: str) -> str | None:
    """The line telling that ``--face-crop auto`` left some clips (or videos) uncropped."""
    missing = sum(box is None for box in boxes)
    if spec != "auto" or not missing:
        return None
    if detector() is None:
        return (
            f"warning: --face-crop auto cropped no {unit}: this OpenCV has no face detector "
            "(OpenCV 5 wheels ship no Haar cascade file); give --face-crop x,y,w,h, or install "
            "opencv-python-headless<5"
        )
    return (
        f"warning: --face-crop auto found no face in {missing} {unit}(s) of {len(boxes)}; their "
        "whole frames were used (give --face-crop x,y,w,h to crop them)"
    )


def crop_and_resize(image: np.ndarray, box: Box | None, size: int, reduce: int = 1) -> np.ndarray:
    """Crop to ``box`` (full-size pixels; ``image`` decoded at 1/``reduce``) and resize so that
    the long side is ``size`` pixels."""
    if box is not None:
        x, y, w, h = (v // reduce for v in box)
        image = image[y : y + h, x : x + w]
    scale = size / max(image.shape[:2])
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)
