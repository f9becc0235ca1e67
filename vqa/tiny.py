"""The tiny offline Qwen2.5-VL: a randomly initialised model the tests and the demo run on.

It has the module names and architecture of Qwen2.5-VL-3B (windowed vision blocks with a few
full-attention ones, the patch merger, a Qwen2 language model with multimodal rotary
positions) at a few hundred thousand parameters, and a real ``Qwen2_5_VLProcessor`` whose
byte-level BPE tokenizer is trained on the fly on the package's own vocabulary. Everything is
built from a seed without network and saved with ``save_pretrained``, so it loads back with
``from_pretrained`` like any hub model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vqa import __version__, prompts, taxonomy
from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.jsonl import atomic_folder

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
DEFAULT_SYSTEM = "You are a helpful assistant."

# Qwen2.5-VL's ChatML layout: a default system turn, one vision block per image or video,
# <|im_end|> after every turn and "<|im_start|>assistant\n" as the generation prompt.
CHAT_TEMPLATE = """\
{%- macro render(content) -%}
{%- if content is string -%}{{ content }}
{%- else -%}{%- for item in content -%}
{%- if item.type == 'image' or 'image' in item or 'image_url' in item -%}
<|vision_start|><|image_pad|><|vision_end|>
{%- elif item.type == 'video' or 'video' in item -%}
<|vision_start|><|video_pad|><|vision_end|>
{%- elif 'text' in item -%}{{ item.text }}
{%- endif -%}
{%- endfor -%}{%- endif -%}
{%- endmacro -%}
{%- if messages[0].role != 'system' -%}
<|im_start|>system
DEFAULT_SYSTEM<|im_end|>
{% endif -%}
{%- for message in messages -%}
<|im_start|>{{ message.role }}
{{ render(message.content) }}<|im_end|>
{% endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
""".replace("DEFAULT_SYSTEM", DEFAULT_SYSTEM)

# Pixel limits of the tiny processor: small, so CPU tests stay fast (28 = patch 14 x merge 2).
IMAGE_PIXELS = (4 * 28 * 28, 64 * 28 * 28)
VIDEO_PIXELS = (4 * 28 * 28, 16 * 28 * 28)


def _strings(node) -> list[str]:
    """Every string inside a nested YAML structure."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (str(key), *_strings(value))]
    if isinstance(node, list):
        return [s for value in node for s in _strings(value)]
    return []


def vocabulary_corpus() -> list[str]:
    """The text the tiny tokenizer is trained on: labels, AU names and every prompt phrasing."""
    words = [*taxonomy.FINE_CLASSES, *taxonomy.COARSE_CLASSES, taxonomy.OTHERS]
    words += list(taxonomy.AU_NAMES.values()) + [f"AU{n}" for n in taxonomy.AU_NAMES]
    words += ["yes", "no", "left", "right", "Yes", "No", "Left", "Right"]
    words += ["system", "user", "assistant", DEFAULT_SYSTEM, "0123456789", ".,:;!?'\"()[]{}<>-_/"]
    texts = _strings(prompts.load_yaml("questions")) + _strings(prompts.load_yaml("inference"))
    return words + [" " + w for w in words] + texts


def _train_tokenizer(corpus: list[str]):
    """A Qwen2 byte-level BPE tokenizer trained on ``corpus`` (all 256 bytes stay reachable)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    # Train with Qwen2's own normaliser and pre-tokeniser, so training and use split text alike.
    template = Qwen2Tokenizer()._tokenizer
    bpe = Tokenizer(models.BPE())
    bpe.normalizer, bpe.pre_tokenizer = template.normalizer, template.pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    vocab = dict(model["vocab"])
    vocab.update({token: len(vocab) + i for i, token in enumerate(SPECIAL_TOKENS)})
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS),
        chat_template=CHAT_TEMPLATE,
        model_max_length=32768,
    )


def _processor(tokenizer):
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    geometry = {"patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
    image = Qwen2VLImageProcessor(
        min_pixels=IMAGE_PIXELS[0], max_pixels=IMAGE_PIXELS[1], **geometry
    )
    video = Qwen2VLVideoProcessor(
        min_pixels=VIDEO_PIXELS[0],
        max_pixels=VIDEO_PIXELS[1],
        cap_pixels_per_frame=True,
        **geometry,
    )
    return Qwen2_5_VLProcessor(
        image_processor=image,
        tokenizer=tokenizer,
        video_processor=video,
        chat_template=CHAT_TEMPLATE,
    )


def tiny_config(tokenizer):
    """Qwen2.5-VL-3B's architecture scaled down; token ids taken from ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    vision = {
        "depth": 4,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1, 3],
        "window_size": 112,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "tokens_per_second": 2,
    }
    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    return Qwen2_5_VLConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,  # as in the 7B: a tied random model only echoes its input
    )


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Build the tiny model and its processor from ``seed`` and save both into ``out_dir``."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    processor = _processor(_train_tokenizer(vocabulary_corpus()))
    config = tiny_config(processor.tokenizer)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    tokens = processor.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    model.generation_config = GenerationConfig(
        eos_token_id=tokens, pad_token_id=tokens[1], bos_token_id=tokens[1], do_sample=False
    )
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


def cache_key(seed: int = 0) -> str:
    """Cache folder name: changes with this module's code, the vocabulary and library versions."""
    import tokenizers
    import transformers

    versions = [__version__, transformers.__version__, tokenizers.__version__]
    blob = json.dumps([Path(__file__).read_text("utf-8"), versions, vocabulary_corpus()])
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    return f"tiny-qwen2.5-vl-{digest}-seed{seed}"


def cache_root() -> Path:
    return Path(os.environ.get("ME_VQA_CACHE") or Path.home() / ".cache" / "me-vqa")


def _build_atomically(target: Path, seed: int) -> None:
    """Build into a temporary sibling folder, then rename it to ``target`` in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(target) as scratch:
        build_tiny_model(scratch, seed)


def tiny_model_path(seed: int = 0) -> Path:
    """The cached tiny model for ``seed``, built on first use."""
    target = cache_root() / cache_key(seed)
    if not (target / "config.json").is_file():
        try:
            _build_atomically(target, seed)
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent build that won the race
                raise
    return target


def _parameter_count(folder: Path) -> int:
    import math

    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as weights:
        return sum(math.prod(weights.get_slice(name).get_shape()) for name in weights.keys())


def main(argv: list[str]) -> int:
    parser = command_parser(
        "tiny-model",
        "Build the tiny offline Qwen2.5-VL: random weights (a few hundred thousand parameters, "
        "the architecture and module names of Qwen2.5-VL-3B) plus a real processor whose "
        "tokenizer is trained on the ME-VQA vocabulary. Load it with from_pretrained or pass "
        "the folder as --model; it exercises the pipeline offline, its answers are noise.",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="new or empty folder to save into"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"{out} already exists and is not an empty folder",
            fix="give a new folder with --out, or delete this one",
        )
    _build_atomically(out, args.seed)
    print(
        f"tiny Qwen2.5-VL ({_parameter_count(out):,} parameters, seed {args.seed}) saved to {out}"
    )
    return 0
