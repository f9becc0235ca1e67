"""``me-vqa score``: score answer files the way the ME-VQA challenge does.

Answers are parsed into labels (:mod:`vqa.parse`), then scored with the MEGC2025 paper's
definitions: UF1 and UAR over the ground-truth classes for coarse and fine emotion,
BLEU-4 (sacrebleu, lower-cased) and ROUGE-1 recall (rouge-score) over all answers, and
action-unit metrics, each overall, per database and per question type. ``--label-set``,
``--bleu``, ``--rouge`` and ``--rouge-stemmer`` switch to the other published ways of computing
them (``--bleu sentence`` is nltk's sentence BLEU with smoothing method 1 on lower-cased words,
as a community re-implementation computes it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from vqa import databases, folds
from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.jsonl import make_folder, read_jsonl, write_text_atomic
from vqa.metrics import blocks_for, mean
from vqa.question_types import REGISTRY, question_type
from vqa.records import is_inputs_row

UNPARSED = "unparsed"
LEVELS = ("coarse", "fine")


@dataclass(frozen=True)
class Settings:
    """Which published variant of each metric to compute (defaults: the MEGC2025 paper)."""

    label_set: str = "gt"  # gt | gt+pred
    bleu: str = "corpus"  # corpus | sentence
    rouge: str = "recall"  # recall | f1
    include_combined: bool = False
    rouge_stemmer: bool = False  # rouge-score's Porter stemmer, as one re-implementation uses


@dataclass
class Item:
    """One ground-truth question with its prediction ("" and missing=True when none)."""

    id: str
    dataset: str
    qtype: str
    truth: str
    answer: str
    missing: bool
    # task -> (true label, predicted label or None), the tasks its question type reads
    # (AU tasks hold frozensets of AU names; see vqa.question_types)
    labels: dict[str, tuple] = field(default_factory=dict)
    bleu: float = 0.0  # sentence BLEU, filled only with --bleu sentence
    rouge: float = 0.0


# ---------------------------------------------------------------- reading and matching


def row_id(row: dict, file: Path | str, lineno: int) -> str:
    """A row's ``id`` (training schema) or ``video_id`` (test schema)."""
    key = row.get("id", row.get("video_id"))
    if not isinstance(key, str) or not key:
        raise UserError(
            "row has no 'id' or 'video_id'", file=file, row=lineno, fix="every row needs one"
        )
    return key


Source = tuple[dict, "Path | str", int]  # row, its file (or a name for in-memory rows), row number


def index_rows(rows: Iterable[Source]) -> dict[str, Source]:
    """Rows by id; a duplicate id or a row without a text answer is a :class:`UserError`."""
    indexed: dict[str, Source] = {}
    for row, file, lineno in rows:
        key = row_id(row, file, lineno)
        if key in indexed:
            _, first, first_row = indexed[key]
            raise UserError(
                f"duplicate id {key!r} (first at {first}:{first_row})",
                file=file,
                row=lineno,
                fix="each id may appear once across the files given",
            )
        if not isinstance(row.get("answer"), str):
            raise UserError(
                "'answer' is missing or not text", file=file, row=lineno, fix='use "answer": "..."'
            )
        indexed[key] = (row, file, lineno)
    return indexed


def load_rows(paths: Iterable[Path]) -> dict[str, Source]:
    """Rows of several jsonl files by id, each with its file and row number."""
    return index_rows(
        (row, path, lineno) for path in paths for lineno, row in enumerate(read_jsonl(path), 1)
    )


def in_memory(rows: list[dict], name: str) -> dict[str, Source]:
    """Rows already loaded, by id; ``name`` stands for their file in error messages."""
    return index_rows((row, name, lineno) for lineno, row in enumerate(rows, 1))


def dataset_of(row: dict, key: str) -> str:
    """Database of a row: its ``dataset`` field, else the prefix of its id."""
    if row.get("dataset"):
        return str(row["dataset"]).lower()
    return databases.of_id(key) or "unknown"


def _no_label(label) -> bool:
    """Whether a reading found nothing in an answer (0 events and no interval are labels)."""
    return label is None or label in ("", frozenset())


def _required(reading, text: str, file: Path, lineno: int):
    """The label a reading parses from a ground-truth answer; none, or an answer the reading
    finds a problem in, is a :class:`UserError`."""
    label = reading.parse(text)
    if _no_label(label):
        raise UserError(
            f"ground-truth answer {text!r} names no {reading.what}",
            file=file,
            row=lineno,
            fix="ground truth must use the organisers' labels",
        )
    problem = reading.truth_problem(text) if reading.truth_problem else None
    if problem:
        raise UserError(
            f"ground-truth answer {text!r}: {problem}",
            file=file,
            row=lineno,
            fix="correct the --gt file (me-vqa convert writes ground truth the scorer reads)",
        )
    return label


def attach_labels(item: Item, include_combined: bool, file: Path, lineno: int) -> None:
    """Parse the truth and the answer of an item into the labels its question type reads."""
    qtype = REGISTRY.get(item.qtype)
    for reading in qtype.readings if qtype else ():
        if reading.optional and not include_combined:
            continue
        truth = _required(reading, item.truth, file, lineno)
        item.labels[reading.task] = (truth, reading.parse(item.answer))


def check_prediction(pred: Source, truth: Source | None) -> None:
    """A prediction is an answer (not a build-inputs row) to the ground truth's question."""
    row, path, lineno = pred
    if is_inputs_row(row):
        raise UserError(
            "row is an inputs.jsonl row (visual keys of build-inputs), not an answer",
            file=path,
            row=lineno,
            fix="give the answers file me-vqa infer wrote (its --out)",
        )
    question = row.get("question")
    if truth is not None and question is not None and question != truth[0]["question"]:
        true_row, true_path, true_lineno = truth
        raise UserError(
            f"question {question!r} is not the ground truth's {true_row['question']!r} "
            f"(at {true_path}:{true_lineno})",
            file=path,
            row=lineno,
            fix="answer the qa.jsonl you score against: one converted with another --seed "
            "asks other questions under the same ids",
        )


def match(preds: dict[str, Source], truth: dict[str, Source], settings: Settings):
    """Items for every ground-truth row, plus the missing and extra ids."""
    for row, path, lineno in truth.values():
        if not isinstance(row.get("question"), str):
            raise UserError(
                "row has no 'question'", file=path, row=lineno, fix="check the --gt file"
            )
        if not row["answer"].strip():
            raise UserError(
                "ground truth has no answer",
                file=path,
                row=lineno,
                fix="--gt needs answered rows; a test file to answer cannot be ground truth",
            )
    for key, pred in preds.items():
        check_prediction(pred, truth.get(key))
    if not truth.keys() & preds.keys():
        raise UserError(
            "no prediction id matches a ground-truth id",
            file=next(iter(preds.values()))[1] if preds else None,
            fix="rows are matched by 'id' or 'video_id'; check that --pred answers --gt",
        )
    items = []
    # no progress bar here: parsing is cached and fast, and a bad row must print one clean line
    for key, (row, path, lineno) in truth.items():
        pred = preds.get(key)
        item = Item(
            id=key,
            dataset=dataset_of(row, key),
            qtype=question_type(row["question"]),
            truth=row["answer"],
            answer=pred[0]["answer"] if pred else "",
            missing=pred is None,
        )
        attach_labels(item, settings.include_combined, path, lineno)
        items.append(item)
    missing = [it.id for it in items if it.missing]
    extra = [key for key in preds if key not in truth]
    return items, missing, extra


# ---------------------------------------------------------------- metrics


def text_metrics(items: list[Item], settings: Settings) -> tuple[float | None, float | None]:
    """(BLEU, ROUGE-1) of the answers against the ground truth, both on a 0-1 scale."""
    if not items:
        return None, None
    if settings.bleu == "corpus":
        answers, truths = [it.answer for it in items], [it.truth for it in items]
        bleu = _corpus_bleu().corpus_score(answers, [truths]).score / 100
    else:
        bleu = mean([it.bleu for it in items])
    return bleu, mean([it.rouge for it in items])


def _corpus_bleu():
    """sacrebleu's corpus BLEU-4, lower-cased."""
    from sacrebleu.metrics import BLEU

    return BLEU(lowercase=True)


def sentence_bleu(truth: str, answer: str) -> float:
    """nltk's sentence BLEU-4 of lower-cased whitespace words, smoothing method 1 (the
    re-implementation that averages BLEU over answers)."""
    import warnings

    from nltk.translate.bleu_score import SmoothingFunction
    from nltk.translate.bleu_score import sentence_bleu as nltk_bleu

    with warnings.catch_warnings():  # nltk warns of empty answers; they score 0
        warnings.simplefilter("ignore")
        return nltk_bleu(
            [truth.lower().split()],
            answer.lower().split(),
            smoothing_function=SmoothingFunction().method1,
        )


def subset_metrics(items: list[Item], settings: Settings) -> dict:
    """The metrics.json block for one subset of answers (overall or one database)."""
    bleu, rouge = text_metrics(items, settings)
    blocks = blocks_for(items, settings.label_set)
    first = {name: blocks.pop(name) for name in LEVELS}  # the MEGC2025 layout's order
    return {**first, "bleu": bleu, "rouge1": rouge, "n_answers": len(items), **blocks}


def _groups(items: list[Item], key: Callable[[Item], str]) -> dict[str, list[Item]]:
    groups: dict[str, list[Item]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    return dict(sorted(groups.items()))


def attach_sentence_scores(items: list[Item], settings: Settings) -> None:
    """Per-answer ROUGE-1 (and sentence BLEU with ``--bleu sentence``), computed once per
    distinct (truth, answer) pair and then averaged per subset."""
    from rouge_score.rouge_scorer import RougeScorer

    pairs = list(dict.fromkeys((it.truth, it.answer) for it in items))
    scorer = RougeScorer(["rouge1"], use_stemmer=settings.rouge_stemmer)
    scores = {}
    for truth, answer in tqdm(pairs, desc="text metrics", leave=False):
        sentence = sentence_bleu(truth, answer) if settings.bleu == "sentence" else 0.0
        rouge = scorer.score(truth, answer)["rouge1"]
        scores[truth, answer] = (
            sentence,
            rouge.recall if settings.rouge == "recall" else rouge.fmeasure,
        )
    for it in items:
        it.bleu, it.rouge = scores[it.truth, it.answer]


def score_items(
    items: list[Item], settings: Settings, missing: list[str], extra: list[str]
) -> dict:
    """The whole metrics.json document."""
    attach_sentence_scores(items, settings)
    by_type = {}
    for qtype, group in _groups(items, lambda it: it.qtype).items():
        bleu, rouge = text_metrics(group, settings)
        by_type[qtype] = {"bleu": bleu, "rouge1": rouge, "n": len(group)}
    return {
        "overall": subset_metrics(items, settings),
        "by_dataset": {
            name: subset_metrics(group, settings)
            for name, group in _groups(items, lambda it: it.dataset).items()
        },
        "by_question_type": by_type,
        "settings": asdict(settings),
        "missing": missing,
        "extra": extra,
    }


def score_files(
    pred: list[Path], gt: list[Path], settings: Settings, holdout: list[str] | None = None
) -> tuple[dict, list[Item]]:
    """Score prediction files against ground-truth files: (metrics, items).

    With ``holdout`` subjects, only their ground truth is scored (and predictions of other
    subjects' questions are ignored)."""
    predictions, truth = load_rows(pred), load_rows(gt)
    if holdout:
        others = folds.split_rows([row for row, _, _ in truth.values()], holdout, gt[0])[0]
        other_ids = {row.get("id", row.get("video_id")) for row in others}
        truth = {k: v for k, v in truth.items() if k not in other_ids}
        predictions = {k: v for k, v in predictions.items() if k not in other_ids}
    items, missing, extra = match(predictions, truth, settings)
    return score_items(items, settings, missing, extra), items


def score_rows(
    predictions: list[dict], truth: list[dict], settings: Settings | None = None
) -> dict:
    """metrics.json document for rows already in memory (qa rows with answers)."""
    settings = settings or Settings()
    items, missing, extra = match(
        in_memory(predictions, "<predictions>"), in_memory(truth, "<ground truth>"), settings
    )
    return score_items(items, settings, missing, extra)


# ---------------------------------------------------------------- command line


def build_parser():
    parser = command_parser("score")
    parser.add_argument("--pred", nargs="+", type=Path, metavar="P.jsonl", help="answer files")
    parser.add_argument("--gt", nargs="+", type=Path, metavar="G.jsonl", help="ground-truth files")
    parser.add_argument(
        "--out", type=Path, help="write metrics.json, report.md and confusion PNGs here"
    )
    parser.add_argument(
        "--label-set",
        choices=("gt", "gt+pred"),
        default="gt",
        help="classes averaged in UF1/UAR: ground truth only, or also predicted labels",
    )
    parser.add_argument(
        "--bleu", choices=("corpus", "sentence"), default="corpus", help="BLEU-4 variant"
    )
    parser.add_argument(
        "--rouge", choices=("recall", "f1"), default="recall", help="ROUGE-1 variant"
    )
    parser.add_argument(
        "--rouge-stemmer", action="store_true", help="ROUGE-1 over Porter-stemmed words"
    )
    parser.add_argument(
        "--include-combined",
        action="store_true",
        help="also score the classes and AUs named in answers to the combined question",
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="print one table of earlier --out folders",
    )
    folds.add_arguments(parser)
    return parser


def main(argv: list[str]) -> int:
    from vqa import report

    args = build_parser().parse_args(argv)
    if args.compare:
        if args.pred or args.gt:
            raise UserError(
                "--compare cannot be combined with --pred/--gt", fix="run them separately"
            )
        print(report.compare_table(args.compare))
        return 0
    if not args.pred or not args.gt:
        raise UserError("--pred and --gt are required", fix="or use --compare DIR ...")
    settings = Settings(
        args.label_set, args.bleu, args.rouge, args.include_combined, args.rouge_stemmer
    )
    holdout = folds.holdout_subjects(args.holdout_subjects, args.folds, args.fold)
    metrics, items = score_files(args.pred, args.gt, settings, holdout)
    print(report.summary(metrics))
    if args.out:
        make_folder(args.out)
        report.write_report(args.out, metrics, confusion_pairs(items), unparsed_answers(items))
        # metrics.json last: the demo counts a score with one as done
        write_text_atomic(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        print(f"wrote {args.out / 'metrics.json'} and {args.out / 'report.md'}")
    return 0


def confusion_pairs(items: list[Item]) -> dict[str, list[tuple[str, str]]]:
    """(true, predicted-or-unparsed) labels per emotion level, for the confusion matrices."""
    return {
        level: [
            (it.labels[level][0], it.labels[level][1] or UNPARSED)
            for it in items
            if level in it.labels
        ]
        for level in LEVELS
    }


def unparsed_answers(items: list[Item]) -> list[dict]:
    """Answers given but parsed to no label, for the report."""
    rows = []
    for it in items:
        if it.missing:
            continue
        tasks = [task for task, (_, pred) in it.labels.items() if _no_label(pred)]
        rows += [
            {"id": it.id, "question_type": it.qtype, "label": t, "answer": it.answer} for t in tasks
        ]
    return rows
