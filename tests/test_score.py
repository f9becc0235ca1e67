"""``me-vqa score`` against metrics recomputed with sklearn, sacrebleu and rouge-score."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import sentence_bleu as nltk_bleu
from rouge_score.rouge_scorer import RougeScorer
from sklearn.metrics import accuracy_score, f1_score, recall_score
from sklearn.preprocessing import MultiLabelBinarizer

from vqa.cli import main as cli
from vqa.jsonl import write_jsonl
from vqa.prompts import official
from vqa.score import Settings, score_rows, sentence_bleu

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "megc2025"
Q, A = official()["questions"], official()["answers"]

# dataset, clip, fine class, AUs (names), lateral AU side or None
CLIPS = [
    ("samm", "006_1_2", "anger", ["brow lowerer", "lid tightener"], "left"),
    ("samm", "011_2_3", "happiness", ["lip corner puller"], None),
    ("samm", "020_4_1", "surprise", ["inner brow raiser", "outer brow raiser"], None),
    ("samm", "026_3_5", "contempt", ["dimpler"], "right"),
    ("casme2", "sub01_EP02_01f", "happiness", ["lip corner puller"], None),
    ("casme2", "sub02_EP03_02", "disgust", ["brow lowerer", "upper lip raiser"], None),
    ("casme2", "sub05_EP09_05", "repression", ["lip corner depressor", "chin raiser"], None),
    ("casme2", "sub11_EP15_01", "sadness", ["inner brow raiser"], "left"),
]
COARSE = {
    "anger": "negative",
    "happiness": "positive",
    "surprise": "surprise",
    "contempt": "negative",
}
COARSE |= {"disgust": "negative", "repression": "negative", "sadness": "negative"}

# Per clip: (coarse answer, its label), (fine answer, its label); None as answer = missing row,
# None as label = unparsed. Perfect, empty, wrong, free-text and missing answers all occur.
EMOTION_PREDICTIONS = [
    (("negative", "negative"), ("anger", "anger")),
    (("The coarse expression class is positive.", "positive"), ("happy", "happiness")),
    (("", None), ("I am not sure.", None)),
    ((None, None), (None, None)),
    (("negative", "negative"), ("The person looks disgusted.", "disgust")),
    (("negative", "negative"), ("anger", "anger")),
    (("positive", "positive"), ("happiness", "happiness")),
    (("It is a surprise.", "surprise"), ("sad", "sadness")),
]
# Per clip: AU-list answer, yes-answer, no-answer, left/right answer (None = missing row)
AU_PREDICTIONS = [
    ("brow lowerer", "yes", "no", "left"),
    ("lip corner puller, cheek raiser", "Yes.", "yes", None),
    ("AU1, AU2", "no", "no", None),
    (None, None, "", "left"),
    ("", "yes", "No, it is not shown.", None),
    ("brow lowerer, upper lip raiser", "yes", "no", None),
    ("jaw drop", "maybe", "no", None),
    ("inner brow raiser", "yes", "no", "It is on the left side."),
]
ABSENT_AU = "nose wrinkler"


def _combined(aus: list[str], fine: str, coarse: str) -> str:
    key = "combined_many" if len(aus) > 1 else "combined_one"
    return A[key].format(aus=A["au_separator"].join(aus), fine=fine, coarse=coarse)


def clip_qa(dataset, clip, fine, aus, side) -> list[tuple[str, str]]:
    """(question, true answer) pairs of one clip, in the organisers' order."""
    qa = [(Q["coarse"], COARSE[fine]), (Q["fine"], fine)]
    qa.append((Q["au_many"] if len(aus) > 1 else Q["au_one"], A["au_separator"].join(aus)))
    if side:
        qa.append((Q["left_right"].format(au=aus[0]), side))
    qa += [(Q["yes_no"].format(au=aus[0]), "yes"), (Q["yes_no"].format(au=ABSENT_AU), "no")]
    key = "combined_many" if len(aus) > 1 else "combined_one"
    qa.append((Q[key], _combined(aus, fine, COARSE[fine])))
    return qa


def fixture_rows() -> tuple[list[dict], list[dict], list[dict]]:
    """(ground truth, predictions, expected) where expected rows carry the true and predicted
    label each metric should see ('unparsed' for no label)."""
    truth, preds, expected = [], [], []
    for (dataset, clip, fine, aus, side), emo, au in zip(
        CLIPS, EMOTION_PREDICTIONS, AU_PREDICTIONS, strict=True
    ):
        (coarse_text, coarse_label), (fine_text, fine_label) = emo
        au_text, yes_text, no_text, side_text = au
        answers = {
            "coarse": (coarse_text, coarse_label),
            "fine": (fine_text, fine_label),
            "au": (au_text, None),
            "left_right": (side_text, None),
            "yes": (yes_text, None),
            "no": (no_text, None),
        }
        kinds = ["coarse", "fine", "au"] + (["left_right"] if side else []) + ["yes", "no"]
        for k, ((question, answer), kind) in enumerate(
            zip(clip_qa(dataset, clip, fine, aus, side), [*kinds, "combined"], strict=True), 1
        ):
            row = {"id": f"{dataset}_{clip}_{k}", "dataset": dataset, "image_id": clip}
            row |= {"subject": clip[:3], "filename": clip, "question": question, "answer": answer}
            truth.append(row)
            text, label = answers.get(kind, (_combined(aus[:1], fine, "negative"), None))
            if text is not None:
                preds.append({**row, "answer": text})
            expected.append({**row, "kind": kind, "pred_text": text or "", "pred_label": label})
    preds.append({"id": "samm_999_9_9_1", "question": Q["coarse"], "answer": "negative"})
    return truth, preds, expected


def unparsed(label):
    return "unparsed" if label is None else label


def expected_metrics(expected: list[dict], settings: Settings) -> dict:
    """Every metric recomputed with sklearn, sacrebleu or nltk and rouge-score."""
    label_set, bleu, rouge = settings.label_set, settings.bleu, settings.rouge
    out = {}
    for level in ("coarse", "fine"):
        rows = [r for r in expected if r["kind"] == level]
        y_true = [r["answer"] for r in rows]
        y_pred = [unparsed(r["pred_label"]) for r in rows]
        labels = sorted(
            set(y_true) | (set(y_pred) - {"unparsed"} if label_set == "gt+pred" else set())
        )
        kw = {"labels": labels, "average": "macro", "zero_division": 0}
        out[level] = (
            f1_score(y_true, y_pred, **kw),
            recall_score(y_true, y_pred, **kw),
            accuracy_score(y_true, y_pred),
            len(rows),
        )
    hyps, refs = [r["pred_text"] for r in expected], [r["answer"] for r in expected]
    if bleu == "corpus":
        out["bleu"] = sacrebleu.corpus_bleu(hyps, [refs], lowercase=True).score / 100
    else:
        smooth = SmoothingFunction().method1
        scores = [
            nltk_bleu([r.lower().split()], h.lower().split(), smoothing_function=smooth)
            for h, r in zip(hyps, refs, strict=True)
        ]
        out["bleu"] = sum(scores) / len(scores)
    scorer = RougeScorer(["rouge1"], use_stemmer=settings.rouge_stemmer)
    field = "recall" if rouge == "recall" else "fmeasure"
    out["rouge1"] = sum(
        getattr(scorer.score(r, h)["rouge1"], field) for h, r in zip(hyps, refs, strict=True)
    ) / len(refs)
    return out


def expected_au(expected: list[dict]) -> dict:
    """AU metrics recomputed: yes/no via sklearn, set and per-AU F1 via multilabel sklearn."""
    from vqa.parse import parse_aus, parse_left_right, parse_yes_no

    yn = [r for r in expected if r["kind"] in ("yes", "no")]
    yn_true = [r["answer"] for r in yn]
    yn_pred = [parse_yes_no(r["pred_text"]) or "unparsed" for r in yn]
    lr = [r for r in expected if r["kind"] == "left_right"]
    sets = [r for r in expected if r["kind"] == "au"]
    mlb = MultiLabelBinarizer()
    mlb.fit([parse_aus(r["answer"]) + parse_aus(r["pred_text"]) for r in sets])
    y_true = mlb.transform([parse_aus(r["answer"]) for r in sets])
    y_pred = mlb.transform([parse_aus(r["pred_text"]) for r in sets])
    per_au = f1_score(y_true, y_pred, average=None, zero_division=0)
    truth_aus = {a for r in sets for a in parse_aus(r["answer"])}
    return {
        "yes_no_acc": sum(t == p for t, p in zip(yn_true, yn_pred, strict=True)) / len(yn),
        "yes_no_f1": f1_score(yn_true, yn_pred, labels=sorted(set(yn_true)), average="macro"),
        "left_right_acc": sum(parse_left_right(r["pred_text"]) == r["answer"] for r in lr)
        / len(lr),
        "set_f1": f1_score(y_true, y_pred, average="samples", zero_division=0),
        "per_au_f1": {a: f for a, f in zip(mlb.classes_, per_au, strict=True) if a in truth_aus},
    }


def assert_block(block: dict, expected: list[dict], settings: Settings):
    want = expected_metrics(expected, settings)
    for level in ("coarse", "fine"):
        uf1, uar, acc, n = want[level]
        assert block[level]["uf1"] == pytest.approx(uf1, abs=1e-9)
        assert block[level]["uar"] == pytest.approx(uar, abs=1e-9)
        assert block[level]["accuracy"] == pytest.approx(acc, abs=1e-9)
        assert block[level]["n"] == n
    assert block["bleu"] == pytest.approx(want["bleu"], abs=1e-9)
    assert block["rouge1"] == pytest.approx(want["rouge1"], abs=1e-9)
    assert block["n_answers"] == len(expected)


SETTINGS = [
    Settings(),
    Settings(label_set="gt+pred"),
    Settings(bleu="sentence"),
    Settings(rouge="f1"),
    Settings(label_set="gt+pred", bleu="sentence", rouge="f1"),
    Settings(rouge_stemmer=True),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, vars(s).values())))
def test_metrics_match_independent_computation(settings):
    truth, preds, expected = fixture_rows()
    metrics = score_rows(preds, truth, settings)
    assert_block(metrics["overall"], expected, settings)
    for dataset in ("samm", "casme2"):
        subset = [r for r in expected if r["dataset"] == dataset]
        assert_block(metrics["by_dataset"][dataset], subset, settings)
    assert metrics["settings"] == {**settings.__dict__}


def test_sentence_bleu_and_stemmed_rouge_by_hand():
    # one word, matched: unigram precision 1, the missing 2-4-grams smoothed to 0.1 / 1 each
    assert sentence_bleu("Negative", "negative") == pytest.approx(0.1**0.75)
    assert sentence_bleu("the brow is lowered", "the brow is lowered") == pytest.approx(1.0)
    truth = [{"id": "a_1", "question": "What are the action units?", "answer": "brow lowerer"}]
    pred = [{"id": "a_1", "answer": "brow lowerers"}]
    plain, stemmed = (
        score_rows(pred, truth, Settings(rouge_stemmer=stem))["overall"]["rouge1"]
        for stem in (False, True)
    )
    assert (plain, stemmed) == (0.5, 1.0)


def test_label_sets_differ_where_a_class_is_only_predicted():
    truth, preds, _ = fixture_rows()
    gt = score_rows(preds, truth, Settings())["by_dataset"]["casme2"]["fine"]
    both = score_rows(preds, truth, Settings(label_set="gt+pred"))["by_dataset"]["casme2"]["fine"]
    assert both["uf1"] < gt["uf1"]  # "anger" only predicted in casme2: an extra class with F1 0


def test_au_metrics_match_independent_computation():
    truth, preds, expected = fixture_rows()
    au = score_rows(preds, truth)["overall"]["au"]
    want = expected_au(expected)
    for key in ("yes_no_acc", "yes_no_f1", "left_right_acc", "set_f1"):
        assert au[key] == pytest.approx(want[key], abs=1e-9), key
    assert au["per_au_f1"].keys() == want["per_au_f1"].keys()
    for name, f1 in want["per_au_f1"].items():
        assert au["per_au_f1"][name] == pytest.approx(f1, abs=1e-9), name


def test_counts_missing_extra_and_question_types():
    truth, preds, expected = fixture_rows()
    metrics = score_rows(preds, truth)
    missing = [r["id"] for r in expected if r["id"] not in {p["id"] for p in preds}]
    assert metrics["missing"] == missing and len(missing) == 4
    assert metrics["extra"] == ["samm_999_9_9_1"]
    assert metrics["overall"]["coarse"]["unparsed"] == 1  # the empty answer; the missing one is not
    assert metrics["overall"]["fine"]["unparsed"] == 1
    types = metrics["by_question_type"]
    assert set(types) == {"coarse", "fine", "au", "left_right", "yes_no", "combined"}
    assert sum(t["n"] for t in types.values()) == len(truth)
    coarse = [r for r in expected if r["kind"] == "coarse"]
    hyps, refs = [r["pred_text"] for r in coarse], [r["answer"] for r in coarse]
    assert types["coarse"]["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(hyps, [refs], lowercase=True).score / 100
    )


def test_include_combined_adds_the_combined_answers():
    truth, preds, _ = fixture_rows()
    plain = score_rows(preds, truth)["overall"]
    combined = score_rows(preds, truth, Settings(include_combined=True))["overall"]
    n_combined = sum(1 for r in truth if "present" in r["question"])
    assert combined["fine"]["n"] == plain["fine"]["n"] + n_combined
    assert combined["coarse"]["n"] == plain["coarse"]["n"] + n_combined


def test_nothing_to_compute_is_null_not_zero():
    truth, preds, _ = fixture_rows()
    only_coarse = [r for r in truth if r["question"] == Q["coarse"]]
    metrics = score_rows(preds, only_coarse)["overall"]
    assert metrics["fine"] == {"uf1": None, "uar": None, "accuracy": None, "n": 0, "unparsed": 0}
    assert metrics["au"] == {
        k: None for k in ("yes_no_acc", "yes_no_f1", "left_right_acc", "set_f1", "per_au_f1")
    }
    assert metrics["coarse"]["uf1"] is not None


def test_perfect_answers_score_one():
    truth, _, _ = fixture_rows()
    overall = score_rows(truth, truth, Settings(include_combined=True))["overall"]
    assert [overall[level][k] for level in ("coarse", "fine") for k in ("uf1", "uar")] == [1.0] * 4
    assert overall["bleu"] == pytest.approx(1.0) and overall["rouge1"] == pytest.approx(1.0)
    assert overall["au"]["set_f1"] == 1.0 and set(overall["au"]["per_au_f1"].values()) == {1.0}


def _files(tmp_path, truth, preds):
    write_jsonl(tmp_path / "gt.jsonl", truth)
    write_jsonl(tmp_path / "pred.jsonl", preds)
    return str(tmp_path / "pred.jsonl"), str(tmp_path / "gt.jsonl")


def test_cli_writes_metrics_with_exact_keys(tmp_path, capsys):
    pred, gt = _files(tmp_path, *fixture_rows()[:2])
    out = tmp_path / "out"
    assert cli(["score", "--pred", pred, "--gt", gt, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| Overall |" in printed and "Coarse UF1" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == [
        "overall",
        "by_dataset",
        "by_question_type",
        "settings",
        "missing",
        "extra",
    ]
    block_keys = ["coarse", "fine", "bleu", "rouge1", "n_answers", "au"]
    assert list(metrics["overall"]) == block_keys
    assert all(list(b) == block_keys for b in metrics["by_dataset"].values())
    assert list(metrics["overall"]["au"]) == [
        "yes_no_acc",
        "yes_no_f1",
        "left_right_acc",
        "set_f1",
        "per_au_f1",
    ]
    assert list(metrics["overall"]["coarse"]) == ["uf1", "uar", "accuracy", "n", "unparsed"]
    assert list(metrics["by_question_type"]["coarse"]) == ["bleu", "rouge1", "n"]
    assert list(metrics["settings"]) == [
        "label_set", "bleu", "rouge", "include_combined", "rouge_stemmer"
    ]  # fmt: skip
    assert {p.name for p in out.iterdir()} == {
        "metrics.json",
        "report.md",
        "confusion_coarse.png",
        "confusion_fine.png",
    }


def test_a_report_that_fails_leaves_no_metrics_json(tmp_path, monkeypatch, capsys):
    """The demo counts a score step done once metrics.json exists: it is written last."""
    from vqa import report

    def power_cut(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "write_report", power_cut)
    pred, gt = _files(tmp_path, *fixture_rows()[:2])
    with pytest.raises(KeyboardInterrupt):
        cli(["score", "--pred", pred, "--gt", gt, "--out", str(tmp_path / "o")])
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_cli_options_reach_the_settings(tmp_path):
    pred, gt = _files(tmp_path, *fixture_rows()[:2])
    argv = ["--pred", pred, "--gt", gt, "--out", str(tmp_path / "o"), "--label-set", "gt+pred"]
    argv += ["--bleu", "sentence", "--rouge", "f1", "--include-combined", "--rouge-stemmer"]
    assert cli(["score", *argv]) == 0
    settings = json.loads((tmp_path / "o" / "metrics.json").read_text())["settings"]
    assert settings == {
        "label_set": "gt+pred",
        "bleu": "sentence",
        "rouge": "f1",
        "include_combined": True,
        "rouge_stemmer": True,
    }


def test_test_schema_matches_by_video_id_and_id_prefix(tmp_path):
    truth = [
        {
            "video_id": "casme3_test_CAS-1_1",
            "video": "CAS-1",
            "question": Q["coarse"],
            "answer": "negative",
        },
        {
            "video_id": "samm_test_SAMM-1_1",
            "video": "SAMM-1",
            "question": Q["coarse"],
            "answer": "positive",
        },
    ]
    preds = [{**truth[0], "answer": "negative"}, {**truth[1], "answer": "negative"}]
    metrics = score_rows(preds, truth)
    assert set(metrics["by_dataset"]) == {"casme3", "samm"}
    assert metrics["by_dataset"]["casme3"]["coarse"]["uf1"] == 1.0
    assert metrics["by_dataset"]["samm"]["coarse"]["uf1"] == 0.0


# ---------------------------------------------------------------- bad input: one line, exit 2


def _fails(capsys, argv, *needles):
    assert cli(["score", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_prediction_file_not_jsonl(tmp_path, capsys):
    pred, gt = _files(tmp_path, *fixture_rows()[:2])
    Path(pred).write_text('{"id": "x", "answer": "a"}\nthis is not json\n')
    _fails(capsys, ["--pred", pred, "--gt", gt], f"{pred}:2:", "not valid JSON")


def test_duplicate_ids(tmp_path, capsys):
    truth, preds, _ = fixture_rows()
    pred, gt = _files(tmp_path, truth, [*preds, preds[0]])
    _fails(capsys, ["--pred", pred, "--gt", gt], f"{pred}:{len(preds) + 1}:", "duplicate id")


def test_ground_truth_without_answers(tmp_path, capsys):
    truth, preds, _ = fixture_rows()
    pred, gt = _files(tmp_path, [{**r, "answer": ""} for r in truth], preds)
    _fails(capsys, ["--pred", pred, "--gt", gt], f"{gt}:1:", "ground truth has no answer")


def test_ground_truth_label_unknown(tmp_path, capsys):
    truth, preds, _ = fixture_rows()
    truth[1] = {**truth[1], "answer": "confused"}
    pred, gt = _files(tmp_path, truth, preds)
    _fails(capsys, ["--pred", pred, "--gt", gt], f"{gt}:2:", "'confused' names no fine class")


def test_no_overlap(tmp_path, capsys):
    truth, preds, _ = fixture_rows()
    pred, gt = _files(tmp_path, truth, [{**p, "id": "other_" + p["id"]} for p in preds])
    _fails(capsys, ["--pred", pred, "--gt", gt], "no prediction id matches")


def test_empty_file(tmp_path, capsys):
    pred, gt = _files(tmp_path, *fixture_rows()[:2])
    Path(pred).write_text("")
    _fails(capsys, ["--pred", pred, "--gt", gt, "--out", str(tmp_path / "o")], f"{pred}:", "empty")
    assert not (tmp_path / "o").exists()


def test_prediction_asking_another_question(tmp_path, capsys):
    truth, preds, _ = fixture_rows()
    preds[2] = {**preds[2], "question": truth[1]["question"]}  # a qa file of another --seed
    pred, gt = _files(tmp_path, truth, preds)
    out = tmp_path / "o"
    _fails(
        capsys,
        ["--pred", pred, "--gt", gt, "--out", str(out)],
        f"{pred}:3:",
        f"is not the ground truth's {truth[2]['question']!r} (at {gt}:3)",
        "answer the qa.jsonl you score against",
    )
    assert not out.exists()


def test_predictions_without_questions_score_as_with_them(tmp_path):
    truth, preds, _ = fixture_rows()
    bare = [{k: v for k, v in p.items() if k != "question"} for p in preds]
    assert score_rows(bare, truth) == score_rows(preds, truth)


def test_inputs_file_as_predictions(tmp_path, capsys):
    truth, preds, _ = fixture_rows()
    inputs = [{**row, "mode": "oao", "images": ["clips/a/onset_1.jpg"]} for row in truth]
    pred, gt = _files(tmp_path, truth, inputs)
    _fails(capsys, ["--pred", pred, "--gt", gt], f"{pred}:1:", "inputs.jsonl row", "me-vqa infer")


def test_missing_arguments(capsys):
    _fails(capsys, ["--pred", "x.jsonl"], "--pred and --gt are required")


# ---------------------------------------------------------------- real files (skipped when absent)


def test_team_predictions_against_each_other():
    pred = sorted((SHARED / "predictions" / "team_b").glob("*.jsonl"))
    gt = sorted((SHARED / "predictions" / "team_a").glob("*.jsonl"))
    if not pred or not gt:
        pytest.skip("shared prediction files are absent")
    from vqa.score import score_files

    metrics, _ = score_files(pred, gt, Settings())
    assert metrics["overall"]["n_answers"] == 120 and not metrics["missing"]
    assert set(metrics["by_dataset"]) == {"casme3", "samm"}
    assert metrics["overall"]["fine"]["unparsed"] == 6  # 'confused' x5, 'helpless'


def test_train_file_against_perturbed_copy():
    path = SHARED / "train" / "me_vqa_casme2.jsonl"
    if not path.is_file():
        pytest.skip("shared train file is absent")
    truth = [json.loads(line) for line in path.open()]
    flip = {"positive": "negative", "negative": "surprise", "surprise": "positive"}
    preds = [
        {**r, "answer": flip[r["answer"]]} if r["question"] == Q["coarse"] else r for r in truth
    ]
    overall = score_rows(preds, truth)["overall"]
    assert overall["coarse"]["uf1"] == 0.0 and overall["fine"]["uf1"] == 1.0
    assert overall["coarse"]["n"] == 145 and overall["au"]["set_f1"] == 1.0


def test_scorer_imports_no_opencv_or_data_builders():
    code = (
        "import sys, vqa.score, vqa.report, vqa.parse; "
        "bad = [m for m in sys.modules if m == 'cv2' or m.startswith('data_builders')]; "
        "sys.exit(len(bad))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
