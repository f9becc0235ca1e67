"""``me-vqa demo``: the MEGC2025 ME-VQA baseline study in miniature, offline, on a CPU.

Synthetic CASME II, SAMM and SMIC databases are converted, split by subject, turned into the
three visual inputs of the baseline (sampled video frames, onset/apex/offset frames, optical
flow), answered zero-shot by the tiny offline Qwen2.5-VL, LoRA fine-tuned per input, answered
again and scored. Every step is a public ``me-vqa`` command, printed before it runs, with its
output in a folder of its own; a step whose output exists is skipped, so an interrupted demo
continues where it stopped. With real databases and ``Qwen/Qwen2.5-VL-3B-Instruct`` on a GPU
the same commands are the real study.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from vqa import databases, report
from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.jsonl import write_text_atomic

DATABASES = ("casme2", "samm", "smic")
# Where ``me-vqa synth`` puts each database's label sheet and frame folders.
SYNTH_LAYOUT = {
    "casme2": ("CASME2-coding-synthetic.xlsx", "CASME2_RAW_selected"),
    "samm": ("SAMM_Micro_FACS_Codes_synthetic.xlsx", "SAMM"),
    "smic": (None, "HS"),
}
INPUTS = {"video": "Video", "oao": "OAO", "flow": "OF"}
SETTINGS = {"zs": "ZS", "ft": "FT"}
RECIPE = Path("scripts/configs/tiny_cpu.yaml")
HELD_OUT_FOLD = 0


@dataclass(frozen=True)
class Size:
    """How big the miniature study is."""

    subjects: int
    clips: int
    frames: int
    epochs: int


FULL = Size(subjects=6, clips=8, frames=10, epochs=10)
QUICK = Size(subjects=3, clips=4, frames=10, epochs=2)


@dataclass(frozen=True)
class Step:
    """One public command and the file it leaves behind when it has finished."""

    argv: tuple[str, ...]
    done: Path

    def shell(self) -> str:
        return "me-vqa " + shlex.join(self.argv)


def _data_steps(out: Path, size: Size) -> list[Step]:
    synth, convert = out / "1-synth", out / "2-convert"
    steps = [
        Step(
            (
                "synth",
                "--out",
                str(synth),
                "--databases",
                ",".join(DATABASES),
                "--subjects",
                str(size.subjects),
                "--clips",
                str(size.clips),
                "--frames",
                str(size.frames),
                "--size",
                "96",
            ),
            synth / "smic",
        ),
    ]
    for db in DATABASES:
        sheet, frames = SYNTH_LAYOUT[db]
        labels = ("--labels", str(synth / db / sheet)) if sheet else ()
        argv = (
            "convert",
            db,
            *labels,
            "--frames",
            str(synth / db / frames),
            "--out",
            str(convert / db),
            "--analysis",  # ME-VQA-v2's open-ended question (SMIC clips have no fine class)
        )
        steps.append(Step(argv, convert / db / "qa.jsonl"))
    clips = [str(convert / db / "clips.jsonl") for db in DATABASES]
    folds = out / "3-split" / "folds.json"
    steps.append(
        Step(
            ("split", "--clips", *clips, "--protocol", "kfold", "--k", "3", "--out", str(folds)),
            folds,
        )
    )
    qa = [str(convert / db / "qa.jsonl") for db in DATABASES]
    for mode in INPUTS:
        inputs = out / "4-inputs" / mode
        steps.append(
            Step(
                (
                    "build-inputs",
                    "--clips",
                    *clips,
                    "--qa",
                    *qa,
                    "--mode",
                    mode,
                    "--num-frames",
                    "4",
                    "--size",
                    "112",
                    "--out",
                    str(inputs),
                ),
                inputs / "inputs.jsonl",
            )
        )
    model = out / "5-model"
    steps.append(Step(("tiny-model", "--out", str(model)), model / "config.json"))
    return steps


def _model_steps(out: Path, size: Size) -> list[Step]:
    model, folds = out / "5-model", out / "3-split" / "folds.json"
    held_out = ("--folds", str(folds), "--fold", str(HELD_OUT_FOLD))
    qa = [str(out / "2-convert" / db / "qa.jsonl") for db in DATABASES]
    steps = []
    for mode in INPUTS:
        inputs = str(out / "4-inputs" / mode / "inputs.jsonl")
        adapter = out / "7-finetune" / mode
        answers = {
            s: out / f"{6 if s == 'zs' else 8}-answers-{s}" / f"{mode}.jsonl" for s in SETTINGS
        }
        steps += [
            Step(
                (
                    "infer",
                    "--model",
                    str(model),
                    "--inputs",
                    inputs,
                    *held_out,
                    "--out",
                    str(answers["zs"]),
                ),
                answers["zs"],
            ),
            Step(
                (
                    "finetune",
                    "--config",
                    str(RECIPE),
                    "--model_name_or_path",
                    str(model),
                    "--train_file",
                    inputs,
                    *held_out,
                    "--num_train_epochs",
                    str(size.epochs),
                    "--eval_strategy",
                    "no",
                    "--eval_max_rows",  # the next two steps answer and score the held-out rows
                    "0",
                    "--save_strategy",
                    "no",
                    "--output_dir",
                    str(adapter),
                ),
                adapter / "run.json",
            ),
            Step(
                (
                    "infer",
                    "--model",
                    str(model),
                    "--adapter",
                    str(adapter),
                    "--inputs",
                    inputs,
                    *held_out,
                    "--out",
                    str(answers["ft"]),
                ),
                answers["ft"],
            ),
        ]
        for s in SETTINGS:
            scored = out / "9-score" / f"{mode}-{s}"
            steps.append(
                Step(
                    (
                        "score",
                        "--pred",
                        str(answers[s]),
                        "--gt",
                        *qa,
                        *held_out,
                        "--out",
                        str(scored),
                    ),
                    scored / "metrics.json",
                )
            )
    return steps


def plan(out: Path, quick: bool = False) -> list[Step]:
    """Every command of the demo, in order."""
    size = QUICK if quick else FULL
    return _data_steps(out, size) + _model_steps(out, size)


def run(step: Step) -> None:
    """Run one step unless its output already exists; a failing step stops the demo."""
    if step.done.exists():
        print(f"[done] {step.shell()}", flush=True)
        return
    print(f"$ {step.shell()}", flush=True)
    step.done.parent.mkdir(parents=True, exist_ok=True)  # as a user would: mkdir -p
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "vqa", *step.argv])
    print(f"[{time.perf_counter() - start:.1f} s] {step.argv[0]}", flush=True)
    if result.returncode:
        raise UserError(
            f"step failed with status {result.returncode}: {step.shell()}",
            fix="read the output above; run 'me-vqa demo' again to continue from this step",
        )


def _metrics(out: Path, mode: str, setting: str) -> dict:
    return report.load_metrics(out / "9-score" / f"{mode}-{setting}")


def results_table(out: Path) -> str:
    """The MEGC2025 paper's Table 2 layout: per database and overall, rows input x setting."""
    runs = {(m, s): _metrics(out, m, s) for m in INPUTS for s in SETTINGS}
    blocks, columns = [], ["Input", "", *report.headers(report.TABLES["main"])]
    for db in (*DATABASES, "overall"):
        rows = []
        for (mode, setting), metrics in runs.items():
            block = metrics["overall"] if db == "overall" else metrics["by_dataset"].get(db)
            if block is not None:
                rows.append([INPUTS[mode], SETTINGS[setting], *report.main_cells(block)])
        if not rows:  # no held-out subject of this database in the fold
            continue
        title = "Overall" if db == "overall" else databases.title(db)
        blocks.append(f"{title}\n\n" + report.markdown_table(columns, rows))
    return "\n\n".join(blocks)


def _change(zs: float, ft: float) -> str:
    if ft > zs:
        return f"raised coarse UF1 from {zs:.2f} (zero-shot) to {ft:.2f}"
    if ft < zs:
        return f"lowered coarse UF1 from {zs:.2f} (zero-shot) to {ft:.2f}"
    return f"left coarse UF1 at {zs:.2f}"


def reading(out: Path) -> str:
    """A few plain sentences about what the table shows (coarse class, held-out subjects)."""
    lines = []
    for mode, name in INPUTS.items():
        zs, ft = (_metrics(out, mode, s)["overall"]["coarse"] for s in SETTINGS)
        line = f"- {name}: fine-tuning {_change(zs['uf1'] or 0.0, ft['uf1'] or 0.0)}"
        if ft["uar"] is not None and abs(ft["uar"] - 1 / 3) < 1e-9:
            line += " (coarse UAR 0.33: chance level for three classes)"
        lines.append(line + ".")
    lines.append(
        "- The tiny model starts random, so its zero-shot answers are noise; fine-tuning teaches "
        "it the answer format and, as far as a few CPU minutes allow, the classes. With "
        "Qwen/Qwen2.5-VL-3B-Instruct and real databases the same commands are the real study."
    )
    return "\n".join(lines)


def _check_size(out: Path, quick: bool) -> None:
    stamp = out / "demo-size.txt"
    size = "quick" if quick else "full"
    if stamp.is_file() and stamp.read_text().strip() != size:
        raise UserError(
            f"this folder holds a {stamp.read_text().strip()} demo",
            file=out,
            fix="give another --out, or delete the folder",
        )
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(size + "\n")


def main(argv: list[str]) -> int:
    parser = command_parser("demo", __doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder of the study")
    parser.add_argument("--quick", action="store_true", help="a smaller study (under 3 minutes)")
    args = parser.parse_args(argv)
    if not RECIPE.is_file():
        raise UserError(f"{RECIPE} not found", fix="run the demo from the repository's root folder")
    _check_size(args.out, args.quick)
    for step in plan(args.out, args.quick):
        run(step)
    table = results_table(args.out)
    text = f"{table}\n\n{reading(args.out)}\n"
    write_text_atomic(args.out / "table.md", text)
    print(f"\nHeld-out subjects of fold {HELD_OUT_FOLD}, scored per database:\n\n{text}")
    print(f"table: {args.out / 'table.md'}")
    print(
        f"reports and confusion matrices: {args.out / '9-score'}/<input>-<zs|ft>/report.md, "
        "confusion_coarse.png, confusion_fine.png"
    )
    return 0
