"""``me-vqa`` command line: one subcommand per step of the ME-VQA workflow.

Each subcommand lives in the module that implements it; that module defines
``main(argv: list[str]) -> int | None`` and parses its own arguments with prog
``me-vqa <command>``. Modules are imported only when their command runs, so
``me-vqa score`` never loads OpenCV and ``me-vqa --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from vqa.errors import UserError

# command -> (module implementing it, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": (
        "data_builders.synthetic",
        "render synthetic CASME II, SAMM, SMIC and CAS(ME)^3 databases",
    ),
    "convert": (
        "data_builders.convert",
        "turn a database's label sheet and frames into clips.jsonl + qa.jsonl",
    ),
    "split": ("data_builders.split", "subject-independent folds (LOSO or k-fold) over clips.jsonl"),
    "build-inputs": ("data_builders.inputs", "build the model's visual inputs: video, oao, flow"),
    "tiny-model": ("vqa.tiny", "build a tiny offline model (any family) for tests and the demo"),
    "finetune": ("vqa.train", "LoRA fine-tune Qwen2.5-VL, Qwen3-VL or Qwen3.5 on inputs.jsonl"),
    "crossval": ("vqa.crossval", "run fine-tuning over every fold and pool the scores"),
    "merge": ("vqa.merge", "merge a LoRA adapter into its base model"),
    "infer": ("vqa.infer", "answer ME-VQA questions in batch, zero-shot or with an adapter"),
    "score": ("vqa.score", "score answer files: UF1/UAR, BLEU, ROUGE-1, action units"),
    "score-spotting": (
        "vqa.spotting",
        "score spotted intervals the MEGC way: IoU >= 0.5, P/R/F1, STRS",
    ),
    "demo": ("vqa.demo", "run the whole study offline on synthetic data with the tiny model"),
    "model-table": (
        "vqa.model_table",
        "parameter counts, trainable counts per preset and memory of the real model sizes",
    ),
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="me-vqa",
        description="Micro-expression visual question answering (ME-VQA) with Qwen VL models. "
        "Run 'me-vqa COMMAND --help' for the options of one command.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {n:<13} {h}" for n, (_, h) in COMMANDS.items()),
    )
    parser.add_argument("command", choices=list(COMMANDS), metavar="COMMAND", help="what to run")
    return parser


def run_command(name: str, argv: list[str]) -> int:
    """Run one subcommand; a :class:`UserError` becomes one line on stderr and status 2."""
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return module.main(argv) or 0
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    args = parser.parse_args(argv[:1])
    return run_command(args.command, argv[1:])


def command_parser(name: str, description: str | None = None) -> argparse.ArgumentParser:
    """The argument parser a command module starts from (prog ``me-vqa <name>``)."""
    return argparse.ArgumentParser(
        prog=f"me-vqa {name}",
        description=description or COMMANDS[name][1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
