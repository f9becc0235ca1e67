"""Benchmark: time ``me-vqa score`` on 20,000 answers (target: under 10 s).

Writes a ground-truth file and a prediction file of N rows (organisers' phrasings, with a
seeded mix of exact, free-text, wrong, empty and missing answers) into a temporary folder,
then times the library imports, the scoring and the report, and prints each.

    python scripts/bench/score.py [--n 20000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from vqa.jsonl import write_jsonl
from vqa.prompts import official
from vqa.taxonomy import AU_NAMES, FINE_TO_COARSE

FREE_TEXT = {
    "coarse": ["The coarse expression class is {coarse}.", "{coarse}", "It looks {coarse} to me."],
    "fine": ["The person looks {fine}.", "{fine}", "fine-grained expression class: {fine}"],
}


def clip_rows(rng: random.Random, dataset: str, clip: int) -> list[dict]:
    """The organisers' five questions for one synthetic clip, answered correctly."""
    phr = official()
    fine = rng.choice(list(FINE_TO_COARSE))
    coarse = FINE_TO_COARSE[fine]
    aus = rng.sample(sorted(AU_NAMES.values())[:20], rng.randint(1, 3))
    many = len(aus) > 1
    joined = phr["answers"]["au_separator"].join(aus)
    qa = [
        (phr["questions"]["coarse"], coarse),
        (phr["questions"]["fine"], fine),
        (phr["questions"]["au_many" if many else "au_one"], joined),
        (phr["questions"]["yes_no"].format(au=aus[0]), "yes"),
        (
            phr["questions"]["combined_many" if many else "combined_one"],
            phr["answers"]["combined_many" if many else "combined_one"].format(
                aus=joined, fine=fine, coarse=coarse
            ),
        ),
    ]
    image_id = f"clip{clip:05d}"
    return [
        {
            "id": f"{dataset}_{image_id}_{k}",
            "dataset": dataset,
            "image_id": image_id,
            "question": q,
            "answer": a,
        }
        for k, (q, a) in enumerate(qa, 1)
    ]


def predict(rng: random.Random, row: dict) -> dict | None:
    """A prediction for a row: mostly right, some free text, wrong, empty or missing."""
    luck = rng.random()
    if luck < 0.03:
        return None
    answer = row["answer"]
    if luck < 0.08:
        answer = ""
    elif luck < 0.3:
        answer = rng.choice(["negative", "happiness", "no", "brow lowerer", "I am not sure."])
    elif luck < 0.5 and row["answer"] in FINE_TO_COARSE.values():
        answer = rng.choice(FREE_TEXT["coarse"]).format(coarse=answer)
    elif luck < 0.5 and row["answer"] in FINE_TO_COARSE:
        answer = rng.choice(FREE_TEXT["fine"]).format(fine=answer)
    return {**row, "answer": answer}


def make_files(folder: Path, n: int, seed: int) -> tuple[Path, Path]:
    rng = random.Random(seed)
    truth = []
    for clip in range(-(-n // 5)):
        truth += clip_rows(rng, rng.choice(["casme2", "samm", "casme3"]), clip)
    truth = truth[:n]
    preds = [p for p in (predict(rng, row) for row in truth) if p is not None]
    write_jsonl(folder / "gt.jsonl", truth)
    write_jsonl(folder / "pred.jsonl", preds)
    return folder / "gt.jsonl", folder / "pred.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="answers to score")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gt, pred = make_files(Path(tmp), args.n, args.seed)
        start, cpu_start = time.perf_counter(), time.process_time()
        import rouge_score.rouge_scorer  # noqa: F401  (its nltk import dominates start-up)
        import sacrebleu.metrics  # noqa: F401

        from vqa import report, score

        imported = time.perf_counter()
        metrics, items = score.score_files([pred], [gt], score.Settings())
        scored = time.perf_counter()
        out = Path(tmp) / "out"
        out.mkdir()
        report.write_report(
            out, metrics, score.confusion_pairs(items), score.unparsed_answers(items)
        )
        done, cpu = time.perf_counter(), time.process_time() - cpu_start
    work, total = done - imported, done - start
    overall = metrics["overall"]
    lines = [
        f"answers scored: {overall['n_answers']} (missing {len(metrics['missing'])})",
        f"start-up imports (rouge-score pulls in nltk): {imported - start:6.2f} s wall",
        f"reading, parsing and all metrics:             {scored - imported:6.2f} s wall",
        f"report.md and confusion PNGs:                 {done - scored:6.2f} s wall",
        f"scoring work (the last two lines):           {work:6.2f} s wall "
        f"({'under' if work < 10 else 'OVER'} the 10 s target)",
        f"everything including imports:                 {total:6.2f} s wall, {cpu:.2f} s CPU",
        f"(overall coarse UF1 {overall['coarse']['uf1']:.4f}, BLEU {overall['bleu']:.4f})",
    ]
    print("\n".join(lines))
    return 0 if work < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
