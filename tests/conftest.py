"""Shared fixtures: the cached tiny offline Qwen2.5-VL and small test pictures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# The tiny model's matrices are far too small to gain from threads; on a shared CPU the
# threads only fight (generation runs ~5x faster single-threaded). Set before torch loads,
# so subprocesses running me-vqa inherit it too; an explicit setting wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """Folder of the tiny model + processor (built once into the me-vqa cache)."""
    from vqa.tiny import tiny_model_path

    return tiny_model_path()


def _clip_questions() -> list[str]:
    from vqa.prompts import official

    q = official()["questions"]
    coarse, fine, au, yes_no = q["coarse"], q["fine"], q["au_many"], q["yes_no"]
    return [coarse, fine, au, yes_no.format(au="cheek raiser"), q["combined_many"]] + [
        "How old is the person?"
    ]


# Questions one clip is asked: the organisers' five kinds and one of no known type.
CLIP_QUESTIONS = _clip_questions()


def write_image(path: Path, size: int | tuple[int, int] = 64, seed: int = 0) -> Path:
    """A random RGB picture of ``size`` (side, or (width, height)) saved at ``path``."""
    width, height = (size, size) if isinstance(size, int) else size
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def make_image(tmp_path: Path) -> Callable[..., Path]:
    """``make_image(name, size=64, seed=0)`` writes a random picture under ``tmp_path``."""

    def make(name: str, size: int | tuple[int, int] = 64, seed: int = 0) -> Path:
        return write_image(tmp_path / name, size, seed)

    return make
