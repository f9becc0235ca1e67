"""``me-vqa finetune`` end to end on the tiny model (CPU): it learns, saves, reloads, resumes,
runs on two processes, and rejects bad input with one line before writing anything."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from train_fixtures import make_inputs

from vqa import demo, lora
from vqa.args import parse_args
from vqa.cli import main as cli
from vqa.errors import UserError
from vqa.jsonl import read_jsonl, write_jsonl
from vqa.model import load_model, load_processor
from vqa.question_types import question_type
from vqa.train import (
    answer_rows,
    build_model,
    load_data,
    load_inputs,
    make_trainer_class,
    part_lrs,
    score,
    split_rows,
)

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "scripts" / "configs" / "tiny_cpu.yaml"


def finetune_args(model_dir, inputs: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config", str(RECIPE),
        "--model_name_or_path", str(model_dir),
        "--train_file", str(inputs),
        "--output_dir", str(out),
        *extra,
    ]  # fmt: skip


def answers_of(model_dir, adapter: Path | None, rows: list[dict], style: str) -> list[dict]:
    model = load_model(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    return answer_rows(model, load_processor(adapter or model_dir), rows, style, batch_size=8)


@pytest.fixture(scope="module")
def synthetic_flow(tmp_path_factory) -> Path:
    """The demo's data through the public commands: synthetic CASME II, SAMM and SMIC clips,
    converted, split into three subject folds, and built into flow inputs."""
    root = tmp_path_factory.mktemp("demo")
    flow_inputs = root / "4-inputs" / "flow"
    for step in demo.plan(root, part="short"):
        if step.argv[0] in ("synth", "convert", "split") or step.done.parent == flow_inputs:
            step.done.parent.mkdir(parents=True, exist_ok=True)  # as the demo does
            assert cli(list(step.argv)) == 0, step.shell()
    return root


def test_flow_finetuning_learns_and_the_saved_adapter_answers_identically(
    tiny_model_dir, synthetic_flow
):
    inputs = synthetic_flow / "4-inputs" / "flow" / "inputs.jsonl"
    held_out = ["--folds", str(synthetic_flow / "3-split" / "folds.json"), "--fold", "0"]
    args = parse_args(finetune_args(tiny_model_dir, inputs, synthetic_flow / "o", *held_out))
    held = [r for r in load_data(args)[1] if question_type(r["question"]) == "coarse"]
    before = score(answers_of(tiny_model_dir, None, held, "plain"), held)
    # untrained: at most chance (the UAR of any constant or random answer is 1 / classes)
    assert before.get("coarse_uar", 0.0) <= 1 / len({r["answer"] for r in held})
    assert before.get("coarse_uf1", 0.0) < 0.3

    out = synthetic_flow / "run"
    argv = finetune_args(tiny_model_dir, inputs, out, *held_out, "--question_types", "coarse")
    argv += ["--num_train_epochs", "12", "--eval_strategy", "no", "--save_strategy", "no"]
    assert cli(["finetune", *argv]) == 0

    run = json.loads((out / "run.json").read_text())
    assert run["final_metrics"]["eval_coarse_uf1"] >= 0.6, run["final_metrics"]
    coarse_rows = [r for r in read_jsonl(inputs) if question_type(r["question"]) == "coarse"]
    assert run["eval_rows"] == len(held) and run["train_rows"] == len(coarse_rows) - len(held)
    assert run["prompt_style"] == "plain" and run["preset"] == "tiny"
    folds = json.loads((synthetic_flow / "3-split" / "folds.json").read_text())
    assert run["heldout_subjects"] == sorted(folds["folds"][0]["test"])
    assert set(run["versions"]) >= {"me_vqa", "transformers", "peft", "torch"}
    assert len(run["train_data_sha256"]) == 64
    for name in ("adapter_config.json", "adapter_model.safetensors", "processor_config.json",
                 "chat_template.jinja", "config.yaml", "loss.png"):  # fmt: skip
        assert (out / name).is_file(), name
    assert list(out.glob("runs/*/events.out.tfevents.*")), "tensorboard logs"
    again = parse_args(["--config", str(out / "config.yaml")])  # the resolved config is a recipe
    assert (again.lora.preset, again.data.question_types) == ("tiny", "coarse")
    saved = load_file(out / "adapter_model.safetensors")
    assert any("merger" in k and "lora" not in k for k in saved)  # modules_to_save weights

    at_end = read_jsonl(out / "eval_answers.jsonl")
    assert [r["id"] for r in at_end] == [r["id"] for r in held]
    assert answers_of(tiny_model_dir, out, held, run["prompt_style"]) == at_end


def test_flow_finetuning_with_the_analysis_rows_still_beats_zero_shot(
    tiny_model_dir, synthetic_flow
):
    """The demo's rows include one ME-VQA-v2 analysis per clip (long answers); trained beside
    the coarse ones, the coarse class is still learnt."""
    inputs = synthetic_flow / "4-inputs" / "flow" / "inputs.jsonl"
    rows = read_jsonl(inputs)
    clips = {(r["dataset"], r["image_id"]) for r in rows if r["dataset"] != "smic"}
    assert sum(question_type(r["question"]) == "analysis" for r in rows) == len(clips)
    held_out = ["--folds", str(synthetic_flow / "3-split" / "folds.json"), "--fold", "0"]
    args = parse_args(finetune_args(tiny_model_dir, inputs, synthetic_flow / "o", *held_out))
    held = [r for r in load_data(args)[1] if question_type(r["question"]) == "coarse"]
    before = score(answers_of(tiny_model_dir, None, held, "plain"), held)["coarse_uf1"]
    out = synthetic_flow / "run-analysis"
    argv = finetune_args(tiny_model_dir, inputs, out, *held_out)
    argv += ["--question_types", "coarse,analysis", "--num_train_epochs", "12"]
    assert cli(["finetune", *argv, "--eval_strategy", "no", "--save_strategy", "no"]) == 0
    metrics = json.loads((out / "run.json").read_text())["final_metrics"]
    assert metrics["eval_coarse_uf1"] >= before + 0.2, (before, metrics)


def test_a_run_that_answers_no_held_out_rows_still_records_its_held_out_subjects(
    tiny_model_dir, tmp_path
):
    inputs = make_inputs(tmp_path / "inputs", subjects=3, clips=1, mode="flow", types=[0])
    out = tmp_path / "run"
    argv = finetune_args(tiny_model_dir, inputs, out, "--holdout_subjects", "s01,s02")
    argv += ["--max_steps", "1", "--eval_strategy", "no", "--save_strategy", "no"]
    assert cli(["finetune", *argv, "--eval_max_rows", "0"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["heldout_subjects"] == ["synth/s01", "synth/s02"]
    assert (run["train_rows"], run["eval_rows"], run["final_metrics"]) == (1, 0, {})


def _step_losses(out: Path) -> dict[int, float]:
    state = json.loads(next(out.glob("checkpoint-6/trainer_state.json")).read_text())
    return {h["step"]: h["loss"] for h in state["log_history"] if "loss" in h}


def test_resuming_a_mid_run_checkpoint_ends_like_an_uninterrupted_run(tiny_model_dir, tmp_path):
    inputs = make_inputs(tmp_path / "inputs", subjects=2, clips=3, mode="oao", types=[0, 1])
    common = ["--max_steps", "6", "--per_device_train_batch_size", "2", "--logging_steps", "1"]
    common += ["--eval_strategy", "no", "--save_strategy", "steps", "--save_steps", "3"]
    common += ["--lora_dropout", "0.1"]  # dropout makes the RNG state part of what must resume
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    assert cli(["finetune", *finetune_args(tiny_model_dir, inputs, full, *common)]) == 0
    resume = ["--resume_from_checkpoint", str(full / "checkpoint-3")]
    assert cli(["finetune", *finetune_args(tiny_model_dir, inputs, resumed, *common, *resume)]) == 0

    assert not (resumed / "checkpoint-3").exists()  # it started at step 3, not from scratch
    a, b = (json.loads((d / "run.json").read_text()) for d in (full, resumed))
    assert a["global_step"] == b["global_step"] == 6
    losses_a, losses_b = _step_losses(full), _step_losses(resumed)
    assert losses_b[6] == pytest.approx(losses_a[6], rel=1e-5)
    weights_a, weights_b = (load_file(d / "adapter_model.safetensors") for d in (full, resumed))
    assert all(torch.allclose(weights_a[k], weights_b[k], atol=1e-6) for k in weights_a)


def test_two_process_cpu_run_trains_with_gloo_and_rank0_writes(tiny_model_dir, tmp_path):
    inputs = make_inputs(tmp_path / "inputs", subjects=3, clips=2, mode="flow", types=[0, 1])
    out = tmp_path / "run"
    argv = finetune_args(
        tiny_model_dir, inputs, out, "--holdout_subjects", "s02", "--max_steps", "2"
    )
    argv += ["--eval_strategy", "no", "--save_strategy", "no", "--eval_batch_size", "1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launch += ["--rdzv_backend", "c10d", "--rdzv_endpoint", "localhost:0", "--nnodes", "1"]
    result = subprocess.run(
        [*launch, str(REPO / "scripts" / "finetune.py"), *argv],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("saved adapter to") == 1  # only rank 0 reports and writes
    assert result.stdout.count("trainable parameters:") == 1
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and run["distributed_backend"] == "gloo"
    assert not list(out.glob(".*.tmp"))
    held = split_rows(load_inputs(inputs, "train_file"), ["s02"], inputs)[1]
    for rank in (0, 1):  # one clip (window of eval_batch_size clips) each
        assert f"rank {rank}: answered {len(held) // 2} of {len(held)} questions" in result.stderr
    assert answers_of(tiny_model_dir, out, held, run["prompt_style"]) == read_jsonl(
        out / "eval_answers.jsonl"
    )


def _bad_inputs(root: Path, problem: str) -> Path:
    inputs = make_inputs(root, subjects=2, clips=2, mode="flow", types=[0])
    rows = read_jsonl(inputs)
    if problem == "missing image":
        rows[2]["images"] = ["nowhere/flow.png"]
    write_jsonl(inputs, [] if problem == "empty" else rows)
    return inputs


@pytest.mark.parametrize(
    ("problem", "extra", "message"),
    [
        ("none", ["--preset", "everything"], "unknown LoRA preset 'everything'"),
        ("none", ["--holdout_subjects", "s09"], "held-out subject 's09' does not exist"),
        (
            "none",
            ["--max_length", "16", "--holdout_subjects", "s01"],
            "needs \\d+ tokens but max_length is 16; .*--max_length \\d+",
        ),
        ("missing image", [], "inputs.jsonl:3: visual file 'nowhere/flow.png' is missing"),
        ("empty", [], "inputs.jsonl: file is empty"),
        ("none", ["--no_such_flag", "1"], "unknown option '--no_such_flag'"),
        ("none", ["--holdout_subjects", ""], "eval_strategy is 'epoch' but nothing is held out"),
        (
            "none",
            ["--learning_rate", "fast"],
            "argument --learning_rate.*: invalid float value: 'fast' .*'me-vqa finetune --help'",
        ),
        (
            "none",
            ["--resume_from_checkpoint", "nowhere"],
            "nowhere: not a checkpoint folder .*'last' for the newest",
        ),
        (
            "none",
            ["--resume_from_checkpoint", "last"],
            "run: no checkpoint-N folder to resume from .*start afresh",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    tiny_model_dir, tmp_path, capsys, problem, extra, message
):
    inputs = _bad_inputs(tmp_path / "inputs", problem)
    out = tmp_path / "run"
    assert cli(["finetune", *finetune_args(tiny_model_dir, inputs, out, *extra)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert re.search(message, err[0]), err[0]
    assert not out.exists()


def test_missing_inputs_and_unknown_config_key(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["finetune", *finetune_args(tiny_model_dir, tmp_path / "none.jsonl", out)]) == 2
    assert "none.jsonl: file not found" in capsys.readouterr().err
    config = tmp_path / "recipe.yaml"
    config.write_text("preset: baseline\nlearning_rat: 0.1\n")
    assert cli(["finetune", "--config", str(config), "--output_dir", str(out)]) == 2
    assert "recipe.yaml:2: unknown config key 'learning_rat'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        (
            "preset: baseline\nlearning_rate: fast\n",
            "recipe.yaml:2: learning_rate 'fast' is not a float (give learning_rate a float value)",
        ),
        (
            "use_cpu: maybe\n",
            "recipe.yaml:1: use_cpu 'maybe' is not a boolean (give use_cpu a boolean value)",
        ),
        (
            "preset: baseline\nfoo: [unclosed\n",
            "recipe.yaml:3: not valid YAML: expected ',' or ']', but got '<stream end>' while "
            "parsing a flow sequence from line 2 (correct the YAML syntax)",
        ),
    ],
)
def test_a_bad_config_value_or_yaml_is_one_line_naming_its_line(tmp_path, capsys, recipe, message):
    config, out = tmp_path / "recipe.yaml", tmp_path / "run"
    config.write_text(recipe)
    assert cli(["finetune", "--config", str(config), "--output_dir", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {tmp_path}/{message}"]
    assert not out.exists()


def test_a_finished_run_is_not_trained_over(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text("{}")
    argv = ["finetune", "--train_file", str(tmp_path / "in.jsonl"), "--output_dir", str(out)]
    assert cli(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: {out}: output_dir holds a finished run (run.json); training again would "
        "replace it (choose a new --output_dir, or delete this one to train again)"
    ]
    assert (out / "run.json").read_text() == "{}"


def test_crossval_runs_every_subject_once_and_pools_the_answers(tiny_model_dir, tmp_path, capsys):
    inputs = make_inputs(tmp_path / "inputs", subjects=3, clips=2, mode="flow", types=[0])
    out = tmp_path / "cv"
    argv = finetune_args(tiny_model_dir, inputs, out, "--max_steps", "2", "--eval_strategy", "no")
    argv += ["--save_strategy", "no", "--protocol", "loso"]
    assert cli(["crossval", *argv]) == 0
    result = json.loads((out / "crossval.json").read_text())
    assert [f["subjects"] for f in result["folds"]] == [["synth/s00"], ["synth/s01"], ["synth/s02"]]
    assert result["answers"] == 6 and result["pooled"]["coarse"]["n"] == 6
    pooled = [a for d in sorted(out.glob("fold_*")) for a in read_jsonl(d / "eval_answers.jsonl")]
    assert (
        score(pooled, load_inputs(inputs, "train_file"))["coarse_uf1"]
        == result["pooled"]["coarse"]["uf1"]
    )
    rows = load_inputs(inputs, "train_file")
    fold_uf1 = [  # each fold scored on its own held-out subject, then averaged (DFME)
        score(read_jsonl(d / "eval_answers.jsonl"), [r for r in rows if r["subject"] == s])
        for d, s in zip(sorted(out.glob("fold_*")), ("s00", "s01", "s02"), strict=True)
    ]
    spread = result["per_fold"]["coarse"]["uf1"]
    values = [f["coarse_uf1"] for f in fold_uf1]
    assert spread["folds"] == 3 and spread["mean"] == pytest.approx(statistics.fmean(values))
    assert spread["std"] == pytest.approx(statistics.stdev(values))
    assert set(result["per_fold"]["fine"]) == {"accuracy", "uf1", "uar"}
    assert "per-fold coarse: accuracy" in capsys.readouterr().out
    assert cli(["crossval", *argv]) == 0  # resumable: finished folds are skipped
    assert capsys.readouterr().out.count("done already, skipped") == 3


def test_crossval_pools_a_long_videos_windows_as_one_question(tmp_path):
    """A localisation question asked per window is one inputs row per window with the same
    id; the folds' answers hold it once (merged), and so must the pooled ground truth."""
    from types import SimpleNamespace

    from vqa.crossval import pooled
    from vqa.lvqa import texts

    q = texts()["questions"]
    video = {"dataset": "samm_lv", "subject": "6", "video": "006_1", "mode": "long"}
    count = {**video, "id": "samm_lv_006_1_1", "question": q["count_total"], "answer": "1"}
    spot = {**video, "id": "samm_lv_006_1_2", "question": q["spot_micro"]}
    truth = [  # the event 95-110 crosses the border of window 1-100
        {**count, "frames": ["v/1.jpg", "v/150.jpg"]},
        {**spot, "answer": "95-100", "frames": ["v/1.jpg"], "window": [1, 100], "frame_offset": 0},
        {**spot, "answer": "45-60", "frames": ["v/5.jpg"], "window": [51, 150], "frame_offset": 50},
    ]
    fold = tmp_path / "cv" / "fold_00"
    fold.mkdir(parents=True)
    (fold / "run.json").write_text(json.dumps({"final_metrics": {}}))
    answers = [
        {k: v for k, v in count.items() if k != "mode"},
        {**{k: v for k, v in spot.items() if k != "mode"}, "answer": "95-110"},
    ]
    write_jsonl(fold / "eval_answers.jsonl", answers)
    args = SimpleNamespace(training=SimpleNamespace(output_dir=str(tmp_path / "cv")))
    result = pooled(args, [["samm_lv/6"]], truth)
    spotting = result["pooled"]["spotting"]
    assert (spotting["tp"], spotting["fp"], spotting["fn"]) == (1, 0, 0)
    assert result["pooled"]["lvqa"]["count"]["total"]["mae"] == 0
    assert result["answers"] == 2 and result["pooled"]["n_answers"] == 2


def test_crossval_checks_every_fold_and_the_protocol_before_writing(tmp_path, capsys):
    inputs = make_inputs(tmp_path / "inputs", subjects=2, clips=1, mode="flow", types=[0])
    folds = tmp_path / "folds.json"
    plan = [{"fold": 0, "test": ["synth/s01"]}, {"fold": 1, "test": ["casme2/sub01"]}]
    folds.write_text(json.dumps({"protocol": "loso", "folds": plan}))
    out = tmp_path / "cv"
    argv = ["crossval", "--train_file", str(inputs), "--output_dir", str(out)]
    assert cli([*argv, "--folds", str(folds)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {inputs}: held-out subject 'casme2/sub01' does not exist "
        "(use one of synth/s00, synth/s01)"
    ]
    assert cli([*argv, "--protocol", "foo"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: argument --protocol: invalid choice: 'foo' (choose from 'loso', 'kfold') "
        "(see 'me-vqa crossval --help')"
    ]
    assert not out.exists()


def test_fold_of_a_split_file_holds_out_its_test_subjects(tmp_path):
    inputs = make_inputs(tmp_path / "inputs", subjects=3, clips=1, mode="flow", types=[0])
    folds = tmp_path / "folds.json"
    plan = [{"fold": 0, "test": ["synth/s01"], "train": ["synth/s00", "synth/s02"]}]
    folds.write_text(json.dumps({"protocol": "loso", "folds": plan}))
    argv = ["--train_file", str(inputs), "--output_dir", str(tmp_path / "o"), "--folds", str(folds)]
    train, held = load_data(parse_args([*argv, "--fold", "0"]))
    assert {r["subject"] for r in held} == {"s01"} and {r["subject"] for r in train} == {
        "s00",
        "s02",
    }
    with pytest.raises(UserError, match="fold 3 does not exist"):
        load_data(parse_args([*argv, "--fold", "3"]))


def test_trainer_optimizer_uses_a_learning_rate_per_part(tiny_model_dir, tmp_path):
    inputs = make_inputs(tmp_path / "inputs", subjects=1, clips=1, mode="flow", types=[0])
    argv = finetune_args(tiny_model_dir, inputs, tmp_path / "o", "--eval_strategy", "no")
    args = parse_args([*argv, "--vision_lr", "1e-5", "--merger_lr", "2e-5", "--llm_lr", "3e-5"])
    model = build_model(args)
    trainer = make_trainer_class()(
        model=model, args=args.training, part_lrs=part_lrs(args), eval_rows=[], style="plain",
        gen_batch_size=1,
    )  # fmt: skip
    optimizer = trainer.create_optimizer()
    sizes: dict[float, int] = {}
    for group in optimizer.param_groups:
        sizes[group["lr"]] = sizes.get(group["lr"], 0) + sum(p.numel() for p in group["params"])
    counts = lora.trainable_counts(model)
    assert sizes == {1e-5: counts["vision"], 2e-5: counts["merger"], 3e-5: counts["llm"]}


def test_a_part_learning_rate_of_zero_is_zero_and_a_missing_one_is_the_base(tmp_path):
    argv = ["--train_file", str(tmp_path / "in.jsonl"), "--output_dir", str(tmp_path / "o")]
    args = parse_args([*argv, "--learning_rate", "1e-4", "--vision_lr", "0", "--llm_lr", "0"])
    assert part_lrs(args) == {"vision": 0.0, "merger": 1e-4, "llm": 0.0, "other": 1e-4}
