"""Loading a Qwen vision-language model and its processor, encoding chat batches and batched
greedy generation, for every family of :mod:`vqa.families`.

Inference and fine-tuning both go through this module, so the two see identical inputs:
the chat template renders the text (with the families' template variables, e.g. Qwen3.5's
thinking switched off), qwen-vl-utils loads and resizes the pictures with the processor's own
pixel limits, and the processor expands the vision placeholders.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vqa import families
from vqa.errors import UserError

if TYPE_CHECKING:  # torch loads only when a model is used, so `--help` stays instant
    import torch

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
DTYPES = ("bfloat16", "float16", "float32")  # names accepted by --dtype (plus "auto")
_OFFLINE_FIX = (
    "pass a local folder saved with save_pretrained, download the model while online, "
    "or build the tiny offline model with `me-vqa tiny-model --out DIR`"
)


def pick_dtype(use_cpu: bool = False) -> torch.dtype:
    """bfloat16 on a CUDA GPU with native bf16 (Ampere or newer; older ones only emulate it),
    float32 otherwise and with ``use_cpu``."""
    import torch

    if use_cpu or not torch.cuda.is_available():
        return torch.float32
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.bfloat16 if native else torch.float32


def resolve_dtype(name: str | None, use_cpu: bool = False) -> torch.dtype:
    """The torch dtype of a ``--dtype`` name; ``auto`` (or None) is :func:`pick_dtype`."""
    import torch

    if name in (None, "auto"):
        return pick_dtype(use_cpu)
    if name not in DTYPES:
        raise UserError(f"unknown dtype {name!r}", fix=f"use auto, {', '.join(DTYPES)}")
    return getattr(torch, name)


def pick_attention(dtype: torch.dtype, use_cpu: bool = False) -> str:
    """FlashAttention-2 for a bf16 or fp16 model (its kernels take nothing else) on CUDA when
    transformers finds it usable, PyTorch SDPA otherwise and with ``use_cpu``."""
    import torch
    from transformers.utils import is_flash_attn_2_available

    half = dtype in (torch.bfloat16, torch.float16)
    usable = half and not use_cpu and torch.cuda.is_available() and is_flash_attn_2_available()
    return "flash_attention_2" if usable else "sdpa"


def _load_error(name_or_dir: str | Path, err: Exception) -> UserError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if Path(name_or_dir).exists():
        return UserError(
            f"cannot load a model or processor from {name_or_dir}: {reason}",
            fix="point to a folder written by save_pretrained (config.json, *.safetensors, "
            "processor files)",
        )
    return UserError(
        f"{str(name_or_dir)!r} is not a local folder and could not be loaded from the "
        f"Hugging Face hub or its cache: {reason}",
        fix=_OFFLINE_FIX,
    )


def model_family(name_or_dir: str | Path) -> families.Family:
    """The registry entry of a model, from its config alone (no weights are read)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(name_or_dir), trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise _load_error(name_or_dir, err) from err
    return families.family(config.model_type)


def load_model(
    name_or_dir: str | Path,
    *,
    dtype: torch.dtype | None = None,
    attn_implementation: str | None = None,
    device_map: str | dict | None = None,
):
    """A model of a registered family from a hub id or a local folder (safetensors only).

    ``AutoModelForImageTextToText`` picks the family's class from ``config.model_type``; a type
    the registry does not know is refused. Without ``device_map`` the model goes to CUDA when
    available; with one, accelerate places it.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    model_family(name_or_dir)
    dtype = dtype or pick_dtype()
    if Path(name_or_dir).is_dir():  # an adapter then names its base wherever it is read from
        name_or_dir = Path(name_or_dir).absolute()
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            str(name_or_dir),
            dtype=dtype,
            attn_implementation=attn_implementation or pick_attention(dtype),
            device_map=device_map,
            use_safetensors=True,
            trust_remote_code=False,
        )
    except (OSError, ValueError) as err:
        raise _load_error(name_or_dir, err) from err
    if device_map is None and torch.cuda.is_available():
        model = model.to("cuda")
    return model


def adapter_base(adapter: Path) -> str | None:
    """The base model an adapter folder names (None when it names none).

    Refuses a folder that is not a LoRA adapter saved in safetensors by ``me-vqa finetune``.
    """
    config = adapter / "adapter_config.json"
    if not config.is_file():
        raise UserError(
            "not a LoRA adapter folder (no adapter_config.json)",
            file=adapter,
            fix="give the output_dir of me-vqa finetune",
        )
    if not (adapter / "adapter_model.safetensors").is_file():
        raise UserError(
            "adapter weights are not in safetensors format",
            file=adapter,
            fix="save the adapter with peft save_pretrained(safe_serialization=True)",
        )
    try:
        return json.loads(config.read_text("utf-8")).get("base_model_name_or_path") or None
    except json.JSONDecodeError as e:
        raise UserError(f"adapter_config.json is not valid JSON ({e.msg})", file=config) from None


def run_record(adapter: Path | None) -> dict:
    """The ``run.json`` that ``me-vqa finetune`` wrote into an adapter folder ({} when none)."""
    path = adapter / "run.json" if adapter else None
    if path is None or not path.is_file():
        return {}
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"run.json is not valid JSON ({e.msg})", file=path) from None


def _set_pixel_limits(vision_processor, min_pixels: int | None, max_pixels: int | None) -> None:
    """Set the limits both as attributes and in ``size`` (either alone is silently ignored)."""
    size = dict(vision_processor.size)
    if min_pixels is not None:
        vision_processor.min_pixels = size["shortest_edge"] = min_pixels
    if max_pixels is not None:
        vision_processor.max_pixels = size["longest_edge"] = max_pixels
    vision_processor.size = type(vision_processor.size)(**size)


def load_processor(
    name_or_dir: str | Path,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    padding_side: str = "right",
):
    """The model's processor, with pixel limits applied to images and videos."""
    from transformers import AutoProcessor

    if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
        raise UserError(
            f"min_pixels {min_pixels} is larger than max_pixels {max_pixels}",
            fix="give a min_pixels no larger than max_pixels",
        )
    try:
        processor = AutoProcessor.from_pretrained(str(name_or_dir), trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise _load_error(name_or_dir, err) from err
    for vision_processor in (processor.image_processor, processor.video_processor):
        _set_pixel_limits(vision_processor, min_pixels, max_pixels)
    if getattr(processor.video_processor, "cap_pixels_per_frame", False) is None:
        processor.video_processor.cap_pixels_per_frame = True  # bound videos as qwen-vl-utils does
    processor.tokenizer.padding_side = padding_side
    return processor


def _with_pixel_limits(conversation: list[dict], processor) -> list[dict]:
    """A copy of the conversation whose image/video items carry the processor's pixel limits,
    so qwen-vl-utils resizes exactly as the processor would (item-level values win)."""
    limits = {
        "image": processor.image_processor.size,
        "video": processor.video_processor.size,
    }
    conversation = copy.deepcopy(conversation)
    for message in conversation:
        if not isinstance(message["content"], list):
            continue
        for item in message["content"]:
            kind = "video" if "video" in item else "image" if "image" in item else None
            if kind:
                item.setdefault("min_pixels", limits[kind]["shortest_edge"])
                item.setdefault("max_pixels", limits[kind]["longest_edge"])
    return conversation


@functools.cache
def _template_variables(template: str) -> frozenset[str]:
    import jinja2
    from jinja2 import meta

    return frozenset(meta.find_undeclared_variables(jinja2.Environment().parse(template)))


def render(processor, conversation: list[dict], *, add_generation_prompt: bool) -> str:
    """The chat text of one conversation, with the families' template variables that this
    processor's template reads (e.g. Qwen3.5's ``enable_thinking=False``)."""
    reads = _template_variables(processor.chat_template)
    variables = {k: v for k, v in families.template_kwargs().items() if k in reads}
    return processor.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=add_generation_prompt, **variables
    )


def encode(processor, conversations: list[list[dict]], *, add_generation_prompt: bool):
    """Model inputs (``BatchFeature``) for a batch of chat conversations.

    Images are file paths, videos lists of frame paths (a video item's ``sample_fps``, the
    true rate of its frames, times them, and its ``frame_times``, when given, time each frame);
    padding follows the tokenizer's ``padding_side`` (right for training, left for generation).
    """
    from qwen_vl_utils import process_vision_info
    from qwen_vl_utils.vision_process import extract_vision_info

    texts = [
        render(processor, conversation, add_generation_prompt=add_generation_prompt)
        for conversation in conversations
    ]
    with_limits = [_with_pixel_limits(c, processor) for c in conversations]
    images, videos, video_kwargs = process_vision_info(
        with_limits,
        return_video_kwargs=True,
        return_video_metadata=True,
        image_patch_size=processor.image_processor.patch_size,
    )
    if videos:
        videos, metadata = map(list, zip(*videos, strict=True))
        items = [item for item in extract_vision_info(with_limits) if "video" in item]
        for meta, item in zip(metadata, items, strict=True):
            _stamp_frame_times(meta, item.get("frame_times"))
        video_kwargs.update(video_metadata=metadata, do_sample_frames=False)
    else:
        video_kwargs = {}
    # qwen-vl-utils resized every picture and frame to the processor's limits already (per
    # frame, on a multiple of the merged patch); resizing again would apply Qwen3-VL's
    # whole-video pixel budget on top
    return processor(
        text=texts,
        images=images,
        videos=videos,
        padding=True,
        return_tensors="pt",
        do_resize=False,
        **video_kwargs,
    )


def _stamp_frame_times(metadata: dict, times: list[float] | None) -> None:
    """Give a video's frames their recorded times (seconds), where the row has them.

    qwen-vl-utils numbers a list of frames 0, 1, 2, ... at the item's ``sample_fps``, which
    spaces unevenly chosen frames (a long video's motion-aware choice) evenly and starts them at
    0. Qwen3-VL's and Qwen3.5's text timestamps are ``frames_indices / fps``, so the indices
    become ``time x fps``; the rate and the number of frames, which Qwen2.5-VL's time positions
    read, stay as they are. A frame list padded to an even length repeats its last time."""
    if not times:
        return
    count = len(metadata["frames_indices"])
    padded = [*times, *[times[-1]] * (count - len(times))]
    metadata["frames_indices"] = [t * metadata["fps"] for t in padded]


def _budgets(max_new_tokens: int | Sequence[int], count: int) -> list[int]:
    if isinstance(max_new_tokens, int):
        return [max_new_tokens] * count
    if len(max_new_tokens) != count:
        raise ValueError(f"{len(max_new_tokens)} max_new_tokens for {count} conversations")
    return list(max_new_tokens)


def generate(
    model,
    processor,
    conversations: list[list[dict]],
    *,
    max_new_tokens: int | Sequence[int],
    batch_size: int = 8,
    progress: bool = True,
) -> list[str]:
    """Greedy answers, one per conversation, in order (batched with left padding).

    ``max_new_tokens`` is one budget or one per conversation; each answer is cut to its own
    budget, which for greedy decoding equals generating it alone with that budget.
    """
    from tqdm.auto import tqdm

    budgets = _budgets(max_new_tokens, len(conversations))
    tokenizer = processor.tokenizer
    old_side, was_training = tokenizer.padding_side, model.training
    tokenizer.padding_side = "left"
    model.eval()
    answers: list[str] = []
    starts = range(0, len(conversations), batch_size)
    try:
        for start in tqdm(starts, desc="generate", disable=not progress or len(starts) < 2):
            end = start + batch_size
            answers += _generate_batch(
                model, processor, conversations[start:end], budgets[start:end]
            )
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return answers


def _generate_batch(model, processor, conversations: list[list[dict]], budgets: list[int]):
    """One left-padded greedy batch (``model.generate`` runs without gradients)."""
    inputs = encode(processor, conversations, add_generation_prompt=True).to(model.device)
    output = model.generate(
        **inputs,
        max_new_tokens=max(budgets),
        do_sample=False,
        pad_token_id=processor.tokenizer.pad_token_id,
    )
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    decode = processor.tokenizer.decode
    return [
        decode(tokens[:budget], skip_special_tokens=True).strip()
        for tokens, budget in zip(new_tokens, budgets, strict=True)
    ]
