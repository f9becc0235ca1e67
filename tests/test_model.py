"""vqa.model on the tiny offline model: loading, encoding, training steps and generation."""

from __future__ import annotations

import pytest
import torch

from vqa.errors import UserError
from vqa.model import encode, generate, load_model, load_processor, pick_attention, pick_dtype


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return load_model(tiny_model_dir)


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(tiny_model_dir)


def ask(visuals: list[dict], question: str, answer: str | None = None) -> list[dict]:
    messages = [{"role": "user", "content": [*visuals, {"type": "text", "text": question}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def images(make_image, count: int, size: int = 64) -> list[dict]:
    return [
        {"type": "image", "image": str(make_image(f"i{k}.png", size, seed=k))} for k in range(count)
    ]


def video(make_image, frames: int, size: int = 64) -> list[dict]:
    paths = [str(make_image(f"f{k}.png", size, seed=10 + k)) for k in range(frames)]
    return [{"type": "video", "video": paths}]


def test_defaults_on_this_machine():
    if torch.cuda.is_available():
        assert pick_dtype() in (torch.bfloat16, torch.float32)
        assert pick_attention(pick_dtype()) in ("flash_attention_2", "sdpa")
    else:
        assert pick_dtype() == torch.float32
        assert pick_attention(pick_dtype()) == "sdpa"


@pytest.fixture
def a_gpu(monkeypatch):
    """Pretend CUDA and flash-attn are there; ``native`` says whether bf16 is native (Ampere+)
    rather than emulated (older GPUs, where torch still says bf16 is supported)."""
    import transformers.utils

    gpu = {"native": True}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        torch.cuda,
        "is_bf16_supported",
        lambda including_emulation=True: gpu["native"] or including_emulation,
    )
    monkeypatch.setattr(transformers.utils, "is_flash_attn_2_available", lambda: True)
    return gpu


def test_bf16_and_flash_attention_only_where_they_run(a_gpu):
    assert pick_dtype() == torch.bfloat16 and pick_dtype(use_cpu=True) == torch.float32
    assert pick_attention(torch.bfloat16) == "flash_attention_2"
    assert pick_attention(torch.float32) == "sdpa"  # flash-attn kernels take fp16/bf16 only
    assert pick_attention(torch.bfloat16, use_cpu=True) == "sdpa"
    a_gpu["native"] = False  # a T4 or V100 only emulates bf16
    assert pick_dtype() == torch.float32


@pytest.mark.parametrize("kind", ["images", "video"])
def test_forward_and_backward(model, processor, make_image, kind):
    visuals = images(make_image, 2) if kind == "images" else video(make_image, 8)
    batch = encode(
        processor,
        [ask(visuals, "What is the coarse expression class?", "negative")],
        add_generation_prompt=False,
    ).to(model.device)
    grid = batch["image_grid_thw" if kind == "images" else "video_grid_thw"]
    assert len(grid) == (2 if kind == "images" else 1)
    model.train()
    model.zero_grad()
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    assert torch.isfinite(loss)
    patch_grad = model.model.visual.patch_embed.proj.weight.grad
    assert patch_grad is not None and patch_grad.abs().sum() > 0  # the pixels took part
    model.zero_grad()
    model.eval()


def test_video_frames_are_padded_to_even_count(processor, make_image):
    batch = encode(
        processor,
        [ask(video(make_image, 3), "What are the action units?")],
        add_generation_prompt=True,
    )
    assert batch["video_grid_thw"][0, 0].item() == 2  # 3 frames -> 4 -> 2 temporal patches
    assert batch["second_per_grid_ts"].numel() == 1


@pytest.mark.parametrize("kind", ["image", "video"])
def test_pixel_limits_are_honoured(tiny_model_dir, make_image, kind):
    def tokens(min_pixels: int, max_pixels: int, size: int) -> tuple[int, torch.Tensor]:
        processor = load_processor(tiny_model_dir, min_pixels=min_pixels, max_pixels=max_pixels)
        visuals = images(make_image, 1, size) if kind == "image" else video(make_image, 2, size)
        batch = encode(
            processor,
            [ask(visuals, "What is the fine-grained expression class?")],
            add_generation_prompt=True,
        )
        pad = processor.image_token_id if kind == "image" else processor.video_token_id
        return int((batch["input_ids"] == pad).sum()), batch[f"{kind}_grid_thw"][0]

    count, grid = tokens(28 * 28, 56 * 56, size=200)  # big picture, capped at 2x2 merged tokens
    assert count == grid.prod().item() // 4 and grid[1] * grid[2] * 14 * 14 <= 56 * 56
    count, grid = tokens(112 * 112, 224 * 224, size=30)  # small picture, raised to >= 4x4 tokens
    assert count == grid.prod().item() // 4 and grid[1] * grid[2] * 14 * 14 >= 112 * 112


def test_pixel_limits_set_both_ways(tiny_model_dir):
    processor = load_processor(tiny_model_dir, min_pixels=1000, max_pixels=9000)
    for part in (processor.image_processor, processor.video_processor):
        assert (part.min_pixels, part.max_pixels) == (1000, 9000)
        assert (part.size["shortest_edge"], part.size["longest_edge"]) == (1000, 9000)
    with pytest.raises(UserError, match="min_pixels"):
        load_processor(tiny_model_dir, min_pixels=9000, max_pixels=1000)


def test_padding_side_follows_the_tokenizer(processor, make_image):
    short = ask([], "yes?")
    long = ask(images(make_image, 1), "What is the coarse expression class?")
    batch = encode(processor, [short, long], add_generation_prompt=True)
    assert processor.tokenizer.padding_side == "right"
    assert batch["attention_mask"][0, -1] == 0 and batch["attention_mask"][0, 0] == 1


def test_batched_generation_equals_one_at_a_time(model, processor, make_image):
    conversations = [
        ask(images(make_image, 2), "What is the coarse expression class?"),
        ask(video(make_image, 4), "What are the action units?"),
        ask([], "Is the action unit lip corner puller shown on the face?"),
    ]
    budgets = [6, 3, 5]
    alone = [
        generate(model, processor, [c], max_new_tokens=b)
        for c, b in zip(conversations, budgets, strict=True)
    ]
    batched = generate(model, processor, conversations, max_new_tokens=budgets, batch_size=3)
    assert batched == [a[0] for a in alone]
    assert all(answer for answer in batched)  # the random model does say something
    assert processor.tokenizer.padding_side == "right"  # restored after left-padded generation
    assert not model.training


def test_generation_decodes_only_new_tokens(model, processor):
    question = "What is the fine-grained expression class?"
    answer = generate(model, processor, [ask([], question)], max_new_tokens=4)[0]
    tokenizer = processor.tokenizer
    longest = max(len(tokenizer.decode([i])) for i in range(len(tokenizer)))
    assert question not in answer and len(answer) <= 4 * longest


def test_missing_model_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="tiny-model"):
        load_model("me-vqa-test/not-a-real-model")
    with pytest.raises(UserError, match="save_pretrained"):
        load_processor(tmp_path)


def test_a_model_loaded_from_a_relative_folder_names_it_absolutely(tiny_model_dir, monkeypatch):
    """An adapter records its base as the model's name_or_path: a path relative to where it was
    trained would name nothing when infer or merge runs from another folder."""
    from peft import LoraConfig, get_peft_model

    monkeypatch.chdir(tiny_model_dir.parent)
    model = load_model(tiny_model_dir.name)
    assert model.name_or_path == str(tiny_model_dir)
    lora = get_peft_model(model, LoraConfig(target_modules=["q_proj"]))
    assert lora.peft_config["default"].base_model_name_or_path == str(tiny_model_dir)
