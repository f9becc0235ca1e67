"""Tables, report.md and confusion-matrix pictures for ``me-vqa score``.

Everything here reads the metrics.json document (see :mod:`vqa.score`), so a report can be
rebuilt, and runs compared, from the files alone.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from vqa import databases
from vqa.errors import UserError
from vqa.jsonl import atomic_path, write_text_atomic
from vqa.metrics import TABLES, Table
from vqa.taxonomy import COARSE_CLASSES, FINE_CLASSES

CLASS_ORDER = {label: i for i, label in enumerate((*COARSE_CLASSES, *FINE_CLASSES))}


def fmt(value: float | int | None) -> str:
    """A number for a table: 4 decimals, '-' when there was nothing to compute it from."""
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _value(block: dict, path: str):
    for key in path.split("."):
        block = block.get(key) if isinstance(block, dict) else None
    return block


def cells(table: Table, block: dict) -> list[str]:
    """One subset's row of a registered table (without the answer count)."""
    return [fmt(_value(block, path)) for _, path in table.columns]


def headers(table: Table) -> list[str]:
    return [header for header, _ in table.columns]


def main_cells(block: dict) -> list[str]:
    """One row of the MEGC2025 paper's Table 2 layout."""
    return cells(TABLES["main"], block)


def _subsets(metrics: dict) -> list[tuple[str, dict]]:
    named = [(databases.title(k), v) for k, v in metrics["by_dataset"].items()]
    return [*named, ("Overall", metrics["overall"])]


def subset_table(metrics: dict, table: Table) -> str:
    """The table over every database and overall."""
    count = ["Answers"] if table.count else []
    rows = [
        [name, *cells(table, block), *([fmt(_value(block, table.count))] if count else [])]
        for name, block in _subsets(metrics)
    ]
    return markdown_table(["Dataset", *headers(table), *count], rows)


def shown_tables(metrics: dict) -> list[tuple[str, str]]:
    """(title, markdown) of every registered table whose block the scores have."""
    overall = metrics["overall"]
    return [
        (table.title, subset_table(metrics, table))
        for table in TABLES.values()
        if table.columns[0][1].split(".")[0] in overall
    ]


def per_au_table(metrics: dict) -> str:
    per_au = metrics["overall"]["au"]["per_au_f1"] or {}
    return markdown_table(["Action unit", "F1"], [[name, fmt(f1)] for name, f1 in per_au.items()])


def question_type_table(metrics: dict) -> str:
    rows = [
        [q, fmt(b["n"]), fmt(b["bleu"]), fmt(b["rouge1"])]
        for q, b in metrics["by_question_type"].items()
    ]
    return markdown_table(["Question type", "Answers", "BLEU", "ROUGE-1"], rows)


def _unparsed_counts(metrics: dict) -> str:
    overall = metrics["overall"]
    parts = [
        f"{level} {overall[level]['unparsed']}/{overall[level]['n']}"
        for level in ("coarse", "fine")
    ]
    return "unparsed: " + ", ".join(parts)


def write_spotting_report(out: Path, metrics: dict) -> None:
    """report.md of ``me-vqa score-spotting``: the registered tables its spotting block feeds."""
    sections = [
        "# Spotting scores",
        "Intervals match at IoU >= 0.5, one to one, micro and macro apart (MEGC2021); "
        "'-' means nothing to compute from.",
        *(part for title, markdown in shown_tables(metrics) for part in (f"## {title}", markdown)),
    ]
    write_text_atomic(out / "report.md", "\n\n".join(sections) + "\n")


def summary(metrics: dict) -> str:
    """What the command prints: the main and AU tables and the counts of odd rows."""
    settings = ", ".join(f"{k}={v}" for k, v in metrics["settings"].items())
    counts = f"missing predictions: {len(metrics['missing'])}, extra: {len(metrics['extra'])}"
    tables = [markdown for _, markdown in shown_tables(metrics)]
    return "\n\n".join([*tables, f"{_unparsed_counts(metrics)}; {counts}", settings])


def confusion_figure(pairs: list[tuple[str, str]], title: str):
    """A confusion matrix figure (rows: ground truth, columns: prediction), counts in cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def order(labels):
        return sorted(labels, key=lambda x: (CLASS_ORDER.get(x, len(CLASS_ORDER)), x))

    rows = order({t for t, _ in pairs})
    cols = order({p for _, p in pairs} | set(rows))
    counts = Counter(pairs)
    matrix = [[counts[(t, p)] for p in cols] for t in rows]
    fig, ax = plt.subplots(figsize=(1.6 + 0.8 * len(cols), 1.4 + 0.6 * len(rows)))
    ax.imshow(matrix, cmap="Blues")
    peak = max(max(r) for r in matrix)
    for i, r in enumerate(matrix):
        for j, n in enumerate(r):
            ax.text(
                j, i, str(n), ha="center", va="center", color="white" if n > peak / 2 else "black"
            )
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("ground-truth label")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def confusion_png(path: Path, pairs: list[tuple[str, str]], title: str) -> None:
    """Save :func:`confusion_figure` as a PNG, atomically."""
    fig = confusion_figure(pairs, title)  # selects the Agg backend before pyplot is imported here
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _unparsed_section(unparsed: list[dict], metrics: dict) -> str:
    lines = ["## Unparsed answers", ""]
    if unparsed:
        lines.append(
            markdown_table(
                ["id", "question type", "label", "answer"],
                [
                    [
                        r["id"],
                        r["question_type"],
                        r["label"],
                        r["answer"].replace("|", "\\|").replace("\n", " "),
                    ]
                    for r in unparsed
                ],
            )
        )
    else:
        lines.append("None: every answer named a label.")
    missing = metrics["missing"]
    lines += ["", f"## Missing predictions ({len(missing)})", "", ", ".join(missing) or "None."]
    return "\n".join(lines)


def write_report(
    out: Path, metrics: dict, confusions: dict[str, list[tuple[str, str]]], unparsed: list[dict]
) -> None:
    """Write report.md and confusion_<level>.png into ``out``."""
    pictures = []
    for level, pairs in confusions.items():
        if pairs:
            name = f"confusion_{level}.png"
            confusion_png(out / name, pairs, f"{level} expression class (n={len(pairs)})")
            pictures.append(f"![{level} confusion matrix]({name})")
    settings = ", ".join(f"`{k}={v}`" for k, v in metrics["settings"].items())
    sections = [
        "# ME-VQA scores",
        f"Settings: {settings}. Scores are on a 0-1 scale; '-' means nothing to compute from.",
        *(part for title, markdown in shown_tables(metrics) for part in (f"## {title}", markdown)),
        "### Per-AU F1 (overall)",
        per_au_table(metrics),
        "## By question type",
        question_type_table(metrics),
        "## Confusion matrices",
        "\n\n".join(pictures) or "No coarse or fine questions were scored.",
        _unparsed_section(unparsed, metrics),
    ]
    write_text_atomic(out / "report.md", "\n\n".join(sections) + "\n")


def load_metrics(folder: Path) -> dict:
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        raise UserError(
            "no metrics.json here", file=folder, fix="give folders written by 'me-vqa score --out'"
        )
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(
            f"not valid JSON ({e.msg})", file=path, fix="re-run 'me-vqa score --out'"
        ) from None
    shaped = isinstance(metrics, dict) and all(
        isinstance(metrics.get(key), dict) for key in ("overall", "by_dataset", "settings")
    )
    if not shaped:
        raise UserError(
            "not a metrics.json of 'me-vqa score' (no overall, by_dataset and settings)",
            file=path,
            fix="give folders written by 'me-vqa score --out'",
        )
    return metrics


def compare_table(folders: list[Path]) -> str:
    """One table of several runs: each run's databases and overall, main and AU metrics."""
    rows, settings = [], set()
    for folder in folders:
        metrics = load_metrics(folder)
        settings.add(json.dumps(metrics["settings"], sort_keys=True))
        for name, block in _subsets(metrics):
            rows.append([str(folder), name, *main_cells(block), *cells(TABLES["au"], block)])
    table = markdown_table(
        ["Run", "Dataset", *headers(TABLES["main"]), *headers(TABLES["au"])], rows
    )
    if len(settings) > 1:
        table += "\n\nnote: the runs were scored with different settings; compare with care"
    return table
