"""The training collator on the real tiny processor: labels cover exactly answer + end token."""

from __future__ import annotations

import pytest
from train_fixtures import clip_rows

from vqa.collator import IGNORE_INDEX, TrainCollator
from vqa.errors import UserError
from vqa.model import load_processor
from vqa.question_types import question_type


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    return load_processor(tiny_model_dir, padding_side="right")


@pytest.fixture
def mixed_rows(tmp_path) -> list[dict]:
    """Every question type, over flow (image + legend), onset/apex/offset images and video."""
    rows = clip_rows(tmp_path, "s1", "c1", "positive", "flow", 1)
    rows += clip_rows(tmp_path, "s2", "c1", "negative", "video", 2)
    rows += clip_rows(tmp_path, "s3", "c1", "surprise", "oao", 3)
    return rows[::2] + rows[1::2]  # interleave clips so that every batch mixes inputs


@pytest.mark.parametrize("style", ["plain", "guided"])
def test_supervised_tokens_are_exactly_each_answer_and_its_end_token(
    processor, mixed_rows, tmp_path, style
):
    assert {question_type(r["question"]) for r in mixed_rows} == {
        "coarse", "fine", "au", "left_right", "yes_no", "combined", "analysis"
    }  # fmt: skip
    batch = TrainCollator(processor, tmp_path, style)(mixed_rows)
    tokenizer = processor.tokenizer
    for i, row in enumerate(mixed_rows):
        labels = batch["labels"][i]
        supervised = labels[labels != IGNORE_INDEX]
        assert tokenizer.decode(supervised) == row["answer"] + tokenizer.eos_token
        # one contiguous span; after it only the template's closing newline, before it the prompt
        positions = (labels != IGNORE_INDEX).nonzero().flatten().tolist()
        first, last = positions[0], positions[-1]
        assert positions == list(range(first, last + 1))
        length = int(batch["attention_mask"][i].sum())
        assert tokenizer.decode(batch["input_ids"][i, last + 1 : length]) == "\n"
        assert tokenizer.decode(batch["input_ids"][i, :first]).endswith("<|im_start|>assistant\n")
        assert (batch["attention_mask"][i, :length] == 1).all()  # right padding
    assert batch["pixel_values"].shape[0] > 0 and batch["pixel_values_videos"].shape[0] > 0
    images_per_row = [len(r.get("images") or []) for r in mixed_rows]
    assert batch["image_grid_thw"].shape[0] == sum(images_per_row)
    assert batch["video_grid_thw"].shape[0] == sum(1 for r in mixed_rows if r.get("frames"))


def test_too_long_sample_names_the_length_it_needs(processor, tmp_path):
    rows = clip_rows(tmp_path, "s1", "c1", "positive", "oao", 1, types=[0])
    needed = int(TrainCollator(processor, tmp_path)(rows)["attention_mask"].sum())
    with pytest.raises(
        UserError, match=f"needs {needed} tokens but max_length is 20.*--max_length {needed}"
    ):
        TrainCollator(processor, tmp_path, max_length=20)(rows)


def test_empty_answer_is_refused(processor, tmp_path):
    rows = clip_rows(tmp_path, "s1", "c1", "positive", "flow", 1, types=[0])
    rows[0]["answer"] = ""
    with pytest.raises(UserError, match="no answer tokens"):
        TrainCollator(processor, tmp_path)(rows)


def test_left_padded_processor_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="right padding"):
        TrainCollator(load_processor(tiny_model_dir, padding_side="left"), ".")


def test_pixel_limits_reach_the_batch(tiny_model_dir, tmp_path):
    rows = clip_rows(tmp_path, "s1", "c1", "positive", "oao", 1, types=[0])
    small = load_processor(tiny_model_dir, min_pixels=4 * 28 * 28, max_pixels=4 * 28 * 28)
    large = load_processor(tiny_model_dir, min_pixels=16 * 28 * 28, max_pixels=16 * 28 * 28)
    grids = [TrainCollator(p, tmp_path)(rows)["image_grid_thw"] for p in (small, large)]
    assert [int(g[0].prod()) for g in grids] == [4 * 4, 16 * 4]  # patches = merged tokens x 4
