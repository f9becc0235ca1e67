"""``me-vqa merge``: the merged full model answers as the adapter does and loads without peft."""

from __future__ import annotations

import torch
from peft import PeftModel, get_peft_model
from train_fixtures import make_inputs
from transformers import AutoModelForImageTextToText

from vqa import lora
from vqa.cli import main as cli
from vqa.jsonl import read_jsonl
from vqa.model import encode, generate, load_model, load_processor
from vqa.prompts import build_messages


def _random_adapter(tiny_model_dir, folder):
    """A 'strong' adapter (LoRA + merger in full) with random, non-zero weights."""
    torch.manual_seed(0)
    model = load_model(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    config = lora.lora_config("strong", r=4, alpha=8, dropout=0.0, model=model)
    config.init_lora_weights = False
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "modules_to_save" in name:
                p.add_(0.05 * torch.randn_like(p))
    peft_model.save_pretrained(folder)
    load_processor(tiny_model_dir).save_pretrained(folder)


def test_merged_model_answers_as_the_adapter(tiny_model_dir, tmp_path):
    adapter, merged_dir = tmp_path / "adapter", tmp_path / "merged"
    _random_adapter(tiny_model_dir, adapter)
    assert cli(["merge", "--adapter", str(adapter), "--out", str(merged_dir)]) == 0

    inputs = make_inputs(tmp_path / "inputs", subjects=2, clips=2, mode="oao", types=[0, 2])
    conversations = [build_messages(r, inputs.parent, "plain") for r in read_jsonl(inputs)]
    processor = load_processor(merged_dir)
    base = load_model(tiny_model_dir, dtype=torch.float32, attn_implementation="sdpa")
    with_adapter = PeftModel.from_pretrained(base, str(adapter)).eval()
    merged = AutoModelForImageTextToText.from_pretrained(merged_dir).eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())

    batch = encode(processor, conversations, add_generation_prompt=True)
    with torch.no_grad():
        expected, got = with_adapter(**batch).logits, merged(**batch).logits
        with with_adapter.disable_adapter():
            plain = with_adapter(**batch).logits
    assert torch.allclose(expected, got, atol=1e-4)
    assert not torch.allclose(expected, plain, atol=1e-2)  # the adapter changes the model
    answers = generate(with_adapter, processor, conversations, max_new_tokens=12)
    assert generate(merged, processor, conversations, max_new_tokens=12) == answers


def test_adapter_folder_without_config_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = cli(["merge", "--adapter", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "no adapter_config.json" in err and not (tmp_path / "out").exists()
