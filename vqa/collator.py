"""Training batches: chat template, right padding, labels on the answer and its end token only.

Labels are masked by the length of the rendered prompt (the chat template applied with
``add_generation_prompt=True``), never by scanning for token ids. Samples are never truncated:
a sample longer than ``max_length`` is an error saying the length it needs, because cutting
through image or video placeholder tokens breaks the model's feature/token alignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from vqa.errors import UserError
from vqa.model import encode, render
from vqa.prompts import build_messages

IGNORE_INDEX = -100


@dataclass(frozen=True)
class AnswerSpan:
    """Token counts at the end of one rendered sample: the text after the prompt, and the
    supervised part of it (the answer and its end token), with the supervised token ids."""

    after_prompt: int
    supervised: list[int]


class TrainCollator:
    """Turns inputs.jsonl rows into a padded training batch with ``labels``."""

    def __init__(
        self,
        processor,
        inputs_dir: str | Path | None = None,
        style: str = "plain",
        max_length: int = 4096,
    ):
        if processor.tokenizer.padding_side != "right":
            raise ValueError(
                "training batches need right padding; load the processor with padding_side='right'"
            )
        if not processor.tokenizer.eos_token:
            raise ValueError("the tokenizer has no eos_token to end answers with")
        self.processor = processor
        self.inputs_dir = inputs_dir
        self.style = style
        self.max_length = max_length

    def conversation(self, row: dict) -> list[dict]:
        """Chat messages with the answer; visual paths are relative to the row's ``inputs_dir``
        key when it has one (rows loaded by vqa.train), else to the collator's folder."""
        base = row.get("inputs_dir") or self.inputs_dir
        if base is None:
            raise ValueError("row has no inputs_dir and the collator was given none")
        return build_messages(row, Path(base), self.style, with_answer=True)

    def answer_span(self, conversation: list[dict]) -> AnswerSpan:
        """Render prompt and full sample as text and measure what follows the prompt."""
        tokenizer = self.processor.tokenizer
        prompt = render(self.processor, conversation[:-1], add_generation_prompt=True)
        full = render(self.processor, conversation, add_generation_prompt=False)
        if not full.startswith(prompt):
            raise ValueError(
                "the chat template renders the prompt differently with and without the answer"
            )
        after = full[len(prompt) :]
        end = after.rfind(tokenizer.eos_token)
        if end < 0:
            raise ValueError(f"the rendered answer does not end with {tokenizer.eos_token!r}")
        after_ids = tokenizer(after, add_special_tokens=False)["input_ids"]
        supervised = tokenizer(after[: end + len(tokenizer.eos_token)], add_special_tokens=False)[
            "input_ids"
        ]
        if after_ids[: len(supervised)] != supervised:
            raise ValueError(
                "the answer tokenises differently inside the sample; cannot place labels"
            )
        return AnswerSpan(len(after_ids), supervised)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        conversations = [self.conversation(row) for row in rows]
        spans = [self.answer_span(c) for c in conversations]
        batch = encode(self.processor, conversations, add_generation_prompt=False)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        self._check_lengths(rows, lengths)
        batch["labels"] = self._labels(batch["input_ids"], lengths, spans, rows)
        return dict(batch)

    def _check_lengths(self, rows: list[dict], lengths: list[int]) -> None:
        for row, length in zip(rows, lengths, strict=True):
            if length > self.max_length:
                raise UserError(
                    f"sample {row.get('id') or row.get('video_id')!r} needs {length} tokens "
                    f"but max_length is {self.max_length}; truncating would cut its visual tokens",
                    fix=f"set --max_length {length} or more, or lower --max_pixels or the frames",
                )

    @staticmethod
    def _labels(
        input_ids: torch.Tensor, lengths: list[int], spans: list[AnswerSpan], rows
    ) -> torch.Tensor:
        labels = torch.full_like(input_ids, IGNORE_INDEX)
        for i, (length, span) in enumerate(zip(lengths, spans, strict=True)):
            start = length - span.after_prompt
            stop = start + len(span.supervised)
            if input_ids[i, start:stop].tolist() != span.supervised:
                raise ValueError(
                    f"row {i}: answer tokens not found at the end of the encoded sample"
                )
            labels[i, start:stop] = input_ids[i, start:stop]
            # at least the end token plus one answer token must be trained
            if int((labels[i] != IGNORE_INDEX).sum()) < 2:
                raise UserError(
                    f"sample {rows[i].get('id')!r} has no answer tokens to train on",
                    fix="give every training row a non-empty answer",
                )
        return labels
