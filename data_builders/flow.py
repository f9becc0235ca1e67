"""Dense optical flow between two grey frames, head-motion compensation and its colour rendering.

The rendering is the usual HSV wheel: hue is the direction of motion, value its magnitude
over a robust per-clip scale. The colour legend (the wheel picture and the sentence a prompt
quotes) is produced by :func:`render` itself, so what the model is told matches what it sees.
Directions are those of the picture: "up" is towards the top of the image.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from vqa.errors import UserError

METHODS = ("farneback", "dis", "tvl1")
REFERENCES = ("nose", "face")
# the robust scale: this percentile of the magnitude maps to full brightness ...
SCALE_PERCENTILE = 99.0
# ... but never less than this many pixels, so a still face is not rendered as noise
MIN_SCALE = 0.25
# direction (degrees counter-clockwise from "right", y up) -> the name the legend uses
DIRECTIONS = {
    "right": 0,
    "up-right": 45,
    "up": 90,
    "up-left": 135,
    "left": 180,
    "down-left": 225,
    "down": 270,
    "down-right": 315,
}
# hue in degrees -> colour word; the wheel puts one of these on each direction above
HUE_NAMES = {
    0: "red",
    45: "orange",
    90: "yellow-green",
    135: "green",
    180: "cyan",
    225: "blue",
    270: "purple",
    315: "pink",
}


def has_tvl1() -> bool:
    """Whether the installed OpenCV has TV-L1 (it is in opencv-contrib only)."""
    return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


def check_method(method: str) -> None:
    """Refuse an unknown method, or TV-L1 when opencv-contrib is not installed."""
    if method not in METHODS:
        raise UserError(f"unknown flow method {method!r}", fix=f"use one of {', '.join(METHODS)}")
    if method == "tvl1" and not has_tvl1():
        raise UserError(
            "TV-L1 optical flow needs opencv-contrib, which is not installed",
            fix="pip install opencv-contrib-python-headless, or use --flow farneback or --flow dis",
        )


def compute_flow(first: np.ndarray, second: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow (H x W x 2, pixels, x right and y down) from grey ``first`` to ``second``."""
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(first, second, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(
            first, second, None
        )
    check_method(method)
    return cv2.optflow.DualTVL1OpticalFlow_create().calc(first, second, None)


def reference_mask(shape: tuple[int, ...], reference: str) -> np.ndarray:
    """Where head motion is measured: the nose area (centre of the face crop) or the whole face."""
    height, width = shape[:2]
    mask = np.zeros((height, width), bool)
    if reference == "face":
        mask[:] = True
    else:  # nose: the middle fifth across, from just below the eyes to above the mouth
        mask[int(0.40 * height) : int(0.65 * height), int(0.40 * width) : int(0.60 * width)] = True
    return mask


def compensate(flow: np.ndarray, reference: str = "nose") -> np.ndarray:
    """Remove head motion: subtract the median flow of the stable reference region."""
    mask = reference_mask(flow.shape, reference)
    head = np.median(flow[mask], axis=0)
    return flow - head.astype(flow.dtype)


def _polar(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude and direction in degrees counter-clockwise from right with y pointing up."""
    magnitude, angle = cv2.cartToPolar(flow[..., 0], -flow[..., 1], angleInDegrees=True)
    return magnitude, angle


def magnitude(flow: np.ndarray) -> np.ndarray:
    """Each pixel's flow magnitude."""
    return _polar(flow)[0]


def magnitude_scale(magnitudes: np.ndarray) -> float:
    """The magnitude shown at full brightness, given the magnitudes shown at that scale (their
    array is reordered in place, not copied)."""
    return max(float(np.percentile(magnitudes, SCALE_PERCENTILE, overwrite_input=True)), MIN_SCALE)


def robust_scale(flow: np.ndarray) -> float:
    """The magnitude shown at full brightness for this clip."""
    return magnitude_scale(magnitude(flow))


def render(
    flow: np.ndarray, background: np.ndarray | None = None, scale: float | None = None
) -> np.ndarray:
    """BGR picture of ``flow``: hue = direction, brightness (or opacity on a background) = size."""
    magnitude, angle = _polar(flow)
    strength = np.clip(magnitude / (scale or robust_scale(flow)), 0.0, 1.0)
    hsv = np.empty((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = np.round(angle / 2.0).astype(np.uint8) % 180
    hsv[..., 1] = 255
    if background is None:
        hsv[..., 2] = np.round(strength * 255).astype(np.uint8)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    hsv[..., 2] = 255
    colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR).astype(np.float32)
    grey = cv2.cvtColor(background, cv2.COLOR_GRAY2BGR).astype(np.float32)
    alpha = strength[..., None]
    return np.round(grey * (1 - alpha) + colour * alpha).astype(np.uint8)


def flow_picture(
    first: np.ndarray,
    second: np.ndarray,
    method: str = "dis",
    reference: str = "nose",
    overlay: bool = False,
) -> np.ndarray:
    """The rendered flow from grey ``first`` to ``second``, head motion removed (drawn over
    ``first`` with ``overlay``)."""
    return render(head_free_flow(first, second, method, reference), first if overlay else None)


def head_free_flow(
    first: np.ndarray, second: np.ndarray, method: str = "dis", reference: str = "nose"
) -> np.ndarray:
    """Dense flow from grey ``first`` to ``second`` with head motion removed."""
    return compensate(compute_flow(first, second, method), reference)


def colour_name(bgr: np.ndarray) -> str:
    """The legend's word for a rendered colour (nearest named hue)."""
    pixel = np.asarray(bgr, np.uint8).reshape(1, 1, 3)
    hue = 2.0 * float(cv2.cvtColor(pixel, cv2.COLOR_BGR2HSV)[0, 0, 0])
    nearest = min(HUE_NAMES, key=lambda h: min(abs(hue - h), 360 - abs(hue - h)))
    return HUE_NAMES[nearest]


def direction_colour(degrees: float) -> np.ndarray:
    """The BGR colour :func:`render` gives a strong motion in this direction."""
    rad = math.radians(degrees)
    flow = np.array([[[math.cos(rad), -math.sin(rad)]]], np.float32)
    return render(flow, scale=1.0)[0, 0]


def legend() -> dict[str, str]:
    """Direction -> colour word, read back from :func:`render`."""
    return {name: colour_name(direction_colour(deg)) for name, deg in DIRECTIONS.items()}


def legend_sentence(overlay: bool = False) -> str:
    """How to read the flow image, for the prompt."""
    pairs = ", ".join(f"{colour} = {direction}" for direction, colour in legend().items())
    strength = (
        "the stronger the colour over the grey face, the larger the motion"
        if overlay
        else "brighter means larger motion, black means no motion"
    )
    return f"colour shows the direction of motion ({pairs}); {strength}; head motion is removed."


def legend_image(size: int = 256) -> np.ndarray:
    """The labelled colour wheel drawn by :func:`render` (pixels moving away from the centre)."""
    margin = size // 6
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    centre = (size - 1) / 2
    flow = np.dstack([xs - centre, ys - centre])
    radius = size / 2 - margin
    flow[np.hypot(xs - centre, ys - centre) > radius] = 0
    wheel = render(flow, scale=radius)
    for name, deg in DIRECTIONS.items():
        if "-" in name:
            continue
        rad = math.radians(deg)
        x = int(centre + (radius + margin / 2) * math.cos(rad))
        y = int(centre - (radius + margin / 2) * math.sin(rad))
        (w, h), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        org = (min(max(x - w // 2, 0), size - w), min(max(y + h // 2, h), size - 1))
        cv2.putText(
            wheel, name, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA
        )
    return wheel
