from pathlib import Path

from vqa.demo import plan

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


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


def test_the_short_study_runs_end_to_end_through_the_command_line(tmp_path):
    """The README's study sequence (synth, convert, split, build-inputs, tiny-model, infer,
    finetune, infer, score), as `make demo --quick` runs it, for the flow input."""
    from vqa import report
    from vqa.demo import run
    from vqa.jsonl import read_jsonl

    other_inputs = {"video", "oao"}
    steps = [
        s
        for s in plan(tmp_path, quick=True, part="short")
        if not other_inputs & {s.done.stem.split("-")[0], s.done.parent.name.split("-")[0]}
    ]
    assert [s.argv[0] for s in steps if s.argv[0] in ("infer", "finetune", "score")] == [
        "infer", "finetune", "infer", "score", "score"
    ]  # fmt: skip
    for step in steps:
        run(step)
    answered = read_jsonl(tmp_path / "8-answers-ft" / "flow.jsonl")
    assert answered and all(isinstance(r["answer"], str) for r in answered)
    for setting in ("zs", "ft"):
        metrics = report.load_metrics(tmp_path / "9-score" / f"flow-{setting}")
        assert metrics["overall"]["coarse"]["n"] > 0 and not metrics["missing"]
