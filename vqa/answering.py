"""Answering questions by greedy generation, one clip's pictures encoded once: the one answering
path of ``me-vqa infer`` and of the fine-tuning evaluation.

A clip is asked several questions about the same pictures. Rows are planned in windows of
``batch_size`` clips; each clip of a window has its pictures loaded and processed once, and its
shared prefix (system turn and pictures: every token its questions have in common) prefilled
once, vision tower included. The window's questions are then answered in batches of one
answer budget: each row continues its clip's prefix KV cache with its own question tokens.

A row is laid out as ``[pad | prefix | pad | question]``: both paddings are masked and the
positions count real tokens only, so every row computes what it would compute alone, as in
:func:`vqa.model.generate` (today's per-question path, which the tests compare with). Models
with multimodal rotary positions (Qwen-VL) keep the offset of the text positions after the
pictures in a ``rope_deltas`` attribute; each batch sets it to its rows' prefixes' offsets.

A family whose cache cannot be joined (the registry's ``joins_cache``: Qwen3.5's linear
attention folds the padding into its recurrent state) gets the same plan, each batch answered
by today's path, every question with its own pictures.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from vqa import families
from vqa.prompts import build_messages
from vqa.question_types import budget
from vqa.records import BASE_KEY


def clip_key(conversation: list[dict]) -> str:
    """What a conversation shows, without its text: conversations with one key share a prefix."""
    shown = [i for m in conversation for i in m["content"] if i.get("type") != "text"]
    return json.dumps(shown, sort_keys=True)


def plan(keys: list[str], budgets: list[int], batch_size: int) -> list[list[list[int]]]:
    """Windows of ``batch_size`` clips (in order of first appearance), each a list of batches:
    the window's rows grouped by budget, in input order, at most ``batch_size`` rows each.

    The plan covers every row, so a resumed run meets the same batches as an uninterrupted one.
    """
    clips: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        clips.setdefault(key, []).append(i)
    rows_of_clips = list(clips.values())
    windows = []
    for start in range(0, len(rows_of_clips), batch_size):
        by_budget: dict[int, list[int]] = {}
        for i in sorted(i for rows in rows_of_clips[start : start + batch_size] for i in rows):
            by_budget.setdefault(budgets[i], []).append(i)
        windows.append(
            [
                ids[s : s + batch_size]
                for ids in by_budget.values()
                for s in range(0, len(ids), batch_size)
            ]
        )
    return windows


@dataclass
class Prefix:
    """A clip's shared prefix: its token ids, KV cache and rotary offset after the pictures."""

    ids: torch.Tensor
    cache: object
    rope_delta: torch.Tensor


def _common_length(a: list[int], b: list[int]) -> int:
    return next(
        (k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _rope_owner(model):
    """The module computing multimodal rotary positions and keeping their offset in
    ``rope_deltas`` (None for plain rotary)."""
    return next((m for m in model.modules() if hasattr(m, "rope_deltas")), None)


def prefill(model, processor, conversations: list[list[dict]], rope_owner):
    """Encode one clip once: its pictures processed and its shared prefix run through the model.

    Returns the :class:`Prefix` and, per conversation, the token ids that follow it (at least
    one, so that generation has a token to start from).
    """
    from transformers import DynamicCache

    from vqa.model import encode, render

    texts = [render(processor, c, add_generation_prompt=True) for c in conversations]
    plain = processor.tokenizer(texts)["input_ids"]
    common = min([len(ids) - 1 for ids in plain] + [_common_length(plain[0], p) for p in plain])
    inputs = encode(processor, conversations[:1], add_generation_prompt=True).to(model.device)
    full = inputs["input_ids"]
    cut = full.shape[1] - (len(plain[0]) - common)
    if full[0, cut:].tolist() != plain[0][common:]:
        raise RuntimeError("the processor changed tokens after the pictures: no shared prefix")
    prefix = {
        k: v[:, :cut] if getattr(v, "shape", None) == full.shape else v for k, v in inputs.items()
    }
    cache = DynamicCache(config=model.config)
    model(**prefix, cache=cache, use_cache=True, logits_to_keep=1)
    offset = _text_offset(rope_owner, prefix)
    return Prefix(full[0, :cut], cache, offset), [ids[common:] for ids in plain]


def _text_offset(rope_owner, inputs) -> torch.Tensor:
    """Rotary offset of the text that continues a prefix: its last token's position + 1, less
    its length. Not the model's own ``rope_deltas`` (from the highest position): a video's
    time positions can run past the text after it, and generation continues from the last."""
    ids = inputs["input_ids"]
    if rope_owner is None:
        return torch.zeros(1, 1, dtype=torch.long, device=ids.device)
    grids = ("mm_token_type_ids", "image_grid_thw", "video_grid_thw", "second_per_grid_ts")
    positions, _ = rope_owner.get_rope_index(ids, **{k: inputs[k] for k in grids if k in inputs})
    return positions[0, :, -1:] + 1 - ids.shape[1]


def _batch_inputs(model, prefixes: list[Prefix], suffixes: list[list[int]], pad_id: int):
    """Token ids, attention mask and KV cache of rows ``[pad | prefix | pad | question]``."""
    from torch.nn.functional import pad
    from transformers import DynamicCache

    prefix_width = max(len(p.ids) for p in prefixes)
    width = prefix_width + max(map(len, suffixes))
    device = prefixes[0].ids.device
    ids = torch.full((len(prefixes), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for row, (p, suffix) in enumerate(zip(prefixes, suffixes, strict=True)):
        ids[row, prefix_width - len(p.ids) : prefix_width] = p.ids
        ids[row, width - len(suffix) :] = torch.tensor(suffix, device=device)
        mask[row, prefix_width - len(p.ids) : prefix_width] = 1
        mask[row, width - len(suffix) :] = 1
    layers = [
        tuple(
            torch.cat([pad(t, (0, 0, prefix_width - t.shape[-2], 0)) for t in tensors])
            for tensors in zip(*(kv[:2] for kv in per_layer), strict=True)
        )
        for per_layer in zip(*(p.cache for p in prefixes), strict=True)
    ]
    return ids, mask, DynamicCache(layers, config=model.config)


def _generate(model, processor, prefixes, suffixes, budgets, rope_owner) -> list[str]:
    """Greedy answers of one batch, each cut to its own budget."""
    tokenizer = processor.tokenizer
    ids, mask, cache = _batch_inputs(model, prefixes, suffixes, tokenizer.pad_token_id)
    if rope_owner is not None:
        rope_owner.rope_deltas = torch.cat([p.rope_delta for p in prefixes])
    output = model.generate(
        input_ids=ids,
        attention_mask=mask,
        cache=cache,
        max_new_tokens=max(budgets),
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
    )
    new_tokens = output[:, ids.shape[1] :]
    return [
        tokenizer.decode(tokens[:b], skip_special_tokens=True).strip()
        for tokens, b in zip(new_tokens, budgets, strict=True)
    ]


def _share() -> tuple[int, int]:
    """This process's rank and the number of processes answering (1 unless distributed).

    Under DeepSpeed ZeRO-3 every rank takes part in every forward pass, so all answer all.
    """
    from transformers.integrations import is_deepspeed_zero3_enabled

    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or is_deepspeed_zero3_enabled():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def _joined(model, processor, conversations, keys, budgets, window, pending):
    """Answers of a window's ``pending`` batches, each clip's shared prefix prefilled once
    (from all the window's rows of the clip, answered or not, so a resumed run cuts the same
    prefix) and continued by every question."""
    rope_owner = _rope_owner(model)
    prefixes, suffixes = {}, {}
    for key in dict.fromkeys(keys[i] for b in pending for i in b):
        rows = [i for b in window for i in b if keys[i] == key]
        prefixes[key], tails = prefill(
            model, processor, [conversations[i] for i in rows], rope_owner
        )
        suffixes.update(zip(rows, tails, strict=True))
    for batch in pending:
        yield (
            batch,
            _generate(
                model,
                processor,
                [prefixes[keys[i]] for i in batch],
                [suffixes[i] for i in batch],
                [budgets[i] for i in batch],
                rope_owner,
            ),
        )


def _separate(model, processor, conversations, budgets, pending):
    """Answers of ``pending`` batches by today's path, every question with its own pictures
    (for a family whose KV cache cannot be joined)."""
    from vqa.model import generate

    for batch in pending:
        yield (
            batch,
            generate(
                model,
                processor,
                [conversations[i] for i in batch],
                max_new_tokens=[budgets[i] for i in batch],
                batch_size=len(batch),
                progress=False,
            ),
        )


def answer(
    model,
    processor,
    conversations: list[list[dict]],
    budgets: list[int],
    *,
    batch_size: int,
    done: dict[int, str] | None = None,
    sink: Callable[[dict[int, str]], None] | None = None,
    progress: bool = True,
) -> dict[int, str]:
    """Greedy answers by conversation index: ``done`` plus the others, batch by batch to ``sink``.

    With several processes each answers its own windows and every process gets all answers.
    """
    from tqdm.auto import tqdm

    done = dict(done or {})
    keys = [clip_key(c) for c in conversations]
    rank, world = _share()
    windows = plan(keys, budgets, batch_size)[rank::world]
    joins = families.of_model(model).joins_cache
    answers: dict[int, str] = {}
    was_training = model.training
    model.eval()
    mine = [i for window in windows for batch in window for i in batch]  # this rank's share
    bar = tqdm(
        total=len(mine), initial=sum(i in done for i in mine), unit="question",
        desc="answering", file=sys.stderr, dynamic_ncols=True, disable=not progress,
    )  # fmt: skip
    try:
        with bar, torch.no_grad():
            for window in windows:
                pending = [b for b in ([i for i in b if i not in done] for b in window) if b]
                batches = (
                    _joined(model, processor, conversations, keys, budgets, window, pending)
                    if joins
                    else _separate(model, processor, conversations, budgets, pending)
                )
                for batch, texts in batches:
                    new = dict(zip(batch, texts, strict=True))
                    if sink:
                        sink(new)
                    answers.update(new)
                    bar.update(len(batch))
    finally:
        model.train(was_training)
    if world > 1:
        print(
            f"rank {rank}: answered {len(answers)} of {len(conversations)} questions",
            file=sys.stderr,
        )
        shares = [None] * world
        torch.distributed.all_gather_object(shares, answers)
        answers = {i: a for share in shares for i, a in share.items()}
    return done | answers


def answer_rows(
    model,
    processor,
    rows: list[dict],
    *,
    style: str,
    batch_size: int,
    base_dir: Path | None = None,
    cap: int | None = None,
    **kwargs,
) -> dict[int, str]:
    """Answers of inputs rows by index; visual paths are relative to ``base_dir`` or, for rows
    loaded for training, to their own folder. ``cap`` bounds every budget; other keyword
    arguments go to :func:`answer`."""
    conversations = [
        build_messages(r, Path(r[BASE_KEY]) if BASE_KEY in r else base_dir, style) for r in rows
    ]
    budgets = [budget(r["question"], cap) for r in rows]
    return answer(model, processor, conversations, budgets, batch_size=batch_size, **kwargs)
