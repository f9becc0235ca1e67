"""Every registered family end to end on its tiny model: finetune, reload, infer, merge, score;
and the preset checks that catch a part matching nothing."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch
from train_fixtures import make_inputs

from vqa import families, lora, tiny
from vqa.cli import main as cli
from vqa.errors import UserError
from vqa.jsonl import read_jsonl
from vqa.model import encode, load_model, load_processor

FAMILIES = list(tiny.BUILDERS)
RECIPE = "scripts/configs/tiny_cpu.yaml"
COUNTS = re.compile(r"trainable parameters: [\d,]+ of [\d,]+ \([\d.]+%\): (.*)")


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    return request.param, tiny.tiny_model_path(family=request.param)


def _answers(path) -> dict[str, str]:
    return {row["id"]: row["answer"] for row in read_jsonl(path)}


def _finetune(model_dir, inputs, out, preset="baseline") -> int:
    return cli(
        [
            *("finetune", "--config", RECIPE, "--model_name_or_path", str(model_dir)),
            *("--train_file", str(inputs), "--holdout_subjects", "s01,s02"),
            *("--preset", preset, "--num_train_epochs", "1", "--eval_strategy", "no"),
            *("--save_strategy", "no", "--report_to", "none", "--output_dir", str(out)),
        ]
    )


def test_family_runs_every_command(family_model, tmp_path, capsys):
    family, model_dir = family_model
    inputs = make_inputs(tmp_path / "inputs", subjects=4, clips=1, mode="video", types=[0, 1])
    adapter = tmp_path / "adapter"
    assert _finetune(model_dir, inputs, adapter) == 0
    printed = dict(
        (part, int(count.replace(",", "")))
        for part, count in (
            p.rsplit(" ", 1) for p in COUNTS.search(capsys.readouterr().out)[1].split(", ")
        )
    )
    assert all(printed.get(part, 0) > 0 for part in ("vision", "merger", "llm")), printed
    run = json.loads((adapter / "run.json").read_text())
    assert {k: run["trainable_parameters"][k] for k in printed} == printed
    trained = _answers(adapter / "eval_answers.jsonl")  # answered by the in-memory model
    assert len(trained) == 4

    held = ("--inputs", str(inputs), "--holdout-subjects", "s01,s02")
    for batch in ("1", "4"):
        out = tmp_path / f"reloaded-{batch}.jsonl"
        assert (
            cli(
                [
                    "infer",
                    "--adapter",
                    str(adapter),
                    *held,
                    "--batch-size",
                    batch,
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        assert _answers(out) == trained  # reloaded adapter, batched or one by one

    merged = tmp_path / "merged"
    assert cli(["merge", "--adapter", str(adapter), "--out", str(merged)]) == 0
    out = tmp_path / "merged.jsonl"
    assert (
        cli(["infer", "--model", str(merged), *held, "--batch-size", "4", "--out", str(out)]) == 0
    )
    assert _answers(out) == trained
    assert json.loads((merged / "config.json").read_text())["model_type"] == family

    scores = tmp_path / "scores"
    assert cli(["score", "--pred", str(out), "--gt", str(inputs), "--out", str(scores)]) == 0
    assert (scores / "metrics.json").is_file()


def test_every_preset_part_matches_modules(family_model):
    family, model_dir = family_model
    model = load_model(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    entry = families.family(family)
    for name in lora.PRESETS:
        targets = lora.resolve(name, model)
        wanted = [p for p in lora.PRESETS[name].lora if p in entry.lora]
        assert [k for k in targets.matched if k.startswith("lora:")] == [
            f"lora:{p}" for p in wanted
        ]
        assert all(targets.matched.values())
    if "linear_attn" in entry.lora:  # Qwen3.5: the linear-attention layers are not left out
        matched = lora.resolve("strong", model).matched["lora:linear_attn"]
        layers = {int(n.split(".")[3]) for n in matched}
        assert layers == {
            i for i, t in enumerate(model.config.text_config.layer_types) if t == "linear_attention"
        }


def test_a_part_the_family_lacks_stops_with_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(lora.PRESETS, "lin", lora.Preset(("vision_attn", "linear_attn")))
    inputs = make_inputs(tmp_path / "inputs", subjects=3, clips=1, types=[0])
    code = _finetune(tiny.tiny_model_path(), inputs, tmp_path / "out", preset="lin")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "'linear_attn'" in err and "Qwen2.5-VL (qwen2_5_vl)" in err
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_a_part_matching_no_module_is_an_error(monkeypatch):
    """Qwen2.5-VL's vision MLP names on a Qwen3-VL model: peft alone would say nothing."""
    model = load_model(tiny.tiny_model_path(family="qwen3_vl"), dtype=torch.float32)
    wrong = dataclasses.replace(
        families.FAMILIES["qwen3_vl"], lora=families.FAMILIES["qwen2_5_vl"].lora
    )
    monkeypatch.setitem(families.FAMILIES, "qwen3_vl", wrong)
    with pytest.raises(UserError, match=r"part 'vision_mlp' matches no module of this Qwen3-VL"):
        lora.resolve("strong", model)


@pytest.mark.parametrize("family", FAMILIES)
def test_video_timestamps_follow_the_frame_rate(family, make_image):
    processor = load_processor(tiny.tiny_model_path(family=family))
    frames = [str(make_image(f"f{k}.png", 64, seed=k)) for k in range(4)]

    def batch(fps: float):
        item = {"type": "video", "video": frames, "sample_fps": fps}
        return encode(
            processor, [[{"role": "user", "content": [item]}]], add_generation_prompt=True
        )

    slow, fast = batch(2.0), batch(200.0)
    if "second_per_grid_ts" in slow:  # Qwen2.5-VL: time positions, 2 frames per grid step
        assert slow["second_per_grid_ts"].tolist() == pytest.approx([1.0])
        assert fast["second_per_grid_ts"].tolist() == pytest.approx([0.01])
    else:  # Qwen3-VL and Qwen3.5: timestamps in the text, mid-point of each frame pair
        text = processor.tokenizer.decode(fast["input_ids"][0])
        assert re.findall(r"<([\d.]+) seconds>", text) == ["0.0", "0.0"]
        text = processor.tokenizer.decode(slow["input_ids"][0])
        assert re.findall(r"<([\d.]+) seconds>", text) == ["0.2", "1.2"]


def test_thinking_is_off_in_prompt_and_labels():
    """Qwen3.5's think block sits in the prompt, so labels cover the answer and its end only."""
    from vqa.collator import IGNORE_INDEX, TrainCollator
    from vqa.model import render

    processor = load_processor(tiny.tiny_model_path(family="qwen3_5"))
    ask = [{"role": "user", "content": [{"type": "text", "text": "What is the coarse class?"}]}]
    prompt = render(processor, ask, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    open_think = processor.apply_chat_template(ask, tokenize=False, add_generation_prompt=True)
    assert open_think.endswith("<|im_start|>assistant\n<think>\n")  # the trap, without the switch
    answer = [{"role": "assistant", "content": [{"type": "text", "text": "negative"}]}]
    span = TrainCollator(processor, ".").answer_span(ask + answer)
    assert processor.tokenizer.decode(span.supervised) == "negative<|im_end|>"
    assert IGNORE_INDEX == -100
