"""``me-vqa model-table``: counts come from the published configs on the meta device."""

from __future__ import annotations

from vqa import model_table


def test_published_sizes_build_on_meta_and_presets_train_every_part():
    model = model_table.meta_model("Qwen/Qwen3-VL-2B-Instruct")
    assert next(model.parameters()).is_meta
    assert 2.0e9 < model.num_parameters() < 2.3e9  # the published 2B model
    counts = model_table.trainable(model, "baseline", 8)
    assert all(counts[part] > 0 for part in ("vision", "merger", "llm"))
    assert model_table.trainable(model, "baseline", 8) == counts  # unload left the model clean
    assert model_table.memory_gb(10**9, 10**6) == 2.016
