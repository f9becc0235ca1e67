from pathlib import Path

from data_builders.synthetic import SHEET_NAMES
from vqa.demo import SYNTH_LAYOUT, plan

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_lists_the_demos_commands():
    for step in plan(Path("runs/demo")):
        assert step.shell() in README, step.shell()


def test_demo_knows_where_synth_writes_the_sheets():
    for db, (sheet, _) in SYNTH_LAYOUT.items():
        assert sheet == SHEET_NAMES.get(db)


def test_every_step_has_its_own_folder():
    steps = plan(Path("runs/demo"), quick=True)
    outputs = [s.done for s in steps]
    assert len(set(outputs)) == len(outputs)
    assert all(o.parts[2].split("-")[0].isdigit() for o in outputs)


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
