"""A cartoon face drawn with OpenCV whose features move with FACS action units.

Geometry is in face units (fractions of the image size, origin at the face centre, y down).
"Left" and "right" are the SUBJECT's, as in FACS: the subject's left is the image's right,
so a feature on the subject's left has x > 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIDES = {"L": 1.0, "R": -1.0}  # subject side -> sign of x in the image
_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_DARK = (40, 40, 55)

# AU number -> (subject-left intensity, subject-right intensity), each in [0, 1]
AuLevels = dict[int, tuple[float, float]]


@dataclass(frozen=True)
class FaceShape:
    """Per-subject proportions and colours (face units and BGR)."""

    head_w: float
    head_h: float
    eye_dx: float
    eye_y: float
    eye_w: float
    eye_h: float
    brow_gap: float
    nose_y: float
    mouth_y: float
    mouth_w: float
    lip: float
    skin: tuple[int, int, int]
    background: int

    @classmethod
    def sample(cls, rng: np.random.Generator) -> FaceShape:
        """A random but plausible face."""
        u = rng.uniform
        skin = tuple(int(c) for c in np.array([150, 175, 205]) * u(0.75, 1.05) + u(-10, 10, 3))
        return cls(
            head_w=u(0.33, 0.38),
            head_h=u(0.42, 0.46),
            eye_dx=u(0.13, 0.16),
            eye_y=u(-0.09, -0.06),
            eye_w=u(0.055, 0.068),
            eye_h=u(0.026, 0.032),
            brow_gap=u(0.06, 0.075),
            nose_y=u(0.06, 0.08),
            mouth_y=u(0.18, 0.21),
            mouth_w=u(0.095, 0.12),
            lip=u(0.018, 0.024),
            skin=skin,
            background=int(u(60, 110)),
        )


@dataclass(frozen=True)
class Pose:
    """Head position of one frame: shift in pixels, rotation in degrees, brightness gain."""

    dx: float = 0.0
    dy: float = 0.0
    angle: float = 0.0
    gain: float = 1.0


def _level(levels: AuLevels, au: int, sign: float) -> float:
    left, right = levels.get(au, (0.0, 0.0))
    return left if sign > 0 else right


def _both(levels: AuLevels, au: int) -> float:
    return float(np.mean(levels.get(au, (0.0, 0.0))))


def brow_points(s: FaceShape, lv: AuLevels, sign: float) -> np.ndarray:
    """Inner, middle and outer brow points of one side."""
    a1, a2, a4 = (_level(lv, au, sign) for au in (1, 2, 4))
    a9 = _level(lv, 9, sign)
    y0 = s.eye_y - s.brow_gap
    xs = np.array([s.eye_dx - 0.055, s.eye_dx, s.eye_dx + 0.06]) * sign
    ys = np.array([y0, y0 - 0.012, y0 + 0.004])
    ys += -np.array([0.05, 0.025, 0.0]) * a1 - np.array([0.0, 0.03, 0.05]) * a2
    ys += np.array([0.05, 0.035, 0.02]) * a4 + 0.015 * a9
    xs[0] -= sign * 0.03 * a4
    return np.stack([xs, ys], axis=1)


def eye_lids(s: FaceShape, lv: AuLevels, sign: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid curves of one eye (7 points each, outer corners shared)."""
    a5, a6, a7, a45 = (_level(lv, au, sign) for au in (5, 6, 7, 45))
    opening = 1 - 0.95 * a45  # a blink closes both lids
    up = s.eye_h * (1 + 0.9 * a5 - 0.3 * a7 - 0.2 * a6) * opening
    down = s.eye_h * (0.8 - 0.55 * a7 - 0.45 * a6) * opening
    t = np.linspace(-1, 1, 7)
    xs = sign * s.eye_dx + t * s.eye_w
    bulge = np.sqrt(1 - t**2)
    return np.stack([xs, s.eye_y - up * bulge], 1), np.stack([xs, s.eye_y + down * bulge], 1)


def cheek_arc(s: FaceShape, lv: AuLevels, sign: float) -> np.ndarray:
    """The cheek fold under one eye; AU6 lifts and bends it."""
    a6 = _level(lv, 6, sign)
    t = np.linspace(-1, 1, 7)
    xs = sign * (s.eye_dx + 0.01) + t * s.eye_w * 1.1
    ys = s.eye_y + 0.085 - 0.045 * a6 + (0.01 + 0.02 * a6) * t**2
    return np.stack([xs, ys], 1)


def mouth_corner(s: FaceShape, lv: AuLevels, sign: float) -> np.ndarray:
    """One mouth corner; AU12 pulls it up and out, AU15 down, AU20 out, AU14/23 in."""
    a = {au: _level(lv, au, sign) for au in (12, 14, 15, 20, 23, 24)}
    dx = 0.035 * a[12] - 0.02 * a[14] + 0.045 * a[20] - 0.025 * a[23] - 0.01 * a[24]
    dy = -0.05 * a[12] - 0.012 * a[14] + 0.05 * a[15] + 0.01 * a[20]
    return np.array([sign * (s.mouth_w + dx), s.mouth_y + dy])


def lips(s: FaceShape, lv: AuLevels) -> tuple[np.ndarray, np.ndarray]:
    """Outer lip contour and mouth opening polygon (both closed, left to right then back)."""
    right, left = mouth_corner(s, lv, -1.0), mouth_corner(s, lv, 1.0)
    thin = 1 - 0.6 * max(_both(lv, 24), _both(lv, 23))
    gap = 0.03 * _both(lv, 25) + 0.05 * _both(lv, 26)
    drop = 0.05 * _both(lv, 26)
    chin = _both(lv, 17)  # pushes the closed mouth up and bunches the lower lip, never across
    raise_up = [0.035 * _level(lv, 10, sg) + 0.012 * _level(lv, 9, sg) for sg in (-1.0, 1.0)]
    t = np.array([-0.5, 0.0, 0.5])
    mid_y = s.mouth_y + (right[1] + left[1] - 2 * s.mouth_y) * 0.15
    top_raise = np.array([raise_up[0], np.mean(raise_up), raise_up[1]])
    inner_top = np.stack([t * s.mouth_w, mid_y - gap / 2 - top_raise * 0.6], 1)
    inner_bot = np.stack([t * s.mouth_w, np.full(3, mid_y + gap / 2 + drop)], 1)
    outer_top = inner_top - [0, s.lip * thin]
    outer_top[:, 1] -= top_raise * 0.4
    inner_top[:, 1] -= 0.01 * chin
    inner_bot[:, 1] -= 0.01 * chin
    outer_bot = inner_bot + [0, max(0.4 * s.lip, 1.3 * s.lip * thin - 0.02 * chin)]
    outline = np.vstack([right, outer_top, left, outer_bot[::-1]])
    opening = np.vstack([right, inner_top, left, inner_bot[::-1]])
    return outline, opening


def chin_arc(s: FaceShape, lv: AuLevels) -> np.ndarray:
    """The chin boss line; AU17 pushes it up, AU26 drops it."""
    t = np.linspace(-1, 1, 5)
    y = s.mouth_y + 0.1 - 0.035 * _both(lv, 17) + 0.05 * _both(lv, 26)
    return np.stack([t * 0.05, y - 0.01 * (1 - t**2)], 1)


def landmarks(s: FaceShape, lv: AuLevels | None = None) -> dict[str, np.ndarray]:
    """Named feature points in face units (no pose), e.g. for checking where motion is."""
    lv = lv or {}
    out = {}
    for side, sign in SIDES.items():
        brow = brow_points(s, lv, sign)
        out[f"brow_inner_{side}"], out[f"brow_outer_{side}"] = brow[0], brow[2]
        out[f"eye_{side}"] = np.array([sign * s.eye_dx, s.eye_y])
        out[f"mouth_corner_{side}"] = mouth_corner(s, lv, sign)
    out["nose"] = np.array([0.0, s.nose_y])
    return out


class _Canvas:
    """Maps face units to fixed-point pixels under a pose, and draws anti-aliased shapes."""

    def __init__(self, shape: FaceShape, size: int, pose: Pose):
        self.size, self.pose = size, pose
        self.img = np.full((size, size, 3), shape.background, np.uint8)
        theta = np.deg2rad(pose.angle)
        self.rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    def px(self, pts: np.ndarray) -> np.ndarray:
        """Fixed-point pixel coordinates of face-unit points."""
        xy = np.atleast_2d(pts) @ self.rot.T * self.size
        xy += [self.size / 2 + self.pose.dx, self.size / 2 + self.pose.dy]
        return np.round(xy * (1 << _SHIFT)).astype(np.int32)

    def width(self, w: float) -> int:
        return max(1, round(w * self.size))

    def line(self, pts: np.ndarray, color, w: float = 0.012) -> None:
        cv2.polylines(self.img, [self.px(pts)], False, color, self.width(w), cv2.LINE_AA, _SHIFT)

    def fill(self, pts: np.ndarray, color) -> None:
        cv2.fillPoly(self.img, [self.px(pts)], color, cv2.LINE_AA, _SHIFT)

    def ellipse(self, centre, axes, color, thickness: int = -1) -> None:
        c = self.px(np.asarray(centre, float))[0]
        ax = np.round(np.asarray(axes) * self.size * (1 << _SHIFT)).astype(int)
        angle = self.pose.angle
        cv2.ellipse(
            self.img, tuple(c), tuple(ax), angle, 0, 360, color, thickness, cv2.LINE_AA, _SHIFT
        )


def _draw_eye(cv: _Canvas, s: FaceShape, lv: AuLevels, sign: float) -> None:
    upper, lower = eye_lids(s, lv, sign)
    region = np.vstack([upper, lower[::-1]])
    cv.fill(region, (235, 235, 235))
    mask = np.zeros(cv.img.shape[:2], np.uint8)
    cv2.fillPoly(mask, [cv.px(region)], 255, cv2.LINE_8, _SHIFT)
    iris = cv.img.copy()
    cv2.circle(
        iris,
        tuple(cv.px(np.array([sign * s.eye_dx, s.eye_y]))[0]),
        cv.width(0.022) << _SHIFT,
        (70, 60, 40),
        -1,
        cv2.LINE_AA,
        _SHIFT,
    )
    cv.img[mask > 0] = iris[mask > 0]
    cv.line(upper, _DARK, 0.012)
    cv.line(lower, (90, 100, 120), 0.006)


def _draw_side(cv: _Canvas, s: FaceShape, lv: AuLevels, sign: float) -> None:
    """Brow, eye, cheek fold and AU-dependent wrinkles of one side of the face."""
    cv.line(brow_points(s, lv, sign), (45, 50, 60), 0.022)
    _draw_eye(cv, s, lv, sign)
    shade = tuple(int(c * 0.8) for c in s.skin)
    cv.line(cheek_arc(s, lv, sign), shade, 0.008)
    a6, a14 = _level(lv, 6, sign), _level(lv, 14, sign)
    if a6 > 0.05:  # crow's feet
        x0 = sign * (s.eye_dx + s.eye_w + 0.015)
        for dy in (-0.012, 0.0, 0.012):
            end = [x0 + sign * 0.03 * a6, s.eye_y + dy * (1 + a6)]
            cv.line(np.array([[x0, s.eye_y + dy * 0.5], end]), shade, 0.006)
    if a14 > 0.05:  # dimple beside the corner
        corner = mouth_corner(s, lv, sign)
        dark = tuple(int(c * (1 - 0.35 * a14)) for c in s.skin)
        cv.ellipse(corner + [sign * 0.022, 0.0], (0.008 + 0.008 * a14, 0.014), dark)


def _draw_centre(cv: _Canvas, s: FaceShape, lv: AuLevels) -> None:
    """Nose, glabella and nose wrinkles, mouth and chin."""
    shade = tuple(int(c * 0.75) for c in s.skin)
    a4, a9 = _both(lv, 4), _both(lv, 9)
    if a4 > 0.05:  # vertical furrows between the brows
        y = s.eye_y - s.brow_gap + 0.01
        for x in (-0.015, 0.015):
            cv.line(np.array([[x, y], [x * (1 - a4), y + 0.04 * a4]]), shade, 0.007)
    nostril_y = s.nose_y - 0.02 * a9 - 0.008 * _both(lv, 10)
    cv.line(np.array([[-0.02, s.eye_y + 0.01], [-0.035, nostril_y - 0.01]]), shade, 0.008)
    cv.line(np.array([[0.02, s.eye_y + 0.01], [0.035, nostril_y - 0.01]]), shade, 0.008)
    for x in (-0.025, 0.025):
        cv.ellipse((x * (1 + 0.3 * a9), nostril_y), (0.013, 0.007), _DARK)
    for k in range(3 if a9 > 0.05 else 0):  # nose wrinkles
        y = s.eye_y + 0.02 + 0.012 * k
        cv.line(np.array([[-0.025, y], [0.025, y - 0.004]]), shade, 0.005 + 0.005 * a9)
    outline, opening = lips(s, lv)
    cv.fill(outline, (70, 70, 165))
    cv.fill(opening, (30, 25, 40))
    cv.line(chin_arc(s, lv), shade, 0.009)


def render(shape: FaceShape, levels: AuLevels, size: int, pose: Pose = Pose()) -> np.ndarray:
    """One BGR frame of the face showing ``levels`` under ``pose`` (no pixel noise)."""
    cv = _Canvas(shape, size, pose)
    jaw = 0.02 * _both(levels, 26)
    cv.ellipse((0.0, 0.02 + jaw / 2), (shape.head_w, shape.head_h + jaw / 2), shape.skin)
    for sign in SIDES.values():
        _draw_side(cv, shape, levels, sign)
    _draw_centre(cv, shape, levels)
    return np.clip(cv.img.astype(np.float32) * pose.gain, 0, 255).astype(np.uint8)
