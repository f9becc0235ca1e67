"""report.md, confusion-matrix pictures and ``--compare``."""

import json
import re

import matplotlib.image
import pytest
from test_score import _fails, _files, fixture_rows

from vqa.cli import main as cli
from vqa.report import compare_table, confusion_figure, fmt, markdown_table

PAIRS = [
    ("negative", "negative"),
    ("negative", "positive"),
    ("positive", "unparsed"),
    ("surprise", "surprise"),
]


@pytest.fixture
def scored(tmp_path):
    """An --out folder of the score tests' fixture, and its metrics."""
    truth, preds, _ = fixture_rows()
    pred, gt = _files(tmp_path, truth, preds)
    out = tmp_path / "run"
    assert cli(["score", "--pred", pred, "--gt", gt, "--out", str(out)]) == 0
    return out, json.loads((out / "metrics.json").read_text())


def test_report_has_tables_pictures_and_unparsed(scored):
    out, metrics = scored
    text = (out / "report.md").read_text()
    header = (
        "| Dataset | Coarse UF1 | Coarse UAR | Fine UF1 | Fine UAR | BLEU | ROUGE-1 | Answers |"
    )
    assert header in text
    overall = metrics["overall"]
    row = f"| Overall | {fmt(overall['coarse']['uf1'])} | {fmt(overall['coarse']['uar'])} |"
    assert row in text
    assert "| SAMM |" in text and "| CASME II |" in text and "| Yes/no acc |" in text
    for name in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (out / name).is_file()
    assert "confusion_coarse.png" in text and "confusion_fine.png" in text
    assert "| samm_020_4_1_2 | fine | fine | I am not sure. |" in text  # an unparsed answer, by id
    assert "samm_026_3_5_1" in text.split("## Missing predictions")[1]


def test_pngs_open_and_are_not_blank(scored):
    out, _ = scored
    for level in ("coarse", "fine"):
        pixels = matplotlib.image.imread(out / f"confusion_{level}.png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100
        assert pixels[..., :3].std() > 0.05


def test_confusion_figure_is_labelled():
    fig = confusion_figure(PAIRS, "coarse expression class (n=4)")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "predicted label" and ax.get_ylabel() == "ground-truth label"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["positive", "negative", "surprise"]
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "positive",
        "negative",
        "surprise",
        "unparsed",
    ]
    cells = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts
    }
    assert (
        cells[(1, 0)] == "1"
        and cells[(0, 3)] == "1"
        and cells[(1, 1)] == "1"
        and cells[(0, 0)] == "0"
    )


def test_markdown_table_and_null_cells():
    assert markdown_table(["a", "b"], [["1", fmt(None)]]) == "| a | b |\n|---|---|\n| 1 | - |"
    assert fmt(0.5) == "0.5000" and fmt(3) == "3"


def test_compare_prints_one_table(scored, tmp_path, capsys):
    out, metrics = scored
    truth, preds, _ = fixture_rows()
    pred, gt = _files(tmp_path, truth, preds)
    other = tmp_path / "other"
    assert cli(["score", "--pred", pred, "--gt", gt, "--out", str(other), "--rouge", "f1"]) == 0
    capsys.readouterr()
    assert cli(["score", "--compare", str(out), str(other)]) == 0
    printed = capsys.readouterr().out
    assert printed.count(f"| {out} |") == 3 and printed.count(f"| {other} |") == 3
    assert "different settings" in printed
    assert compare_table([out]).count("\n") == 4  # header, rule, SAMM, CASME II, Overall


def test_compare_without_metrics_is_one_line_error(tmp_path, capsys):
    _fails(capsys, ["--compare", str(tmp_path)], f"{tmp_path}: no metrics.json here")


def test_compare_metrics_of_another_shape_is_one_line_error(scored, tmp_path, capsys):
    out, _ = scored
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text('{"overall": 5}\n')
    _fails(
        capsys,
        ["--compare", str(out), str(other)],
        f"{other / 'metrics.json'}: not a metrics.json of 'me-vqa score'",
    )
