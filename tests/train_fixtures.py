"""Hand-made inputs.jsonl folders for the fine-tuning tests: small coloured images whose colour
encodes the clip's coarse class, with every question type and image, video and flow inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vqa.consistency import analysis_text
from vqa.jsonl import write_jsonl
from vqa.prompts import official

COLOURS = {"positive": (230, 30, 30), "negative": (30, 220, 30), "surprise": (30, 30, 230)}
FINE = {"positive": "happiness", "negative": "disgust", "surprise": "surprise"}
LEGEND = "red means upward motion, green downward, blue sideways."


def write_image(path: Path, colour: tuple[int, int, int], seed: int, size: int = 56) -> str:
    """A noisy picture of one dominant colour; returns its name relative to the inputs folder."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path.name if path.parent.name == "" else f"{path.parent.name}/{path.name}"


def qa_pairs(coarse: str) -> list[tuple[str, str]]:
    """One question of every type for a clip of class ``coarse`` (official phrasings)."""
    q, a = official()["questions"], official()["answers"]
    aus = "lip corner puller, cheek raiser"
    fine = FINE[coarse]
    return [
        (q["coarse"], coarse),
        (q["fine"], fine),
        (q["au_many"], aus),
        (q["left_right"].format(au="lip corner puller"), "left"),
        (q["yes_no"].format(au="cheek raiser"), "yes"),
        (q["combined_many"], a["combined_many"].format(aus=aus, fine=fine, coarse=coarse)),
        (official()["analysis"]["questions"][0], analysis_text(aus.split(", "), fine, coarse)),
    ]


def clip_rows(
    root: Path, subject: str, clip: str, coarse: str, mode: str, seed: int, types=None
) -> list[dict]:
    """inputs.jsonl rows of one clip; mode is flow, oao or video (video uses 4 frames)."""
    colour = COLOURS[coarse]
    name = f"{subject}_{clip}"
    base = {"dataset": "synth", "image_id": name, "subject": subject, "filename": clip}
    if mode == "video":
        visual = {
            "frames": [write_image(root / name / f"{k}.png", colour, seed + k) for k in range(4)]
        }
    elif mode == "oao":
        visual = {
            "images": [write_image(root / name / f"{k}.png", colour, seed + k) for k in range(3)]
        }
    else:
        visual = {
            "images": [write_image(root / name / "flow.png", colour, seed)],
            "flow_legend": LEGEND,
        }
    pairs = qa_pairs(coarse)
    chosen = pairs if types is None else [pairs[t] for t in types]
    return [
        {"id": f"synth_{name}_{k}", **base, "question": qu, "answer": an, "mode": mode, **visual}
        for k, (qu, an) in enumerate(chosen, 1)
    ]


def make_inputs(root: Path, subjects: int, clips: int, mode: str = "flow", types=None) -> Path:
    """An inputs folder: ``subjects`` x ``clips`` clips cycling through the coarse classes."""
    root.mkdir(parents=True, exist_ok=True)
    classes = list(COLOURS)
    rows = []
    for s in range(subjects):
        for c in range(clips):
            coarse = classes[(s + c) % len(classes)]
            rows += clip_rows(
                root, f"s{s:02d}", f"c{c:02d}", coarse, mode, seed=100 * s + 10 * c, types=types
            )
    write_jsonl(root / "inputs.jsonl", rows)
    return root / "inputs.jsonl"
