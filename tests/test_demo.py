import subprocess
import sys
from pathlib import Path

from vqa.demo import plan

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_lists_the_demos_commands():
    for step in plan(Path("runs/demo")):
        assert step.shell() in README, step.shell()


def test_every_step_has_its_own_folder():
    steps = plan(Path("runs/demo"), quick=True)
    outputs = [s.done for s in steps]
    assert len(set(outputs)) == len(outputs)
    for output in outputs:  # runs/demo/<n>-<step>/... or runs/demo/long/<n>-<step>/...
        parts = output.relative_to("runs/demo").parts
        folder = parts[1] if parts[0] == "long" else parts[0]
        assert folder.split("-")[0].isdigit(), output


def test_all_is_the_short_and_the_long_part_sharing_one_tiny_model():
    parts = {p: [s.shell() for s in plan(Path("runs/demo"), part=p)] for p in ("short", "long")}
    everything = [s.shell() for s in plan(Path("runs/demo"))]
    assert set(everything) == set(parts["short"]) | set(parts["long"])
    shared = set(parts["short"]) & set(parts["long"])
    assert shared == {"me-vqa tiny-model --out runs/demo/5-model"}


def test_a_rerun_continues_instead_of_starting_over(tmp_path, capsys):
    from vqa.demo import run

    first_steps = plan(tmp_path, quick=True)[:2]  # synth, convert casme2
    for step in first_steps:
        run(step)
    stamp = first_steps[0].done.stat().st_mtime_ns
    capsys.readouterr()
    for step in first_steps:
        run(step)
    out = capsys.readouterr().out
    assert out.count("[done] me-vqa") == 2 and "$ me-vqa" not in out
    assert first_steps[0].done.stat().st_mtime_ns == stamp


def test_the_quick_demo_runs_end_to_end_through_the_command_line(tmp_path):
    """`me-vqa demo --quick`: every step of both parts (synth, convert, split, build-inputs,
    tiny-model, infer, finetune, infer, score) run as the README lists them, each in its own
    process, then the tables printed from what score measured."""
    from vqa import report
    from vqa.demo import INPUTS, SETTINGS
    from vqa.jsonl import read_jsonl

    argv = [sys.executable, "-m", "vqa", "demo", "--quick", "--out", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("$ me-vqa ") == len(plan(tmp_path, quick=True))
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    assert table in done.stdout
    overall = table.split("Overall\n", 1)[1].split("Long videos")[0]
    for mode, name in INPUTS.items():
        answered = read_jsonl(tmp_path / "8-answers-ft" / f"{mode}.jsonl")
        assert answered and all(isinstance(r["answer"], str) for r in answered)
        for setting, label in SETTINGS.items():
            metrics = report.load_metrics(tmp_path / "9-score" / f"{mode}-{setting}")
            assert metrics["overall"]["coarse"]["n"] > 0 and not metrics["missing"]
            row = f"| {name} | {label} | {report.fmt(metrics['overall']['coarse']['uf1'])} |"
            assert row in overall, (row, overall)
    long_ft = report.load_metrics(tmp_path / "long" / "9-score" / "long-ft")["overall"]
    assert f"| FT | {report.fmt(long_ft['lvqa']['count']['total']['mae'])} |" in table
