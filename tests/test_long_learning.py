"""The demo's long-video part, on synthetic long videos of held-out subjects: what the tiny
model fine-tuned with the tiny recipe learns, measured by ``me-vqa score``. Spotting, on
windows shown as onset -> peak flow images, is learnt (F1 above zero-shot's); counts that
depend on the video are not yet and stand as a strict expected failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from vqa import demo, report
from vqa.cli import main as cli
from vqa.jsonl import read_jsonl
from vqa.question_types import question_type


@pytest.fixture(scope="module")
def long_study(tmp_path_factory) -> dict:
    """Every command of ``me-vqa demo --part long``, run in order; the overall metrics of the
    zero-shot and the fine-tuned answers, and the held-out videos' true total counts."""
    root = tmp_path_factory.mktemp("demo")
    for step in demo.plan(root, part="long"):
        step.done.parent.mkdir(parents=True, exist_ok=True)  # as the demo does
        assert cli(list(step.argv)) == 0, step.shell()
    scores = Path(root, "long", "9-score")
    study = {s: report.load_metrics(scores / f"long-{s}")["overall"] for s in demo.SETTINGS}
    truth = {r["id"]: r for f in root.glob("long/2-convert/*/lvqa.jsonl") for r in read_jsonl(f)}
    answered = read_jsonl(root / "long" / "8-answers-ft" / "long.jsonl")
    study["root"] = root
    study["true_totals"] = [
        int(truth[r["id"]]["answer"])
        for r in answered
        if question_type(r["question"]) == "lvqa_count_total"
    ]
    return study


def test_fine_tuning_teaches_the_count_answers_on_held_out_subjects(long_study):
    ft = long_study["ft"]["lvqa"]["count"]["total"]
    assert ft["unparsed"] == 0 and ft["n"] == len(long_study["true_totals"]) > 0, ft


@pytest.mark.xfail(
    strict=True,
    reason="not met yet: the fine-tuned tiny model gives every held-out video the same total "
    "count, so its MAE equals the best constant answer's (README)",
)
def test_fine_tuned_counts_beat_the_best_constant_answer(long_study):
    total = long_study["ft"]["lvqa"]["count"]["total"]
    assert total["mae"] < total["constant_mae"], total


def test_fine_tuning_raises_spotting_f1_on_held_out_subjects(long_study):
    zs, ft = (long_study[s]["spotting"]["f1"] for s in ("zs", "ft"))
    assert ft > zs, (zs, ft)


def test_the_demo_prints_the_scores_and_the_constant_count_baseline(long_study):
    ft = long_study["ft"]
    table = demo.long_table(long_study["root"]).splitlines()
    assert table[-1].startswith("| FT |") and f"{ft['spotting']['f1']:.4f}" in table[-1]
    reading = demo.long_reading(long_study["root"])
    total = ft["lvqa"]["count"]["total"]
    assert f"a MAE of {total['constant_mae']:.2f}:" in reading
    assert f"to {total['mae']:.2f} and" in reading, reading
