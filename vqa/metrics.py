"""Metric functions over (true, predicted) labels, and the metric blocks of metrics.json.

A scored question carries ``labels``: task -> (true label, predicted label or None), where
the AU tasks hold frozensets of AU names. Each :class:`Block` turns the labels of a subset of
questions into one block of metrics.json; the question types of :mod:`vqa.question_types`
say which tasks their answers are read for, and so which blocks appear.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from vqa.taxonomy import AU_NUMBERS

Pair = tuple  # (true label, predicted label or None); frozensets for AU tasks


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def accuracy(pairs: list[Pair]) -> float | None:
    return mean([float(true == pred) for true, pred in pairs])


def class_scores(pairs: list[Pair], label_set: str) -> dict[str, float | None]:
    """UF1 and UAR of (true, predicted) labels; None as prediction is a miss for no class.

    Classes are those in the ground truth (``gt``) or also those predicted (``gt+pred``);
    a class nobody truly has gets recall 0, as scikit-learn's ``zero_division=0`` does.
    """
    tp, fp, support = Counter(), Counter(), Counter()
    for true, pred in pairs:
        support[true] += 1
        if pred == true:
            tp[true] += 1
        elif pred is not None:
            fp[pred] += 1
    classes = sorted(set(support) | (set(fp) if label_set == "gt+pred" else set()))
    f1 = [2 * tp[c] / (tp[c] + support[c] + fp[c]) for c in classes]
    recall = [tp[c] / support[c] if support[c] else 0.0 for c in classes]
    return {"uf1": mean(f1), "uar": mean(recall)}


def set_f1(true: frozenset[str], pred: frozenset[str]) -> float:
    """F1 of one answer's AU set against the true set."""
    total = len(true) + len(pred)
    return 2 * len(true & pred) / total if total else 1.0


def per_au_f1(pairs: list[Pair], label_set: str) -> dict[str, float]:
    """F1 of each action unit over answers (the DFME way), by FACS number."""
    tp, fp, fn = Counter(), Counter(), Counter()
    for true, pred in pairs:
        tp.update(true & pred)
        fp.update(pred - true)
        fn.update(true - pred)
    names = set(tp) | set(fn) | (set(fp) if label_set == "gt+pred" else set())
    return {n: 2 * tp[n] / (2 * tp[n] + fp[n] + fn[n]) for n in sorted(names, key=AU_NUMBERS.get)}


def pairs_of(items: list, task: str) -> list[Pair]:
    return [it.labels[task] for it in items if task in it.labels]


def unparsed(items: list, task: str) -> int:
    """Answers given but read as no label for ``task``."""
    return sum(1 for it in items if task in it.labels and not it.missing and not it.labels[task][1])


def emotion_block(task: str) -> Callable[[list, str], dict]:
    """Accuracy, UF1 and UAR of one emotion level (coarse or fine)."""

    def compute(items: list, label_set: str) -> dict:
        pairs = pairs_of(items, task)
        return {
            **class_scores(pairs, label_set),
            "accuracy": accuracy(pairs),
            "n": len(pairs),
            "unparsed": unparsed(items, task),
        }

    return compute


def au_block(items: list, label_set: str) -> dict:
    """Yes/no and left/right accuracy, AU-set F1 and per-AU F1."""
    yes_no, sets = pairs_of(items, "yes_no"), pairs_of(items, "aus")
    return {
        "yes_no_acc": accuracy(yes_no),
        "yes_no_f1": class_scores(yes_no, label_set)["uf1"],
        "left_right_acc": accuracy(pairs_of(items, "left_right")),
        "set_f1": mean([set_f1(true, pred) for true, pred in sets]),
        "per_au_f1": per_au_f1(sets, label_set) if sets else None,
    }


def analysis_block(items: list, label_set: str) -> dict:
    """How often open-ended analyses name the reference's classes, and their AU-set F1."""
    sets = pairs_of(items, "analysis_aus")
    return {
        "coarse_agreement": accuracy(pairs_of(items, "analysis_coarse")),
        "fine_agreement": accuracy(pairs_of(items, "analysis_fine")),
        "au_f1": mean([set_f1(true, pred) for true, pred in sets]),
        "n": len(sets),
    }


@dataclass(frozen=True)
class Block:
    """One block of a metrics.json subset, computed from the labels of some tasks.

    ``always``: present even when no question feeds it (the MEGC2025 layout keeps its coarse,
    fine and AU blocks); other blocks appear only where their tasks were scored.
    """

    name: str
    tasks: tuple[str, ...]
    compute: Callable[[list, str], dict]
    always: bool = False


BLOCKS: dict[str, Block] = {
    b.name: b
    for b in (
        Block("coarse", ("coarse",), emotion_block("coarse"), always=True),
        Block("fine", ("fine",), emotion_block("fine"), always=True),
        Block("au", ("yes_no", "left_right", "aus"), au_block, always=True),
        Block("analysis", ("analysis_coarse", "analysis_fine", "analysis_aus"), analysis_block),
    )
}


def register_block(block: Block) -> None:
    """Add a metric block (its name is its key in metrics.json)."""
    BLOCKS[block.name] = block


def blocks_for(items: list, label_set: str) -> dict[str, dict]:
    """Every block that applies to ``items``, computed."""
    tasks = {task for it in items for task in it.labels}
    return {
        name: block.compute(items, label_set)
        for name, block in BLOCKS.items()
        if block.always or tasks.intersection(block.tasks)
    }


@dataclass(frozen=True)
class Table:
    """A report table: one row per database and overall, columns read from metrics.json.

    ``columns`` are (header, dotted path in a subset block); a table is shown where the block
    of its first column is present. ``count`` adds an "Answers" column from that path.
    """

    title: str
    columns: tuple[tuple[str, str], ...]
    count: str | None = None


TABLES: dict[str, Table] = {
    "main": Table(
        "Emotion classes and text similarity (MEGC2025 Table 2 layout)",
        (
            ("Coarse UF1", "coarse.uf1"),
            ("Coarse UAR", "coarse.uar"),
            ("Fine UF1", "fine.uf1"),
            ("Fine UAR", "fine.uar"),
            ("BLEU", "bleu"),
            ("ROUGE-1", "rouge1"),
        ),
        count="n_answers",
    ),
    "accuracy": Table(
        "Emotion classes with accuracy (DFME layout)",
        (
            ("Coarse acc", "coarse.accuracy"),
            ("Coarse UF1", "coarse.uf1"),
            ("Coarse UAR", "coarse.uar"),
            ("Fine acc", "fine.accuracy"),
            ("Fine UF1", "fine.uf1"),
            ("Fine UAR", "fine.uar"),
        ),
    ),
    "au": Table(
        "Action units",
        (
            ("Yes/no acc", "au.yes_no_acc"),
            ("Yes/no F1", "au.yes_no_f1"),
            ("Left/right acc", "au.left_right_acc"),
            ("AU set F1", "au.set_f1"),
        ),
    ),
    "analysis": Table(
        "Open-ended analysis (ME-VQA-v2): the classes and AUs it names against the reference's",
        (
            ("Coarse agreement", "analysis.coarse_agreement"),
            ("Fine agreement", "analysis.fine_agreement"),
            ("AU F1", "analysis.au_f1"),
        ),
        count="analysis.n",
    ),
}


def register_table(key: str, table: Table) -> None:
    TABLES[key] = table
