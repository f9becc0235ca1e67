"""Fine-tuning arguments: ``HfArgumentParser`` dataclasses, a YAML config and CLI overrides.

``--config recipe.yaml`` sets any field of the four dataclasses (model, data, LoRA and
``transformers.TrainingArguments``); flags given on the command line override it. Unknown
keys in the YAML file and unknown flags are user errors.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vqa import question_types
from vqa.errors import UserError
from vqa.lora import PRESETS
from vqa.model import DEFAULT_MODEL

# A config value's expected type as its error names it (others: "a <type name>").
TYPE_NAMES = {"int": "an int", "string_to_bool": "a boolean"}

# Help shared by the per-part learning rates: unset is the base rate, 0 is 0.
PART_LR = (
    "; left out: learning_rate; 0: the part learns nothing (its weights stay as initialised; "
    "a preset without the part does that more cheaply)"
)


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": "hub id or local folder of the base model (Qwen2.5-VL, Qwen3-VL, Qwen3.5)"
        },
    )
    dtype: str = field(
        default="auto",
        metadata={"help": "auto (bf16 where supported, else fp32), bfloat16, float16, float32"},
    )
    attn_implementation: str = field(
        default="auto",
        metadata={"help": "auto (flash_attention_2 when installed, else sdpa), sdpa, eager"},
    )
    min_pixels: int | None = field(
        default=None, metadata={"help": "processor min_pixels (default: the model's)"}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "processor max_pixels (default: the model's)"}
    )


@dataclass
class DataArguments:
    train_file: str | None = field(
        default=None, metadata={"help": "inputs.jsonl from me-vqa build-inputs"}
    )
    eval_file: str | None = field(
        default=None,
        metadata={"help": "separate held-out inputs.jsonl (instead of a subject split)"},
    )
    holdout_subjects: str | None = field(
        default=None,
        metadata={
            "help": "comma list of held-out subjects, '<dataset>/<subject>' or bare '<subject>'"
        },
    )
    fold: int | None = field(default=None, metadata={"help": "held-out fold number in --folds"})
    folds: str | None = field(default=None, metadata={"help": "folds file written by me-vqa split"})
    prompt_style: str = field(
        default="plain", metadata={"help": "prompt style of prompts/inference.yaml"}
    )
    max_length: int = field(
        default=4096,
        metadata={"help": "longest sample in tokens; longer ones are an error, never cut"},
    )
    eval_max_rows: int | None = field(
        default=None, metadata={"help": "answer at most this many held-out rows per evaluation"}
    )
    eval_batch_size: int = field(
        default=8, metadata={"help": "batch size of generation during evaluation"}
    )
    question_types: str | None = field(
        default=None,
        metadata={
            "help": "train and evaluate on these question types only (comma list of "
            f"{', '.join(question_types.names())}); default all"
        },
    )


@dataclass
class LoraArguments:
    preset: str = field(
        default="baseline",
        metadata={
            "help": "LoRA preset: " + "; ".join(f"{k}: {p.description}" for k, p in PRESETS.items())
        },
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    vision_lr: float | None = field(default=None, metadata={"help": "vision tower lr" + PART_LR})
    merger_lr: float | None = field(default=None, metadata={"help": "merger lr" + PART_LR})
    llm_lr: float | None = field(default=None, metadata={"help": "language model lr" + PART_LR})


@dataclass
class Arguments:
    """Everything one fine-tuning run needs, plus the config it was read from."""

    model: ModelArguments
    data: DataArguments
    lora: LoraArguments
    training: object  # transformers.TrainingArguments
    config: Path | None = None
    extras: dict = field(default_factory=dict)  # options a command added to the parser

    def resolved(self) -> dict:
        """All fields as plain values, TrainingArguments included (for the run folder)."""
        out = {}
        for part in (self.model, self.data, self.lora):
            out.update(dataclasses.asdict(part))
        out.update(self.training.to_dict())
        return out


def _dataclass_types() -> tuple:
    from transformers import TrainingArguments

    return (ModelArguments, DataArguments, LoraArguments, TrainingArguments)


def field_names() -> set[str]:
    return {f.name for t in _dataclass_types() for f in dataclasses.fields(t) if f.init}


def _load_config(path: Path, parser: argparse.ArgumentParser) -> dict:
    if not path.is_file():
        raise UserError("config file not found", file=path, fix="check the path")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise _yaml_error(e, path) from None
    if not isinstance(data, dict):
        raise UserError("config must be a mapping of argument names to values", file=path)
    unknown = sorted(set(data) - field_names())
    if unknown:
        raise UserError(
            f"unknown config key {unknown[0]!r}",
            file=path,
            row=_line_of(text, unknown[0]),
            fix="see 'me-vqa finetune --help' for the keys",
        )
    _check_values(data, parser, path, text)
    return data


def _yaml_error(e: yaml.YAMLError, path: Path) -> UserError:
    """One line for a YAML syntax error: its line, its problem and where the construct began."""
    mark, context = getattr(e, "problem_mark", None), getattr(e, "context_mark", None)
    what = getattr(e, "problem", None) or str(e).splitlines()[0]
    if getattr(e, "context", None) and context is not None:
        what += f" {e.context} from line {context.line + 1}"
    row = mark.line + 1 if mark is not None else None
    return UserError(f"not valid YAML: {what}", file=path, row=row, fix="correct the YAML syntax")


def _check_values(data: dict, parser: argparse.ArgumentParser, path: Path, text: str) -> None:
    """Every text value converts to its option's type, as argparse converts the same flag."""
    for action in parser._actions:
        value = data.get(action.dest)
        if not isinstance(value, str) or not callable(action.type):
            continue
        try:
            action.type(value)
        except (TypeError, ValueError, argparse.ArgumentTypeError):
            name = action.type.__name__
            kind = TYPE_NAMES.get(name, f"a {name}")
            raise UserError(
                f"{action.dest} {value!r} is not {kind}",
                file=path,
                row=_line_of(text, action.dest),
                fix=f"give {action.dest} {kind} value",
            ) from None


def _line_of(text: str, key: str) -> int | None:
    """The 1-based line of the top-level ``key`` in YAML ``text``."""
    lines = (k.start_mark.line + 1 for k, _ in yaml.compose(text).value if k.value == key)
    return next(lines, None)


def build_parser(prog: str, description: str):
    from transformers import HfArgumentParser

    parser = HfArgumentParser(
        _dataclass_types(),
        prog=prog,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        exit_on_error=False,  # parse_args turns a bad value into one UserError line
    )
    parser.add_argument("--config", type=Path, help="YAML recipe; command-line flags override it")
    return parser


def parse_args(
    argv: list[str], prog: str = "me-vqa finetune", description: str = "", extra=None
) -> Arguments:
    """Parse ``argv`` (``--config`` YAML first, then flags) into :class:`Arguments`.

    ``extra(parser)`` may add a command's own options; their values land in ``extras``.
    """
    see_help = f"see '{prog} --help'"
    pre = argparse.ArgumentParser(prog=prog, add_help=False, exit_on_error=False)
    pre.add_argument("--config", type=Path)
    try:
        config = pre.parse_known_args(argv)[0].config
        parser = build_parser(prog, description)
        if extra is not None:
            extra(parser)
        if config is not None:
            parser.set_defaults(**_load_config(config, parser))
        *parts, rest = parser.parse_args_into_dataclasses(args=argv, return_remaining_strings=True)
    except argparse.ArgumentError as e:  # a bad flag value: one line, not the 120-line usage
        raise UserError(str(e), fix=see_help) from None
    except ValueError as e:  # TrainingArguments.__post_init__ rejects inconsistent settings
        raise UserError(f"invalid arguments: {e}", file=config) from None
    if rest:
        raise UserError(f"unknown option {rest[0]!r}", fix=see_help)
    model, data, lora, training = parts[:4]
    extras = {k: v for k, v in vars(parts[4]).items() if k != "config"} if len(parts) > 4 else {}
    return Arguments(model, data, lora, training, config, extras)


def with_overrides(args: Arguments, **changes) -> Arguments:
    """A copy of ``args`` with some fields (of any of the four dataclasses) replaced."""
    parts = {"model": args.model, "data": args.data, "lora": args.lora, "training": args.training}
    for key, value in changes.items():
        owner = next(
            (n for n, p in parts.items() if key in {f.name for f in dataclasses.fields(p)}), None
        )
        if owner is None:
            raise UserError(f"unknown argument {key!r}")
        parts[owner] = dataclasses.replace(parts[owner], **{key: value})
    return Arguments(**parts, config=args.config, extras=args.extras)
