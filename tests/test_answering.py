"""vqa.answering on every family's tiny model: one clip's pictures processed and encoded once
(where the family's KV cache can be joined), answers byte-identical to today's per-question
path (vqa.model.generate) with and without an adapter, resumable part-way."""

from __future__ import annotations

import pytest
import torch
from conftest import CLIP_QUESTIONS, write_image

from vqa import answering, families
from vqa.model import generate, load_model, load_processor
from vqa.prompts import build_messages
from vqa.question_types import budget
from vqa.tiny import tiny_model_path

QUESTIONS = CLIP_QUESTIONS
CAP = 12  # answers of up to 12 tokens keep the test short
JOINING = [name for name, entry in families.FAMILIES.items() if entry.joins_cache]


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


def with_adapter(model):
    """The model with a random LoRA adapter on its language and vision attention."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(
        r=4, lora_alpha=8, init_lora_weights=False, target_modules=r".*(q_proj|v_proj|qkv)"
    )
    return get_peft_model(model, config)


@pytest.fixture(scope="module", params=list(families.FAMILIES))
def family(request):
    """A family's tiny model, its adapted twin and its left-padding processor."""
    path = tiny_model_path(family=request.param)
    models = {
        "base": load_model(path, dtype=torch.float32),
        "adapter": with_adapter(load_model(path, dtype=torch.float32)),
    }
    return request.param, models, load_processor(path, padding_side="left")


@pytest.mark.parametrize("which", ["base", "adapter"])
def test_answers_equal_the_per_question_path(family, clips, which):
    name, models, processor = family
    model = models[which]
    conversations, budgets = clips
    expected = generate(model, processor, conversations, max_new_tokens=budgets, batch_size=1)
    assert len(set(expected)) > 2, "the pictures should change the answers"
    for batch_size in (1, 4, 16):
        got = answering.answer(
            model, processor, conversations, budgets, batch_size=batch_size, progress=False
        )
        assert [got[i] for i in range(len(conversations))] == expected, (name, batch_size)


def test_every_row_continues_at_the_rotary_positions_it_has_alone(tmp_path):
    """Qwen2.5-VL places the text after a video by the video's width, while the video's time
    positions run further (32 frames at 2 fps: 16 time steps), and generation continues from
    the last position, not the highest. A short question ends inside the video's time span,
    a long one runs past it; the questions differ from their first token, so the clip's
    prefix ends right after the video. Every row must see the positions it has alone."""
    path = tiny_model_path()
    model, processor = load_model(path, dtype=torch.float32), load_processor(path)
    model.generation_config.eos_token_id = None  # every answer runs to its full budget
    frames = [str(write_image(tmp_path / f"{n}.png", (40, 36), seed=n)) for n in range(32)]
    texts = ("Emotion?", "Which action units? " * 6, "Happy?", "Describe the face. " * 6)
    video = {"type": "video", "video": frames}
    conversations = [
        [{"role": "user", "content": [video, {"type": "text", "text": t}]}] for t in texts
    ]
    seen, tops = [], []  # per path: each row's last-token positions of every forward pass

    def record(_module, args, _output):
        seen[-1].extend(args[1][0, :, -1].tolist())  # text: every axis alike
        tops.append(args[1].max().item())

    model.model.language_model.rotary_emb.register_forward_hook(record)
    seen.append([])
    generate(model, processor, conversations, max_new_tokens=CAP, batch_size=1)
    today = seen[-1]
    short_prompt_end, short_prompt_top = today[0], tops[0]
    assert short_prompt_top > short_prompt_end, "the video's time should outrun the short question"
    for batch_size in (1, 4):
        seen.append([])
        answering.answer(
            model, processor, conversations, [CAP] * 4, batch_size=batch_size, progress=False
        )
        assert sorted(seen[-1][1:]) == sorted(today), batch_size  # [0]: the clip's prefix


@pytest.mark.parametrize("name", JOINING)
def test_pictures_are_processed_and_encoded_once_per_clip(name, clips):
    path = tiny_model_path(family=name)
    model, processor = load_model(path, dtype=torch.float32), load_processor(path)
    conversations, budgets = clips
    counts = {"processed": 0, "encoded": 0}

    def counting(preprocess):
        def wrapper(*args, **kwargs):
            counts["processed"] += 1
            return preprocess(*args, **kwargs)

        return wrapper

    for part in (processor.image_processor, processor.video_processor):
        part.preprocess = counting(part.preprocess)
    families.vision_tower(model).register_forward_hook(
        lambda *_: counts.__setitem__("encoded", counts["encoded"] + 1)
    )
    answering.answer(model, processor, conversations, budgets, batch_size=4, progress=False)
    assert counts == {"processed": 5, "encoded": 5}


def test_a_run_stopped_part_way_resumes_to_the_same_answers(family, clips):
    _, models, processor = family
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
