"""``me-vqa finetune``: LoRA fine-tuning of Qwen2.5-VL on inputs.jsonl with the HF Trainer.

Runs the same under ``python``, ``torchrun`` and ``accelerate launch`` (one GPU, DDP,
DeepSpeed): the Trainer owns devices, precision, checkpointing and distribution; this module
adds the data split, the LoRA preset, per-part learning rates and an evaluation that answers
the held-out questions by greedy generation and scores them with the package's scorer.
The output folder holds the adapter, the processor, ``config.yaml``, ``run.json``, the loss
curve, tensorboard logs and the held-out answers of the final model.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import platform
import subprocess
import time
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from vqa import __version__, lora
from vqa.args import Arguments, parse_args, with_overrides
from vqa.errors import UserError
from vqa.folds import holdout_subjects, split_rows, subject_of
from vqa.jsonl import atomic_path, read_jsonl, write_jsonl, write_text_atomic
from vqa.prompts import PROMPT_STYLES
from vqa.question_types import names, question_type
from vqa.records import BASE_KEY, check_row, qa_part, visual_files

DESCRIPTION = (
    "LoRA fine-tune Qwen2.5-VL on inputs.jsonl. Arguments come from --config YAML (any field "
    "below) and are overridden by flags. Launch with python, torchrun or accelerate launch."
)


# ---------------------------------------------------------------- data


def check_rows(rows: list[dict], inputs_dir: Path, file: Path) -> None:
    """Every row has a question, a non-empty answer and visual files that exist."""
    for lineno, row in enumerate(tqdm(rows, desc="check inputs", disable=len(rows) < 2000), 1):
        for key in ("question", "answer"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise UserError(
                    f"row has no {key}", file=file, row=lineno, fix="train on rows with answers"
                )
        if not visual_files(row):
            raise UserError(
                "row has no images or frames",
                file=file,
                row=lineno,
                fix="rebuild with build-inputs",
            )
        check_row(row, inputs_dir, file, lineno)


def load_inputs(path: str | Path | None, what: str) -> list[dict]:
    if not path:
        raise UserError(f"no {what} given", fix=f"set {what} in the config or pass --{what}")
    path = Path(path)
    rows = read_jsonl(path)
    check_rows(rows, path.parent, path)
    base = str(path.parent.resolve())
    return [{**row, BASE_KEY: base} for row in rows]


def load_data(args: Arguments) -> tuple[list[dict], list[dict]]:
    """Training and held-out rows, split by subject (never by clip)."""
    data = args.data
    if data.prompt_style not in PROMPT_STYLES:
        raise UserError(
            f"unknown prompt style {data.prompt_style!r}",
            fix=f"use one of {', '.join(PROMPT_STYLES)}",
        )
    rows = of_question_types(load_inputs(data.train_file, "train_file"), data.question_types)
    holdout = holdout_subjects(data.holdout_subjects, data.folds, data.fold)
    train, held = split_rows(rows, holdout, Path(data.train_file)) if holdout else (rows, [])
    if not train:
        raise UserError("every subject is held out; nothing left to train on", file=data.train_file)
    if data.eval_file:
        held += of_question_types(load_inputs(data.eval_file, "eval_file"), data.question_types)
    return train, held


def of_question_types(rows: list[dict], types: str | None) -> list[dict]:
    """The rows whose question is of one of ``types`` (a comma list; None keeps all)."""
    if not types:
        return rows
    known = names()
    wanted = {t.strip() for t in types.split(",") if t.strip()}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise UserError(f"unknown question type {unknown[0]!r}", fix=f"use {', '.join(known)}")
    return [r for r in rows if question_type(r["question"]) in wanted]


def as_dataset(rows: list[dict]):
    """A ``datasets.Dataset`` with the union of the rows' keys (absent ones None)."""
    from datasets import Dataset

    keys = list(dict.fromkeys(k for r in rows for k in r))
    return Dataset.from_list([{k: r.get(k) for k in keys} for r in rows])


def data_hash(rows: list[dict]) -> str:
    """sha256 over the training rows and the bytes of every visual file they use."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(
            json.dumps(qa_part(row) | {"visuals": visual_files(row)}, sort_keys=True).encode()
        )
    files = sorted({(r[BASE_KEY], rel) for r in rows for rel in visual_files(r)})
    for base, rel in tqdm(files, desc="hash inputs", disable=len(files) < 2000):
        digest.update(rel.encode() + (Path(base) / rel).read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- evaluation


def answer_rows(model, processor, rows: list[dict], style: str, batch_size: int) -> list[dict]:
    """Greedy answers for loaded ``rows`` as qa rows with ``answer`` replaced (order kept).

    With several processes each answers its share and every process gets all answers.
    """
    from vqa import answering
    from vqa.infer import answer_file_rows

    answers = answering.answer_rows(model, processor, rows, style=style, batch_size=batch_size)
    return answer_file_rows(rows, [answers[i] for i in range(len(rows))], consistency=False)


ZERO3_CHECKPOINTING_DEEPSPEED = "0.19.3"  # the first to keep frozen weights in a recompute

FLAT_METRICS = {  # name in run.json / eval logs -> path in the scorer's metrics
    **{f"{level}_{m}": (level, m) for level in ("coarse", "fine") for m in ("uf1", "uar")},
    "count_total_mae": ("lvqa", "count", "total", "mae"),
    "au_inventory_f1": ("lvqa", "au_inventory", "f1"),
    "event_type_uf1": ("lvqa", "event_type", "uf1"),
    "spotting_f1": ("spotting", "f1"),
}


def score(predictions: list[dict], truth: list[dict]) -> dict[str, float]:
    """Flat metrics from the package's scorer: coarse/fine UF1 and UAR, and for long videos
    the total count MAE, F1_AU, type UF1 and spotting F1 (missing ones skipped)."""
    from vqa.infer import true_answer_rows
    from vqa.score import score_rows

    metrics = score_rows(predictions, true_answer_rows(truth))["overall"]
    flat = {}
    for name, path in FLAT_METRICS.items():
        value = metrics
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            flat[name] = float(value)
    return flat


def check_best_metric(training, eval_rows: list[dict]) -> None:
    """Refuse, before training, a ``metric_for_best_model`` that evaluating these held-out rows
    does not measure (the Trainer would stop at the first evaluation)."""
    from vqa.infer import true_answer_rows

    name = (training.metric_for_best_model or "").removeprefix("eval_")
    if not name or not eval_rows or training.eval_strategy == "no":
        return
    with contextlib.redirect_stderr(io.StringIO()):  # the scorer's progress bar: not a run yet
        measured = {"loss", *score(true_answer_rows(eval_rows), eval_rows)}
    if name not in measured:
        raise UserError(
            f"metric_for_best_model {name!r} is not measured on these held-out rows",
            fix=f"set --metric_for_best_model to one of {', '.join(sorted(measured))}",
        )
    if name.endswith("_mae") and training.greater_is_better:
        raise UserError(
            f"metric_for_best_model {name!r} is lower-is-better, but greater_is_better is true "
            "(the Trainer's default for a metric not named loss): the worst checkpoint would win",
            fix="add --greater_is_better false",
        )


def make_trainer_class():
    """The Trainer subclass (built lazily so importing this module stays light)."""
    from transformers import Trainer

    class VqaTrainer(Trainer):
        """Per-part learning rates, and evaluation by answering and scoring held-out rows."""

        def __init__(self, *a, part_lrs, eval_rows, style, gen_batch_size, **kw):
            super().__init__(*a, **kw)
            self.part_lrs, self.eval_rows = part_lrs, eval_rows
            self.style, self.gen_batch_size = style, gen_batch_size
            self.last_answers: list[dict] = []

        def create_optimizer(self, model=None):
            model = self.model if model is None else model
            if self.optimizer is None:
                decay = set(self.get_decay_parameter_names(model))
                groups = lora.param_groups(model, self.part_lrs, self.args.weight_decay, decay)
                cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
                self.optimizer = cls(groups, **kwargs)
            return self.optimizer

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            if self.eval_rows:
                self.last_answers = answer_rows(
                    self.model,
                    self.processing_class,
                    self.eval_rows,
                    self.style,
                    self.gen_batch_size,
                )
                measured = score(self.last_answers, self.eval_rows)
                best = (self.args.metric_for_best_model or "").removeprefix("eval_")
                if best in FLAT_METRICS and best not in measured:  # e.g. no count parsed yet
                    measured[best] = -math.inf if self.args.greater_is_better else math.inf
                scores = {f"{metric_key_prefix}_{k}": v for k, v in measured.items()}
                self.log(scores)
                metrics.update(scores)
            return metrics

    return VqaTrainer


# ---------------------------------------------------------------- model


def resolve_precision(args: Arguments) -> tuple[torch.dtype, str]:
    """The model dtype and attention kernel; ``auto`` picks bf16 + flash-attn where possible
    (never with ``use_cpu``)."""
    from vqa.model import pick_attention, resolve_dtype

    cpu = args.training.use_cpu
    dtype = resolve_dtype(args.model.dtype, cpu)
    attn = args.model.attn_implementation
    return dtype, pick_attention(dtype, cpu) if attn == "auto" else attn


def with_mixed_precision(args: Arguments) -> Arguments:
    """``args`` with bf16 mixed precision on where ``dtype: auto`` loads the model in bfloat16.
    The TrainingArguments are made again: the Trainer (and DeepSpeed) read the mixed precision
    they settled when they were made, so a ``bf16`` flag set later is ignored."""
    training = args.training
    if args.model.dtype != "auto" or training.fp16 or training.bf16:
        return args
    if resolve_precision(args)[0] != torch.bfloat16:
        return args
    return with_overrides(args, bf16=True)


def build_model(args: Arguments):
    """Base model with the LoRA preset applied, ready for (checkpointed) training."""
    from peft import get_peft_model
    from transformers.integrations import is_deepspeed_zero3_enabled

    from vqa.model import load_model

    dtype, attn = resolve_precision(args)
    device_map = None
    if torch.cuda.is_available() and not is_deepspeed_zero3_enabled():
        device_map = {"": args.training.device}  # each rank loads onto its own GPU
    model = load_model(
        args.model.model_name_or_path, dtype=dtype, attn_implementation=attn, device_map=device_map
    )
    config = lora.lora_config(
        args.lora.preset, args.lora.lora_r, args.lora.lora_alpha, args.lora.lora_dropout, model
    )
    if args.training.activation_checkpointing:
        model.enable_input_require_grads()  # LoRA on the vision tower needs grads at its input
    return get_peft_model(model, config)


def part_lrs(args: Arguments) -> dict[str, float]:
    base = args.training.learning_rate
    a = args.lora
    return {
        "vision": base if a.vision_lr is None else a.vision_lr,
        "merger": base if a.merger_lr is None else a.merger_lr,
        "llm": base if a.llm_lr is None else a.llm_lr,
        "other": base,
    }


# ---------------------------------------------------------------- outputs


def _is_score(key: str, value) -> bool:
    """Metrics worth keeping: losses and scores, not timings."""
    timing = "runtime" in key or "per_second" in key or key == "epoch"
    return isinstance(value, (int, float)) and not timing


def dist_backend() -> str | None:
    """torch.distributed's backend (gloo on CPU, nccl on GPUs), None when not distributed."""
    dist = torch.distributed
    return dist.get_backend() if dist.is_available() and dist.is_initialized() else None


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def versions() -> dict[str, str]:
    import accelerate
    import peft
    import transformers

    return {
        "me_vqa": __version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "torch": torch.__version__,
        "accelerate": accelerate.__version__,
        "python": platform.python_version(),
    }


def plot_loss(log_history: list[dict], path: Path) -> None:
    """Training (and evaluation) loss against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("loss", "train"), ("eval_loss", "held-out")):
        points = [(h["step"], h[key]) for h in log_history if key in h]
        if points:
            ax.plot(
                *zip(*points, strict=True), marker="o" if key == "eval_loss" else None, label=label
            )
    ax.set(xlabel="step", ylabel="loss", title="fine-tuning loss")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_outputs(trainer, args: Arguments, info: dict, answers: list[dict]) -> None:
    """Adapter, processor, config, loss curve, held-out answers, then run.json, which marks the
    run finished (crossval and the demo skip it), so a kill before it leaves no false finish
    (rank 0 only)."""
    out = Path(args.training.output_dir)
    trainer.save_model(str(out))  # peft save_pretrained: adapter + modules_to_save weights
    if not trainer.is_world_process_zero():
        return
    trainer.processing_class.save_pretrained(str(out))
    write_text_atomic(out / "config.yaml", yaml.safe_dump(args.resolved(), sort_keys=False))
    plot_loss(trainer.state.log_history, out / "loss.png")
    if answers:
        write_jsonl(out / "eval_answers.jsonl", answers)
    write_text_atomic(out / "run.json", json.dumps(info, indent=2) + "\n")  # last: "finished"


# ---------------------------------------------------------------- run


def prepare(training) -> None:
    """TrainingArguments settings this pipeline relies on; the output folder and the
    checkpoint to resume from are checked before anything is written."""
    if not training.output_dir:
        raise UserError(
            "no output_dir given", fix="set output_dir in the config or pass --output_dir"
        )
    training.remove_unused_columns = False  # the collator needs the raw rows
    if training.activation_checkpointing:  # re-entrant checkpointing starves vision LoRA of grads
        kwargs = dict(training.activation_checkpointing_kwargs or {})
        training.activation_checkpointing_kwargs = {**kwargs, "use_reentrant": False}
        check_zero3_checkpointing()
    training.resume_from_checkpoint = resume_checkpoint(training)
    if (Path(training.output_dir) / "run.json").is_file() and not training.resume_from_checkpoint:
        raise UserError(
            "output_dir holds a finished run (run.json); training again would replace it",
            file=training.output_dir,
            fix="choose a new --output_dir, or delete this one to train again",
        )


def check_zero3_checkpointing() -> None:
    """Refuse ZeRO-3 with activation checkpointing on a DeepSpeed older than 0.19.3: it frees
    the frozen (non-LoRA) weights inside the recompute and the first backward fails."""
    from packaging.version import Version
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return
    import deepspeed

    if Version(deepspeed.__version__) < Version(ZERO3_CHECKPOINTING_DEEPSPEED):
        raise UserError(
            f"DeepSpeed {deepspeed.__version__} fails ZeRO-3 with activation checkpointing and "
            "frozen weights",
            fix=f"pip install 'deepspeed>={ZERO3_CHECKPOINTING_DEEPSPEED}', or set "
            "activation_checkpointing false, or launch with zero2.yaml",
        )


def resume_checkpoint(training) -> str | None:
    """The checkpoint folder to resume from (None: start afresh), checked before anything is
    written; "last" (or "true") is the newest checkpoint-N folder in output_dir."""
    from transformers.trainer_utils import get_last_checkpoint

    wanted = training.resume_from_checkpoint
    if not wanted:
        return None
    if wanted in ("true", "True", "last"):
        out = training.output_dir
        last = get_last_checkpoint(out) if Path(out).is_dir() else None
        if last is None:
            raise UserError(
                "no checkpoint-N folder to resume from",
                file=out,
                fix="leave out --resume_from_checkpoint to start afresh",
            )
        return last
    if not (Path(wanted) / "trainer_state.json").is_file():
        raise UserError(
            "not a checkpoint folder (no trainer_state.json)",
            file=wanted,
            fix="give a checkpoint-N folder of an earlier run, or 'last' for the newest in "
            "--output_dir",
        )
    return wanted


def preflight(collator, rows: list[dict]) -> None:
    """Collate the longest sample of each visual layout so that a too-small max_length or a
    broken picture fails before training starts (and before anything is written)."""
    layouts: dict[tuple, list[dict]] = {}
    for row in rows:
        layout = (len(row.get("images") or []), len(row.get("frames") or []))
        layouts.setdefault(layout, []).append(row)
    for group in layouts.values():
        collator([max(group, key=lambda r: len(r["question"]) + len(r["answer"]))])


def run_info(
    args: Arguments, trainer, train_rows: list[dict], held_rows: list[dict], eval_rows: list[dict]
) -> dict:
    """run.json without the training outcome: versions, data, model and LoRA settings.

    ``held_rows`` are all held-out rows, ``eval_rows`` those answered (``--eval_max_rows``).
    """
    peft_config = trainer.model.peft_config["default"]
    return {
        "versions": versions(),
        "git_commit": git_commit(),
        "base_model": args.model.model_name_or_path,
        "preset": args.lora.preset,
        "target_modules": peft_config.target_modules,
        "modules_to_save": sorted(peft_config.modules_to_save or []),
        "prompt_style": args.data.prompt_style,
        "dtype": str(trainer.model.dtype).removeprefix("torch."),
        "attn_implementation": trainer.model.config._attn_implementation,
        "world_size": args.training.world_size,
        "distributed_backend": dist_backend(),
        "train_file": str(Path(args.data.train_file).resolve()),
        "train_rows": len(train_rows),
        "eval_rows": len(eval_rows),
        "heldout_subjects": sorted({subject_of(r) for r in held_rows}),
        "train_data_sha256": data_hash(train_rows),
        "trainable_parameters": lora.trainable_counts(trainer.model),
        "config": str(args.config) if args.config else None,
    }


def run(args: Arguments) -> dict:
    """Train, evaluate and save one run; returns run.json's content."""
    from transformers import set_seed

    from vqa.collator import TrainCollator
    from vqa.model import load_processor, model_family

    args = with_mixed_precision(args)
    prepare(args.training)
    lora.check_family(args.lora.preset, model_family(args.model.model_name_or_path))
    train_rows, held_rows = load_data(args)
    eval_rows = held_rows[: args.data.eval_max_rows]  # None keeps all
    if not eval_rows and args.training.eval_strategy != "no":
        raise UserError(
            f"eval_strategy is {args.training.eval_strategy.value!r} but nothing is held out",
            fix="pass --holdout_subjects, --fold or --eval_file, or --eval_strategy no",
        )
    check_best_metric(args.training, eval_rows)
    model_args = args.model
    processor = load_processor(
        model_args.model_name_or_path,
        min_pixels=model_args.min_pixels,
        max_pixels=model_args.max_pixels,
        padding_side="right",
    )
    collator = TrainCollator(processor, None, args.data.prompt_style, args.data.max_length)
    preflight(collator, train_rows + eval_rows)
    set_seed(args.training.seed)  # LoRA weights are initialised before the Trainer seeds
    model = build_model(args)
    if args.training.process_index == 0:
        print(lora.format_counts(lora.trainable_counts(model)), flush=True)
    trainer = make_trainer_class()(
        model=model,
        args=args.training,
        train_dataset=as_dataset(train_rows),
        eval_dataset=as_dataset(eval_rows) if eval_rows else None,
        data_collator=collator,
        processing_class=processor,
        part_lrs=part_lrs(args),
        eval_rows=eval_rows,
        style=args.data.prompt_style,
        gen_batch_size=args.data.eval_batch_size,
    )
    info = run_info(args, trainer, train_rows, held_rows, eval_rows)
    started = time.time()
    result = trainer.train(resume_from_checkpoint=args.training.resume_from_checkpoint)
    final = trainer.evaluate() if eval_rows else {}
    info |= {
        "global_step": trainer.state.global_step,
        "train_loss": result.training_loss,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "final_metrics": {k: v for k, v in final.items() if _is_score(k, v)},
        "train_seconds": round(time.time() - started, 2),
    }
    write_outputs(trainer, args, info, trainer.last_answers)
    return info


def main(argv: list[str]) -> int:
    args = parse_args(argv, "me-vqa finetune", DESCRIPTION)
    info = run(args)
    if args.training.process_index == 0:
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in info["final_metrics"].items())
        where = f"saved adapter to {args.training.output_dir} (step {info['global_step']})"
        print(where + (f": {metrics}" if metrics else ""))
    return 0
