"""Prompts: official phrasings and the chat messages the model sees.

All text lives in ``prompts/*.yaml`` (shipped as ``vqa.prompt_files``); this module only
loads it and assembles Qwen2.5-VL chat messages. Training and inference both call
:func:`build_messages`, so they render identical prompts.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import yaml

from vqa.errors import UserError
from vqa.records import resolve_visual

PROMPT_STYLES = ("plain", "guided")


@functools.cache
def load_yaml(name: str) -> dict:
    """One of the shipped prompt files, by stem (``questions`` or ``inference``)."""
    text = resources.files("vqa.prompt_files").joinpath(f"{name}.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def official() -> dict:
    """The organisers' question and answer phrasings."""
    return load_yaml("questions")


def prompt_text(row: dict, style: str) -> str:
    """The text part of the user turn for one QA row."""
    if style not in PROMPT_STYLES:
        raise UserError(
            f"unknown prompt style {style!r}", fix=f"use one of {', '.join(PROMPT_STYLES)}"
        )
    from vqa.question_types import question_type  # the registry reads this module's texts

    config = load_yaml("inference")
    question = row["question"]
    hints = config["styles"][style]
    text = hints.get(question_type(question), hints["default"]).format(question=question)
    if style == "guided" and row.get("flow_legend"):
        text = config["flow_legend"].format(legend=row["flow_legend"]) + " " + text
    return text


def visual_content(row: dict, base_dir: Path, *, file=None, lineno=None) -> list[dict]:
    """Chat content items for a row's ``images`` and ``frames`` (relative to base_dir)."""
    items = []
    for rel in row.get("images") or []:
        items.append(
            {"type": "image", "image": str(resolve_visual(base_dir, rel, file=file, row=lineno))}
        )
    if row.get("frames"):
        frames = [
            str(resolve_visual(base_dir, rel, file=file, row=lineno)) for rel in row["frames"]
        ]
        video = {"type": "video", "video": frames}
        if row.get("sample_fps"):  # the true rate of the sampled frames (trap 12)
            video["sample_fps"] = row["sample_fps"]
        if row.get("frame_times"):  # a long video's frames, unevenly spaced: each one's time
            video["frame_times"] = row["frame_times"]
        items.append(video)
    return items


def build_messages(
    row: dict,
    base_dir: Path,
    style: str = "plain",
    *,
    with_answer: bool = False,
    file=None,
    lineno=None,
) -> list[dict]:
    """Chat messages for one QA row: visuals then text in the user turn, answer if asked."""
    content = visual_content(row, base_dir, file=file, lineno=lineno)
    content.append({"type": "text", "text": prompt_text(row, style)})
    messages = [{"role": "user", "content": content}]
    if with_answer:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": row["answer"]}]})
    return messages
