"""The shipped training recipes parse with the installed transformers, and a best-checkpoint
metric that evaluating the held-out rows does not measure is refused before training."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from train_fixtures import make_inputs

from vqa.args import parse_args
from vqa.cli import main as cli
from vqa.errors import UserError
from vqa.train import FLAT_METRICS, check_best_metric, with_mixed_precision

RECIPES = sorted((Path(__file__).parents[1] / "scripts" / "configs").glob("*.yaml"))
COUNT_ROW = {
    "id": "samm_lv_006_1_1",
    "dataset": "samm_lv",
    "subject": "6",
    "video": "006_1",
    "question": "How many expression events appear in this video?",
    "answer": "3",
}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_every_shipped_recipe_parses_and_names_a_measured_metric(recipe, tmp_path):
    training = parse_args(["--config", str(recipe), "--output_dir", str(tmp_path)]).training
    assert training.metric_for_best_model in FLAT_METRICS


def test_a_metric_the_held_out_rows_do_not_measure_is_refused(tiny_model_dir, tmp_path, capsys):
    inputs = make_inputs(tmp_path / "inputs", subjects=2, clips=1, types=[6])  # analysis rows
    out = tmp_path / "run"
    argv = ["finetune", "--config", str(RECIPES[-1]), "--model_name_or_path", str(tiny_model_dir)]
    argv += ["--train_file", str(inputs), "--holdout_subjects", "synth/s00"]
    argv += ["--eval_strategy", "epoch", "--save_strategy", "epoch", "--output_dir", str(out)]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: metric_for_best_model 'coarse_uf1' is not measured"), err
    assert err.endswith("(set --metric_for_best_model to one of loss)") and not out.exists()
    assert len(err.splitlines()) == 1


def test_long_video_rows_measure_their_own_metrics_and_not_the_clips():
    training = SimpleNamespace(
        metric_for_best_model="coarse_uf1", eval_strategy="epoch", greater_is_better=False
    )
    with pytest.raises(UserError, match="one of count_total_mae, loss\\)"):
        check_best_metric(training, [COUNT_ROW])
    check_best_metric(
        SimpleNamespace(**{**vars(training), "metric_for_best_model": "eval_count_total_mae"}),
        [COUNT_ROW],
    )


def test_a_count_error_as_best_metric_needs_greater_is_better_false(tmp_path):
    """The Trainer takes any metric not named loss as higher-is-better: with the count MAE it
    would keep the worst checkpoint."""
    argv = ["--config", str(RECIPES[0]), "--output_dir", str(tmp_path)]
    argv += ["--metric_for_best_model", "count_total_mae"]
    training = parse_args(argv).training
    with pytest.raises(UserError, match="lower-is-better.*add --greater_is_better false"):
        check_best_metric(training, [COUNT_ROW])
    check_best_metric(parse_args([*argv, "--greater_is_better", "false"]).training, [COUNT_ROW])


def test_the_3b_flow_recipe_runs_on_the_tiny_model_with_cpu_overrides(tiny_model_dir, tmp_path):
    """The GPU recipe's own settings (evaluation and a best checkpoint per epoch, data loader
    workers, activation checkpointing, tensorboard) run end to end; only the size is changed."""
    inputs = make_inputs(tmp_path / "inputs", subjects=2, clips=2, types=[0, 1])
    out = tmp_path / "run"
    recipe = RECIPES[0].with_name("qwen2_5_vl_3b_flow.yaml")
    argv = ["finetune", "--config", str(recipe), "--model_name_or_path", str(tiny_model_dir)]
    argv += ["--train_file", str(inputs), "--holdout_subjects", "synth/s00", "--use_cpu", "true"]
    argv += ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1"]
    argv += ["--min_pixels", "3136", "--max_pixels", "3136", "--output_dir", str(out)]
    assert cli(argv) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["best_checkpoint"] and run["preset"] == "baseline", run
    assert "eval_coarse_uf1" in run["final_metrics"] and list(out.glob("runs/*/events.out.*"))


def test_auto_dtype_turns_bf16_mixed_precision_on_where_the_trainer_reads_it(monkeypatch):
    """The Trainer's accelerator (and DeepSpeed's "auto") take the mixed precision the
    TrainingArguments settled when made: bf16 must be on then, not set afterwards."""
    import torch
    import transformers.training_args

    import vqa.model

    def ampere(use_cpu: bool = False) -> torch.dtype:  # what pick_dtype says on an A100
        return torch.float32 if use_cpu else torch.bfloat16

    monkeypatch.setattr(vqa.model, "pick_dtype", ampere)
    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda: True)
    args = parse_args(["--config", str(RECIPES[0]), "--output_dir", "unused"])
    assert args.training.mixed_precision == "no"
    training = with_mixed_precision(args).training
    assert training.bf16 and training.mixed_precision == "bf16"
    cpu = parse_args(["--config", str(RECIPES[0]), "--output_dir", "unused", "--use_cpu", "true"])
    assert with_mixed_precision(cpu).training.mixed_precision == "no"


@pytest.mark.parametrize("version, refused", [("0.18.9", True), ("0.19.3", False)])
def test_zero3_with_activation_checkpointing_needs_a_deepspeed_that_supports_it(
    monkeypatch, tmp_path, version, refused
):
    import sys

    import transformers.integrations

    from vqa.train import prepare

    monkeypatch.setattr(transformers.integrations, "is_deepspeed_zero3_enabled", lambda: True)
    monkeypatch.setitem(sys.modules, "deepspeed", SimpleNamespace(__version__=version))
    training = parse_args(["--config", str(RECIPES[0]), "--output_dir", str(tmp_path)]).training
    assert training.activation_checkpointing
    if refused:
        with pytest.raises(UserError, match=f"DeepSpeed {version} fails ZeRO-3 .*zero2.yaml"):
            prepare(training)
    else:
        prepare(training)
