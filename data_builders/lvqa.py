"""Long videos -> ME-LVQA question/answer rows in the MEGC2026 phrasing (``prompts/lvqa.yaml``).

Per video: the number of expression events, of micro- and of macro-expression events (digits),
the distinct action units (FACS names in AU-number order, joined by ", "; asked only when the
video has AUs), the type of the k-th event by onset (``micro-expression`` /
``macro-expression``; two k's drawn per video, seeded per video, as the MEGC2026 test files
ask, or every k with ``all_events``), and per type the list of its intervals as
``onset-offset`` frame numbers (asked only when every event of that type has a known offset).
A sheet that lists micro-expressions only (CAS(ME)^3 Part A) gets their count and intervals
only.
Rows are ``{id, dataset, subject, video, question, answer}``, ``id = {dataset}_{video}_{k}``.
"""

from __future__ import annotations

import random

from data_builders.long_videos import EVENT_TYPES, LongVideo
from vqa.lvqa import render_intervals, texts


def video_pairs(video: LongVideo, seed: int, all_events: bool) -> list[tuple[str, str]]:
    """(question, answer) pairs of one long video; of a sheet that lists micro-expressions
    only, just their count and their intervals (the rest needs the macro ones too)."""
    q, a = texts()["questions"], texts()["answers"]
    events = video.events
    by_type = {kind: [e for e in events if e.type == kind] for kind in EVENT_TYPES}
    if video.annotated != EVENT_TYPES:
        return [(q["count_micro"], str(len(by_type["micro"]))), *_spot_pairs(by_type, ("micro",))]
    pairs = [(q["count_total"], str(len(events)))]
    pairs += [(q[f"count_{kind}"], str(len(by_type[kind]))) for kind in EVENT_TYPES]
    aus = {au.number: au.name for event in events for au in event.aus}
    if aus:
        pairs.append((q["au_inventory"], a["au_separator"].join(aus[n] for n in sorted(aus))))
    positions = range(1, len(events) + 1)
    if not all_events:
        rng = random.Random(f"{seed}/{video.dataset}/{video.video}")
        positions = rng.sample(positions, min(2, len(events)))
    for k in positions:
        pairs.append((q["event_type"].format(k=k), a[f"type_{events[k - 1].type}"]))
    return pairs + _spot_pairs(by_type, EVENT_TYPES)


def _spot_pairs(by_type: dict[str, list], kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    """Per type, the list of its intervals, when every event of that type has an offset."""
    q = texts()["questions"]
    return [
        (q[f"spot_{kind}"], render_intervals([(e.onset, e.offset) for e in by_type[kind]]))
        for kind in kinds
        if all(e.offset is not None for e in by_type[kind])
    ]


def lvqa_rows(videos: list[LongVideo], seed: int, all_events: bool = False) -> list[dict]:
    """LVQA training rows of every video, in video order."""
    rows = []
    for video in videos:
        for k, (question, answer) in enumerate(video_pairs(video, seed, all_events), 1):
            rows.append(
                {
                    "id": f"{video.dataset}_{video.video}_{k}",
                    "dataset": video.dataset,
                    "subject": video.subject,
                    "video": video.video,
                    "question": question,
                    "answer": answer,
                }
            )
    return rows
