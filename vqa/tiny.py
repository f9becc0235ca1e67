"""Tiny offline models of every registered family: randomly initialised, for tests and the demo.

Each has the module names and architecture of its family (Qwen2.5-VL: windowed vision blocks,
the MLP merger; Qwen3-VL: DeepStack mergers, interleaved multimodal rotary positions; Qwen3.5:
gated delta-net linear-attention layers with a full-attention layer every fourth) at a few
hundred thousand parameters, and a real processor of the family whose byte-level BPE
tokenizer is trained on the fly on the package's own vocabulary, with a chat template laid
out from the registry's template facts. ``processor_from`` builds the model over a published
processor instead (its tokenizer, template and special-token ids; embedding rows sized to its
vocabulary). Everything is built from a seed without network and saved with
``save_pretrained``, so it loads back with ``from_pretrained`` like any hub model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

from vqa import __version__, families, prompts, taxonomy
from vqa.cli import command_parser
from vqa.errors import UserError
from vqa.jsonl import atomic_folder

DEFAULT_FAMILY = "qwen2_5_vl"
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
THINK_OFF = "<think>\n\n</think>\n\n"  # Qwen3.5's empty think block

_RENDER = """\
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
"""


def chat_template(family: families.Family) -> str:
    """A ChatML template in the family's layout: its default system turn (if any), one vision
    block per image or video, ``<|im_end|>`` after every turn, and for a thinking family an
    empty think block before the last answer and in the generation prompt unless
    ``enable_thinking`` is false (then the block is empty) or true (then it is left open)."""
    thinks = "<think>" in family.extra_tokens
    system = (
        "{%- if messages[0].role != 'system' -%}\n<|im_start|>system\n"
        f"{family.default_system}<|im_end|>\n{{% endif -%}}\n"
        if family.default_system
        else ""
    )
    last_answer = (
        "{% if message.role == 'assistant' and loop.last %}" + THINK_OFF + "{% endif %}"
        if thinks
        else ""
    )
    prompt = (
        "{% if enable_thinking is defined and enable_thinking is false %}"
        + THINK_OFF
        + "{% else %}<think>\n{% endif %}"
        if thinks
        else ""
    )
    return (
        _RENDER
        + system
        + "{%- for message in messages -%}\n<|im_start|>{{ message.role }}\n"
        + last_answer
        + "{{ render(message.content) }}<|im_end|>\n{% endfor -%}\n"
        + "{%- if add_generation_prompt -%}\n<|im_start|>assistant\n"
        + prompt
        + "{% endif -%}\n"
    )


def _limits(family: families.Family) -> tuple[tuple[int, int], tuple[int, int]]:
    """Pixel limits (images, video frames) of the tiny processors: small, so CPU tests stay
    fast, in whole merged patches of the family."""
    side = family.pixel_factor**2
    return (4 * side, 64 * side), (4 * side, 16 * side)


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
    system = families.FAMILIES[DEFAULT_FAMILY].default_system
    words += ["system", "user", "assistant", system, "0123456789", ".,:;!?'\"()[]{}<>-_/"]
    texts = _strings(prompts.load_yaml("questions")) + _strings(prompts.load_yaml("inference"))
    return words + [" " + w for w in words] + texts


def _train_tokenizer(corpus: list[str], family: families.Family):
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
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=list(SPECIAL_TOKENS),
        chat_template=chat_template(family),
        model_max_length=32768,
    )
    tokenizer.add_tokens(list(family.extra_tokens))  # ordinary added tokens, as in Qwen3
    return tokenizer


def _processor(tokenizer, family: families.Family):
    """The family's real processor classes around ``tokenizer``, with the tiny pixel limits."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen3VLProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    qwen2 = (
        family.patch_size == 14
    )  # Qwen2.5-VL's processor; the 16-pixel families share Qwen3-VL's
    video_class = Qwen2VLVideoProcessor if qwen2 else Qwen3VLVideoProcessor
    processor_class = Qwen2_5_VLProcessor if qwen2 else Qwen3VLProcessor
    geometry = {
        "patch_size": family.patch_size,
        "temporal_patch_size": 2,
        "merge_size": family.merge_size,
    }
    (image_min, image_max), (video_min, video_max) = _limits(family)
    image = Qwen2VLImageProcessor(
        size={"shortest_edge": image_min, "longest_edge": image_max}, **geometry
    )
    video = video_class(
        size={"shortest_edge": video_min, "longest_edge": video_max},
        cap_pixels_per_frame=True,
        **geometry,
    )
    return processor_class(
        image_processor=image,
        tokenizer=tokenizer,
        video_processor=video,
        chat_template=tokenizer.chat_template,
    )


def _mrope(half: int) -> list[int]:
    """Multimodal rotary sections (time, height, width) over ``half`` rotary frequencies."""
    side = 3 * half // 8
    return [half - 2 * side, side, side]


def _text(ids: dict[str, int], vocab_size: int, hidden: int) -> dict:
    """The language-model settings every tiny family shares."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }


def _vision(family: families.Family, out_hidden: int) -> dict:
    """The vision-tower settings every tiny family shares; the merger outputs ``out_hidden``."""
    return {
        "depth": 4,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": out_hidden,
        "patch_size": family.patch_size,
        "spatial_merge_size": family.merge_size,
        "temporal_patch_size": 2,
    }


def _token_ids(ids: dict[str, int]) -> dict:
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": False,  # as in the 7B: a tied random model only echoes its input
    }


def _qwen2_5_vl(ids: dict[str, int], vocab_size: int, hidden: int):
    """Qwen2.5-VL-3B scaled down: windowed vision blocks with two full-attention ones."""
    from transformers import Qwen2_5_VLConfig

    vision = _vision(families.FAMILIES["qwen2_5_vl"], hidden)
    vision |= {"fullatt_block_indexes": [1, 3], "window_size": 112, "tokens_per_second": 2}
    text = _text(ids, vocab_size, hidden)
    half = hidden // text["num_attention_heads"] // 2
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 1e6,
        "mrope_section": _mrope(half),
    }
    return Qwen2_5_VLConfig(vision_config=vision, text_config=text, **_token_ids(ids))


def _qwen3_vl(ids: dict[str, int], vocab_size: int, hidden: int):
    """Qwen3-VL scaled down: an 8 x 8 position grid, DeepStack from two of four vision blocks."""
    from transformers import Qwen3VLConfig

    vision = _vision(families.FAMILIES["qwen3_vl"], hidden)
    vision |= {"num_position_embeddings": 64, "deepstack_visual_indexes": [1, 2]}
    text = _text(ids, vocab_size, hidden) | {"head_dim": 16}
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 5e6,
        "mrope_section": _mrope(8),
        "mrope_interleaved": True,
    }
    return Qwen3VLConfig(vision_config=vision, text_config=text, **_token_ids(ids))


def _qwen3_5(ids: dict[str, int], vocab_size: int, hidden: int):
    """Qwen3.5 scaled down: three gated delta-net layers, then one (gated) full-attention one."""
    from transformers import Qwen3_5Config

    vision = _vision(families.FAMILIES["qwen3_5"], hidden) | {"num_position_embeddings": 64}
    text = _text(ids, vocab_size, hidden) | {
        "num_hidden_layers": 4,
        "layer_types": ["linear_attention"] * 3 + ["full_attention"],
        "head_dim": 32,
        "linear_key_head_dim": 16,
        "linear_value_head_dim": 16,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "linear_conv_kernel_dim": 4,
    }
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 1e7,
        "partial_rotary_factor": 0.25,  # rotates 8 of the 32 head dimensions
        "mrope_section": _mrope(4),
        "mrope_interleaved": True,
    }
    return Qwen3_5Config(vision_config=vision, text_config=text, **_token_ids(ids))


# model_type -> tiny config builder(token ids, vocabulary size, LLM hidden size)
BUILDERS = {"qwen2_5_vl": _qwen2_5_vl, "qwen3_vl": _qwen3_vl, "qwen3_5": _qwen3_5}


def check_config(config, model) -> None:
    """The constraints a wrong tiny config breaks silently (or with an obscure shape error)."""
    vision = config.vision_config
    grid = getattr(vision, "num_position_embeddings", None)
    if grid is not None and math.isqrt(grid) ** 2 != grid:
        raise ValueError(f"num_position_embeddings {grid} is not a square grid")
    for index in getattr(vision, "deepstack_visual_indexes", None) or []:
        if not 0 <= index < vision.depth:
            raise ValueError(f"DeepStack index {index} is outside the {vision.depth} vision blocks")
    sections = config.text_config.rope_parameters["mrope_section"]
    frequencies = model.model.language_model.rotary_emb.inv_freq.numel()
    if sum(sections) != frequencies:
        raise ValueError(f"mrope_section {sections} does not cover the {frequencies} frequencies")


def _family_of_folder(folder: Path) -> str:
    config = folder / "config.json"
    if not config.is_file():
        raise UserError(
            "no config.json next to the processor", file=folder, fix="give a model folder"
        )
    return json.loads(config.read_text("utf-8"))["model_type"]


def _source_processor(family: str, processor_from: Path | None):
    """(family entry, processor, LLM hidden size) of the tiny model to build."""
    from transformers import AutoProcessor

    entry = families.family(family)
    if processor_from is None:
        return entry, _processor(_train_tokenizer(vocabulary_corpus(), entry), entry), 64
    processor = AutoProcessor.from_pretrained(str(processor_from), trust_remote_code=False)
    if processor.image_processor.patch_size != entry.patch_size:
        raise UserError(
            f"the processor's patch size {processor.image_processor.patch_size} is not "
            f"{entry.name}'s {entry.patch_size}",
            file=processor_from,
        )
    return entry, processor, 32  # ~150k embedding rows: keep them narrow


def build_tiny_model(
    out_dir: str | Path,
    seed: int = 0,
    family: str | None = None,
    processor_from: Path | None = None,
) -> Path:
    """Build a tiny model of ``family`` (or of the family ``processor_from`` belongs to) from
    ``seed`` and save it with its processor into ``out_dir``."""
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    family = _resolve_family(family, processor_from)
    entry, processor, hidden = _source_processor(family, processor_from)
    tokenizer = processor.tokenizer
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = BUILDERS[entry.model_type](ids, len(tokenizer), hidden)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config).eval()
    check_config(config, model)
    tokens = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    model.generation_config = GenerationConfig(
        eos_token_id=tokens, pad_token_id=tokens[1], bos_token_id=tokens[1], do_sample=False
    )
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out


def _resolve_family(family: str | None, processor_from: Path | None) -> str:
    if processor_from is None:
        return family or DEFAULT_FAMILY
    found = _family_of_folder(processor_from)
    if family and family != found:
        raise UserError(
            f"--family {family} but the processor folder holds a {found} model",
            file=processor_from,
            fix="leave out --family or give a matching one",
        )
    return found


def _folder_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def cache_key(seed: int = 0, family: str | None = None, processor_from: Path | None = None) -> str:
    """Cache folder name: changes with the family, the processor source, this module's code,
    the registry, the vocabulary and library versions."""
    import tokenizers
    import transformers

    family = _resolve_family(family, processor_from)
    source = _folder_digest(processor_from) if processor_from else None
    versions = [__version__, transformers.__version__, tokenizers.__version__]
    code = [Path(m.__file__).read_text("utf-8") for m in (families,)] + [Path(__file__).read_text()]
    blob = json.dumps([code, versions, vocabulary_corpus(), family, source])
    digest = hashlib.sha256(blob.encode()).hexdigest()[:12]
    origin = "-real-processor" if processor_from else ""
    return f"tiny-{family}{origin}-{digest}-seed{seed}"


def cache_root() -> Path:
    return Path(os.environ.get("ME_VQA_CACHE") or Path.home() / ".cache" / "me-vqa")


def _build_atomically(target: Path, seed: int, family: str | None, source: Path | None) -> None:
    """Build into a temporary sibling folder, then rename it to ``target`` in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(target) as scratch:
        build_tiny_model(scratch, seed, family, source)


def tiny_model_path(
    seed: int = 0, family: str | None = None, processor_from: Path | None = None
) -> Path:
    """The cached tiny model for ``seed`` and ``family`` (or over ``processor_from``), built
    on first use."""
    target = cache_root() / cache_key(seed, family, processor_from)
    if not (target / "config.json").is_file():
        try:
            _build_atomically(target, seed, family, processor_from)
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent build that won the race
                raise
    return target


def _parameter_count(folder: Path) -> int:
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as weights:
        return sum(math.prod(weights.get_slice(name).get_shape()) for name in weights.keys())


def main(argv: list[str]) -> int:
    parser = command_parser(
        "tiny-model",
        "Build a tiny offline model of a registered family: random weights (a few hundred "
        "thousand parameters, the family's architecture and module names) plus a real "
        "processor whose tokenizer is trained on the ME-VQA vocabulary, or the published "
        "processor given with --processor-from. Load it with from_pretrained or pass the "
        "folder as --model; it exercises the pipeline offline, its answers are noise.",
    )
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="new or empty folder to save into"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    parser.add_argument(
        "--family",
        choices=list(BUILDERS),
        help=f"model family (config.model_type); default {DEFAULT_FAMILY}, or the family of "
        "--processor-from",
    )
    parser.add_argument(
        "--processor-from",
        type=Path,
        metavar="DIR",
        help="build over this published processor (tokenizer, template, config.json; no "
        "weights needed), e.g. ../shared/models/qwen2_5_vl_7b_instruct",
    )
    args = parser.parse_args(argv)
    out: Path = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(
            f"{out} already exists and is not an empty folder",
            fix="give a new folder with --out, or delete this one",
        )
    if args.processor_from and not args.processor_from.is_dir():
        raise UserError("not a folder", file=args.processor_from, fix="give a processor folder")
    family = _resolve_family(args.family, args.processor_from)
    _build_atomically(out, args.seed, family, args.processor_from)
    name = families.family(family).name
    print(f"tiny {name} ({_parameter_count(out):,} parameters, seed {args.seed}) saved to {out}")
    return 0
