"""Tests of HFEngine: prompts rendered like training, left padding, order kept, turn end respected."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from magseg.model import HFEngine, load_model, render_prompts
from magseg.samples import load_samples


@pytest.fixture(scope="module")
def requests(tiny_samples: Path) -> list:
    ds = load_samples(tiny_samples).select(range(3))
    return [(row["images"], row["prompt"]) for row in ds]


def test_render_left_pads_and_ends_with_the_model_turn(tiny_model: Path, requests: list) -> None:
    _, processor = load_model(tiny_model)
    inputs = render_prompts(processor, requests)
    assert inputs["pixel_values"].shape[0] == 2 * len(requests)  # scene + crop per request
    tok = processor.tokenizer
    for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"], strict=True):
        text = tok.decode(ids[mask.bool()])
        assert text.startswith("<bos><start_of_turn>user\n")
        assert text.endswith("<start_of_turn>model\n")
        assert text.count("<start_of_image>") == 2
        assert mask[-1] == 1  # left padding: every prompt ends at the last position


def test_generate_is_batch_invariant(tiny_model: Path, requests: list) -> None:
    model, processor = load_model(tiny_model)
    one = HFEngine(model, processor, max_new_tokens=12, batch_size=1).generate(requests)
    three = HFEngine(model, processor, max_new_tokens=12, batch_size=3).generate(requests)
    assert len(one) == 3 and all(isinstance(t, str) for t in one)
    assert one == three
    assert all("<end_of_turn>" not in t and "<pad>" not in t for t in one)


def test_stops_at_end_of_turn(tiny_model: Path, requests: list) -> None:
    model, processor = load_model(tiny_model)
    end = processor.tokenizer.convert_tokens_to_ids("<end_of_turn>")

    def end_wins(module: torch.nn.Module, args: tuple, logits: torch.Tensor) -> torch.Tensor:
        return logits.index_fill(-1, torch.tensor([end]), 1e4)

    # <end_of_turn> wins every step: the engine must stop at once and return empty text
    hook = model.lm_head.register_forward_hook(end_wins)
    try:
        texts = HFEngine(model, processor, max_new_tokens=8).generate(requests[:2])
    finally:
        hook.remove()
    assert texts == ["", ""]
