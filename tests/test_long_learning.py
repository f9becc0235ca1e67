"""The demo's long-video part learns: on synthetic long videos of held-out subjects, the tiny
model fine-tuned with the tiny recipe beats its zero-shot self, measured by ``me-vqa score``."""

from __future__ import annotations

from pathlib import Path

import pytest

from vqa import demo, report
from vqa.cli import main as cli


@pytest.fixture(scope="module")
def long_study(tmp_path_factory) -> dict[str, dict]:
    """Every command of ``me-vqa demo --part long``, run in order; the overall metrics of the
    zero-shot and the fine-tuned answers."""
    root = tmp_path_factory.mktemp("demo")
    for step in demo.plan(root, part="long"):
        step.done.parent.mkdir(parents=True, exist_ok=True)  # as the demo does
        assert cli(list(step.argv)) == 0, step.shell()
    scores = Path(root, "long", "9-score")
    return {s: report.load_metrics(scores / f"long-{s}")["overall"] for s in demo.SETTINGS}


def test_fine_tuning_lowers_the_count_error_on_held_out_subjects(long_study):
    zs, ft = (long_study[s]["lvqa"]["count"]["total"] for s in ("zs", "ft"))
    assert ft["unparsed"] == 0 and ft["n"] > 0, ft  # every fine-tuned answer gives a number
    # a zero-shot MAE is unavailable when none of its answers gives a number
    assert zs["mae"] is None or ft["mae"] < zs["mae"], (zs, ft)


@pytest.mark.xfail(
    strict=True,
    reason="not met yet: the fine-tuned tiny model answers 'none' in every window (measured "
    "spotting F1 0.00 zero-shot and fine-tuned; README, long-video demo)",
)
def test_fine_tuning_raises_spotting_f1_on_held_out_subjects(long_study):
    zs, ft = (long_study[s]["spotting"]["f1"] for s in ("zs", "ft"))
    assert ft > zs, (zs, ft)
