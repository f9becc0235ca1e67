"""vqa.answering on the tiny model: one clip's pictures processed and encoded once, answers
byte-identical to today's per-question path (vqa.model.generate), resumable part-way."""

from __future__ import annotations

import pytest
import torch
from conftest import write_image

from vqa import answering
from vqa.model import generate, load_model, load_processor
from vqa.prompts import build_messages, official
from vqa.question_types import budget

Q = official()["questions"]
QUESTIONS = [
    Q["coarse"],
    Q["fine"],
    Q["au_many"],
    Q["yes_no"].format(au="cheek raiser"),
    Q["combined_many"],
    "How old is the person?",
]
CAP = 24  # answers of up to 24 tokens keep the test short


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Conversations and budgets of five clips (oao and video, 1 to 6 questions), interleaved
    in input order as a resumed or hand-made inputs file may be."""
    root = tmp_path_factory.mktemp("clips")
    rows = []
    for c, (mode, questions) in enumerate(
        [("oao", QUESTIONS), ("video", QUESTIONS[:3]), ("oao", QUESTIONS[4:5]),
         ("video", QUESTIONS[1:]), ("oao", QUESTIONS[2:5])]
    ):  # fmt: skip
        names = [f"c{c}/{n}.png" for n in range(8)]  # 8 frames: a video longer than wide
        for n, name in enumerate(names):
            write_image(root / name, (40 + 8 * c, 36), seed=10 * c + n)
        visual = {"images": names[:3]} if mode == "oao" else {"frames": names}
        rows += [{"question": q, **visual} for q in questions]
    rows = rows[::2] + rows[1::2]
    conversations = [build_messages(r, root, "guided") for r in rows]
    return conversations, [budget(r["question"], CAP) for r in rows]


@pytest.fixture(scope="module")
def models(tiny_model_dir, tmp_path_factory):
    """The tiny model without and with a random LoRA adapter (language and vision parts)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(
        r=4, lora_alpha=8, init_lora_weights=False, target_modules=r".*(q_proj|v_proj|qkv)"
    )
    tuned = get_peft_model(load_model(tiny_model_dir, dtype=torch.float32), config)
    return {"base": load_model(tiny_model_dir, dtype=torch.float32), "adapter": tuned}


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(tiny_model_dir, padding_side="left")


@pytest.mark.parametrize("which", ["base", "adapter"])
def test_answers_equal_the_per_question_path(models, processor, clips, which):
    model = models[which]
    conversations, budgets = clips
    expected = generate(model, processor, conversations, max_new_tokens=budgets, batch_size=1)
    assert len(set(expected)) > 2, "the pictures should change the answers"
    for batch_size in (1, 4, 16):
        got = answering.answer(
            model, processor, conversations, budgets, batch_size=batch_size, progress=False
        )
        assert [got[i] for i in range(len(conversations))] == expected, batch_size


def test_pictures_are_processed_and_encoded_once_per_clip(models, processor, clips):
    model = models["base"]
    conversations, budgets = clips
    counts = {"processed": 0, "encoded": 0}

    def counting(preprocess):
        def wrapper(*args, **kwargs):
            counts["processed"] += 1
            return preprocess(*args, **kwargs)

        return wrapper

    parts = (processor.image_processor, processor.video_processor)
    for part in parts:
        part.preprocess = counting(part.preprocess)
    hook = model.model.visual.register_forward_hook(
        lambda *_: counts.__setitem__("encoded", counts["encoded"] + 1)
    )
    try:
        answering.answer(model, processor, conversations, budgets, batch_size=4, progress=False)
    finally:
        hook.remove()
        for part in parts:
            del part.preprocess
    assert counts == {"processed": 5, "encoded": 5}


def test_a_run_stopped_part_way_resumes_to_the_same_answers(models, processor, clips):
    model = models["base"]
    conversations, budgets = clips
    full = answering.answer(model, processor, conversations, budgets, batch_size=4, progress=False)
    stored: dict[int, str] = {}

    def sink(new: dict[int, str]) -> None:
        if len(stored) >= 6:
            raise KeyboardInterrupt
        stored.update(new)

    with pytest.raises(KeyboardInterrupt):
        answering.answer(
            model, processor, conversations, budgets, batch_size=4, sink=sink, progress=False
        )
    assert 0 < len(stored) < len(conversations)
    resumed = answering.answer(
        model, processor, conversations, budgets, batch_size=4, done=stored, progress=False
    )
    assert resumed == full
