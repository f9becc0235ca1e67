from pathlib import Path

from data_builders import synthetic_long
from data_builders.synthetic import SHEET_NAMES
from vqa.demo import LONG_LAYOUT, SYNTH_LAYOUT, plan

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_lists_the_demos_commands():
    for step in plan(Path("runs/demo")):
        assert step.shell() in README, step.shell()


def test_demo_knows_where_synth_writes_the_sheets():
    for db, (sheet, _) in SYNTH_LAYOUT.items():
        assert sheet == SHEET_NAMES.get(db)
    for db, layout in LONG_LAYOUT.items():
        assert layout == (synthetic_long.SHEET_NAMES[db], synthetic_long.FRAMES_ROOTS[db])


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
