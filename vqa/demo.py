"""``me-vqa demo``: the MEGC2025 ME-VQA baseline study in miniature, offline, on a CPU.

Synthetic CASME II, SAMM and SMIC databases are converted, split by subject, turned into the
three visual inputs of the baseline (sampled video frames, onset/apex/offset frames, optical
flow), answered zero-shot by the tiny offline Qwen2.5-VL, LoRA fine-tuned per input, answered
again and scored. The long-video part does the same with synthetic SAMM Long Videos and
CAS(ME)^2 (ME-LVQA counts, action units, event types and spotting per window). Every step is a
public ``me-vqa`` command, printed before it runs, with its output in a folder of its own; a
step whose output exists is skipped, so an interrupted demo continues where it stopped. With
real databases and ``Qwen/Qwen2.5-VL-3B-Instruct`` on a GPU the same commands are the real
study.
"""

from __future__ import annotations

import os
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
from vqa.metrics import Table

DATABASES = ("casme2", "samm", "smic")
LONG_DATABASES = ("samm_lv", "casme_sq")
INPUTS = {"video": "Video", "oao": "OAO", "flow": "OF"}
SETTINGS = {"zs": "ZS", "ft": "FT"}
PARTS = ("short", "long")
# the CPU recipe of the checkout this package runs from, as a path from the working folder
RECIPE = Path(
    os.path.relpath(Path(__file__).resolve().parents[1] / "scripts/configs/tiny_cpu.yaml")
)
HELD_OUT_FOLD = 0
LONG_TABLE = Table(
    "ME-LVQA and spotting on long videos",
    (
        ("Count MAE (total)", "lvqa.count.total.mae"),
        ("F1_AU", "lvqa.au_inventory.f1"),
        ("Type UF1", "lvqa.event_type.uf1"),
        ("Spotting F1", "spotting.f1"),
    ),
)


@dataclass(frozen=True)
class Size:
    """How big the miniature short-clip study is."""

    subjects: int
    clips: int
    frames: int
    epochs: int


@dataclass(frozen=True)
class LongSize:
    """How big the miniature long-video study is: subjects, videos of ``seconds`` each per
    subject, frames per sample at ``size`` pixels, localisation windows and what each shows
    (``window_input``: its frames, or one flow image), epochs."""

    subjects: int
    videos: int
    seconds: float
    num_frames: int
    size: int
    window_seconds: float
    stride_seconds: float
    window_input: str
    epochs: int


FULL = Size(subjects=5, clips=8, frames=10, epochs=10)
QUICK = Size(subjects=3, clips=4, frames=10, epochs=2)
LONG_FULL = LongSize(
    subjects=4, videos=2, seconds=3.6, num_frames=4, size=64, window_seconds=0.5,
    stride_seconds=0.5, window_input="flow", epochs=20,
)  # fmt: skip
LONG_QUICK = LongSize(
    subjects=2, videos=1, seconds=3.6, num_frames=4, size=64, window_seconds=1.0,
    stride_seconds=1.0, window_input="flow", epochs=1,
)  # fmt: skip


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
        sheet, frames = _synth_layout(synth, db)
        labels = ("--labels", str(sheet)) if sheet else ()
        argv = (
            "convert",
            db,
            *labels,
            "--frames",
            str(frames),
            "--out",
            str(convert / db),
            "--analysis",  # ME-VQA-v2's open-ended question (SMIC clips have no fine class)
        )
        steps.append(Step(argv, convert / db / "qa.jsonl"))
    clips = [str(convert / db / "clips.jsonl") for db in DATABASES]
    steps.append(_split_step(out, clips, k=3))
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
    return steps


def _synth_layout(synth: Path, db: str) -> tuple[Path | None, Path]:
    """Where ``me-vqa synth --out synth`` writes a database's label sheet (None: it has none)
    and the folder of its frame folders."""
    entry = databases.DATABASES[db]
    sheet = synth / db / entry.synth_sheet if entry.synth_sheet else None
    return sheet, synth / db / entry.synth_frames


def _split_step(root: Path, files: list[str], k: int) -> Step:
    folds = root / "3-split" / "folds.json"
    argv = ("split", "--clips", *files, "--protocol", "kfold", "--k", str(k), "--out", str(folds))
    return Step(argv, folds)


def _long_data_steps(root: Path, size: LongSize) -> list[Step]:
    """Synthetic long videos (few events each), converted, split, built into samples."""
    synth, convert, steps = root / "1-synth", root / "2-convert", []
    for db in LONG_DATABASES:
        sheet, frames = _synth_layout(synth, db)
        n_frames = round(size.seconds * databases.DATABASES[db].fps)
        argv = ("synth", "--long", "--out", str(synth), "--databases", db, "--subjects",
                str(size.subjects), "--clips", str(size.videos), "--frames", str(n_frames),
                "--size", "64")  # fmt: skip
        steps.append(Step(argv, sheet))
        argv = ("convert", db, "--labels", str(sheet), "--frames", str(frames), "--out",
                str(convert / db))  # fmt: skip
        steps.append(Step(argv, convert / db / "lvqa.jsonl"))
    videos = [str(convert / db / "videos.jsonl") for db in LONG_DATABASES]
    steps.append(_split_step(root, videos, k=2))
    inputs = root / "4-inputs"
    argv = ("build-inputs", "--mode", "long", "--videos", *videos, "--qa",
            *(str(convert / db / "lvqa.jsonl") for db in LONG_DATABASES),
            "--num-frames", str(size.num_frames), "--size", str(size.size),
            "--window-seconds", str(size.window_seconds), "--stride-seconds",
            str(size.stride_seconds), "--window-input", size.window_input,
            "--out", str(inputs))  # fmt: skip
    steps.append(Step(argv, inputs / "inputs.jsonl"))
    return steps


def _study_steps(
    root: Path, model: Path, inputs: Path, gt: list[str], name: str, epochs: int
) -> list[Step]:
    """Zero-shot answers, fine-tuning, fine-tuned answers and both scores of one input."""
    folds = root / "3-split" / "folds.json"
    held_out = ("--folds", str(folds), "--fold", str(HELD_OUT_FOLD))
    adapter = root / "7-finetune" / name
    answers = {s: root / f"{6 if s == 'zs' else 8}-answers-{s}" / f"{name}.jsonl" for s in SETTINGS}
    adapters = {"zs": (), "ft": ("--adapter", str(adapter))}
    infer = {
        s: Step(
            (
                "infer",
                "--model",
                str(model),
                *adapters[s],
                "--inputs",
                str(inputs),
                *held_out,
                "--out",
                str(answers[s]),
            ),
            answers[s],
        )  # fmt: skip
        for s in SETTINGS
    }
    finetune = Step(
        ("finetune", "--config", str(RECIPE), "--model_name_or_path", str(model),
         "--train_file", str(inputs), *held_out, "--num_train_epochs", str(epochs),
         "--eval_strategy", "no",
         "--eval_max_rows", "0",  # the next two steps answer and score the held-out rows
         "--save_strategy", "no", "--output_dir", str(adapter)),
        adapter / "run.json",
    )  # fmt: skip
    scores = [
        Step(
            (
                "score",
                "--pred",
                str(answers[s]),
                "--gt",
                *gt,
                *held_out,
                "--out",
                str(_scored(root, name, s)),
            ),
            _scored(root, name, s) / "metrics.json",
        )  # fmt: skip
        for s in SETTINGS
    ]
    return [infer["zs"], finetune, infer["ft"], *scores]


def _scored(root: Path, name: str, setting: str) -> Path:
    return root / "9-score" / f"{name}-{setting}"


def _model(out: Path) -> Path:
    return out / "5-model"


def plan(out: Path, quick: bool = False, part: str = "all") -> list[Step]:
    """Every command of the demo, in order (``part``: short, long or all)."""
    parts = PARTS if part == "all" else (part,)
    size, long_size = (QUICK, LONG_QUICK) if quick else (FULL, LONG_FULL)
    model = _model(out)
    steps = _data_steps(out, size) if "short" in parts else []
    if "long" in parts:
        steps += _long_data_steps(out / "long", long_size)
    steps.append(Step(("tiny-model", "--out", str(model)), model / "config.json"))
    if "short" in parts:
        qa = [str(out / "2-convert" / db / "qa.jsonl") for db in DATABASES]
        for mode in INPUTS:
            inputs = out / "4-inputs" / mode / "inputs.jsonl"
            steps += _study_steps(out, model, inputs, qa, mode, size.epochs)
    if "long" in parts:
        root = out / "long"
        lvqa = [str(root / "2-convert" / db / "lvqa.jsonl") for db in LONG_DATABASES]
        steps += _study_steps(
            root, model, root / "4-inputs" / "inputs.jsonl", lvqa, "long", long_size.epochs
        )
    return steps


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


def _metrics(root: Path, name: str, setting: str) -> dict:
    return report.load_metrics(_scored(root, name, setting))


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


def long_table(out: Path) -> str:
    """Long videos, both databases together: rows zero-shot / fine-tuned."""
    rows = [
        [SETTINGS[s], *report.cells(LONG_TABLE, _metrics(out / "long", "long", s)["overall"])]
        for s in SETTINGS
    ]
    return report.markdown_table(["", *report.headers(LONG_TABLE)], rows)


def _shown(value: float | None) -> str:
    return "unavailable" if value is None else f"{value:.2f}"


def _change(metric: str, zs: float | None, ft: float | None) -> str:
    if ft == zs:
        return f"left {metric} at {_shown(zs)}"
    verb = "changed" if zs is None or ft is None else "raised" if ft > zs else "lowered"
    return f"{verb} {metric} from {_shown(zs)} (zero-shot) to {_shown(ft)}"


def reading(out: Path) -> str:
    """A few plain sentences about what the short-clip table shows (coarse class, held-out
    subjects)."""
    lines = []
    for mode, name in INPUTS.items():
        zs, ft = (_metrics(out, mode, s)["overall"]["coarse"] for s in SETTINGS)
        line = f"- {name}: fine-tuning {_change('coarse UF1', zs['uf1'] or 0.0, ft['uf1'] or 0.0)}"
        if ft["uar"] is not None and abs(ft["uar"] - 1 / 3) < 1e-9:
            line += " (coarse UAR 0.33: chance level for three classes)"
        lines.append(line + ".")
    lines.append(
        "- The tiny model starts random, so its zero-shot answers are noise; fine-tuning teaches "
        "it the answer format and, as far as a few CPU minutes allow, the classes. With "
        "Qwen/Qwen2.5-VL-3B-Instruct and real databases the same commands are the real study."
    )
    return "\n".join(lines)


def long_reading(out: Path) -> str:
    """What the long-video table shows: counts and spotting, zero-shot against fine-tuned."""
    zs, ft = (_metrics(out / "long", "long", s)["overall"] for s in SETTINGS)
    count = [m["lvqa"]["count"]["total"]["mae"] for m in (zs, ft)]
    constant = ft["lvqa"]["count"]["total"]["constant_mae"]
    spot = [m["spotting"]["f1"] for m in (zs, ft)]
    return (
        f"- Long videos: fine-tuning {_change('the total count MAE', *count)} and "
        f"{_change('spotting F1 (IoU >= 0.5)', *spot)}. A count MAE is unavailable when no "
        "answer gives a number. Answering the median true count for every video (the best "
        f"constant answer) has a MAE of {_shown(constant)}: counts that depend on the video do "
        "better."
    )


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


def _text(out: Path, part: str) -> str:
    blocks = []
    if part in ("short", "all"):
        blocks.append(
            f"Short clips, held-out subjects of fold {HELD_OUT_FOLD}, scored per database:\n\n"
            f"{results_table(out)}\n\n{reading(out)}"
        )
    if part in ("long", "all"):
        blocks.append(
            f"Long videos, held-out subjects of fold {HELD_OUT_FOLD}, both databases:\n\n"
            f"{long_table(out)}\n\n{long_reading(out)}"
        )
    return "\n\n".join(blocks) + "\n"


def main(argv: list[str]) -> int:
    parser = command_parser("demo", __doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder of the study")
    parser.add_argument(
        "--part", choices=(*PARTS, "all"), default="all", help="short clips, long videos or both"
    )
    parser.add_argument("--quick", action="store_true", help="a smaller study (under 3 minutes)")
    args = parser.parse_args(argv)
    if not RECIPE.is_file():
        raise UserError(
            f"{RECIPE} not found",
            fix="the demo runs from a checkout of the repository: pip install -e . there",
        )
    _check_size(args.out, args.quick)
    start = time.perf_counter()
    for step in plan(args.out, args.quick, args.part):
        run(step)
    text = _text(args.out, args.part)
    write_text_atomic(args.out / "table.md", text)
    print(f"\n{text}")
    print(f"table: {args.out / 'table.md'}")
    if args.part in ("short", "all"):
        print(
            f"reports and confusion matrices: {args.out / '9-score'}/<input>-<zs|ft>/report.md, "
            "confusion_coarse.png, confusion_fine.png"
        )
    if args.part in ("long", "all"):
        print(f"long-video reports: {args.out / 'long' / '9-score'}/long-<zs|ft>/report.md")
    print(f"demo time: {time.perf_counter() - start:.0f} s")
    return 0
