"""Clips -> question/answer rows in the MEGC2025 organisers' phrasing and order.

Per clip: coarse, fine, AU(s), left/right (only when the clip has a lateral AU; it names the
first one), yes, no, combined, and with ``--analysis`` MEGC2026 ME-VQA-v2's open-ended
analysis. The ``v2`` question set asks what the ME-VQA-v2 test files ask per clip: coarse,
fine, AU(s), one yes/no (its answer drawn per clip) and the analysis. ``id =
{dataset}_{image_id}_{k}`` with k from 1. A clip without a fine class (SMIC) gets the coarse
question only. The yes AU is one of the clip's; the no AU one it lacks, drawn
from the AU vocabulary (every AU of the clips converted together, plus any given); both draws
are seeded per clip, so a clip's rows do not depend on its neighbours. Phrasings come from
``prompts/questions.yaml``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from data_builders.clips import Clip
from vqa.consistency import analysis_text
from vqa.prompts import official
from vqa.taxonomy import AU_NAMES

SIDE_WORDS = {"L": "left", "R": "right"}
QUESTION_SETS = ("2025", "v2")


def au_vocabulary(clips: Iterable[Clip], extra: Iterable[int] = ()) -> list[int]:
    """AU numbers the no-question may name: those of ``clips`` and ``extra``, ascending."""
    return sorted({au.number for clip in clips for au in clip.aus} | set(extra))


def _yes_no(clip: Clip, vocabulary: list[int], seed: int) -> tuple[str, str]:
    rng = random.Random(f"{seed}/{clip.dataset}/{clip.image_id}")
    own = {au.number for au in clip.aus}
    absent = [n for n in vocabulary if n not in own] or [n for n in AU_NAMES if n not in own]
    return rng.choice(clip.aus).name, AU_NAMES[rng.choice(absent)]


def _analysis(clip: Clip, seed: int) -> tuple[str, str]:
    """ME-VQA-v2's open-ended request and a reference analysis built from the clip's labels
    (wording and template drawn per clip)."""
    rng = random.Random(f"{seed}/{clip.dataset}/{clip.image_id}/analysis")
    texts = official()["analysis"]
    question = rng.choice(texts["questions"])
    template = rng.randrange(len(texts["answers"]))
    return question, analysis_text([au.name for au in clip.aus], clip.fine, clip.coarse, template)


def clip_pairs(
    clip: Clip, vocabulary: list[int], seed: int, analysis: bool = False, question_set: str = "2025"
) -> list[tuple[str, str]]:
    """(question, answer) pairs of one clip, in the organisers' order (the analysis last)."""
    text = official()
    q, a = text["questions"], text["answers"]
    pairs = [(q["coarse"], clip.coarse)]
    if clip.fine is None:
        return pairs
    pairs.append((q["fine"], clip.fine))
    if not clip.aus:
        return pairs
    number = "one" if len(clip.aus) == 1 else "many"
    names = a["au_separator"].join(au.name for au in clip.aus)
    pairs.append((q[f"au_{number}"], names))
    yes, no = _yes_no(clip, vocabulary, seed)
    if question_set == "v2":
        rng = random.Random(f"{seed}/{clip.dataset}/{clip.image_id}/v2")
        au, answer = rng.choice([(yes, "yes"), (no, "no")])
        return [*pairs, (q["yes_no"].format(au=au), answer), _analysis(clip, seed)]
    lateral = next((au for au in clip.aus if au.side in SIDE_WORDS), None)
    if lateral is not None:
        pairs.append((q["left_right"].format(au=lateral.name), SIDE_WORDS[lateral.side]))
    pairs += [(q["yes_no"].format(au=yes), "yes"), (q["yes_no"].format(au=no), "no")]
    combined = a[f"combined_{number}"].format(aus=names, fine=clip.fine, coarse=clip.coarse)
    pairs.append((q[f"combined_{number}"], combined))
    if analysis:
        pairs.append(_analysis(clip, seed))
    return pairs


def qa_rows(
    clips: list[Clip],
    seed: int,
    extra_vocabulary: Iterable[int] = (),
    analysis: bool = False,
    question_set: str = "2025",
) -> list[dict]:
    """QA rows in the organisers' schema (id, dataset, image_id, subject, filename, ...);
    ``analysis`` adds ME-VQA-v2's open-ended analysis row to every clip with a fine class and
    AUs; ``question_set`` v2 asks the ME-VQA-v2 test files' questions instead."""
    vocabulary = au_vocabulary(clips, extra_vocabulary)
    rows = []
    for clip in clips:
        pairs = clip_pairs(clip, vocabulary, seed, analysis, question_set)
        for k, (question, answer) in enumerate(pairs, 1):
            rows.append(
                {
                    "id": f"{clip.dataset}_{clip.image_id}_{k}",
                    "dataset": clip.dataset,
                    "image_id": clip.image_id,
                    "subject": clip.subject,
                    "filename": clip.filename,
                    "question": question,
                    "answer": answer,
                }
            )
    return rows


def join_official(
    rows: list[dict], clips: list[Clip], dataset: str
) -> tuple[list[dict], list[Clip], list[str]]:
    """The official rows of ``dataset`` whose clip is among ``clips``, those clips, and missing ids.

    Rows keep their own questions and answers; clips are matched on ``image_id``.
    """
    by_id = {clip.image_id: clip for clip in clips}
    mine = [row for row in rows if row.get("dataset") == dataset]
    kept = [row for row in mine if row.get("image_id") in by_id]
    missing = [str(row.get("id")) for row in mine if row.get("image_id") not in by_id]
    used = {row["image_id"] for row in kept}
    return kept, [clip for clip in clips if clip.image_id in used], missing
