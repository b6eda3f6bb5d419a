"""The rehearsal model: Gemma3-4B's real shapes, vocabulary and processor, cut to two layers (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from magseg.errors import InputError
from magseg.inference import ModelFormat, Predictor
from magseg.inference.requests import scene_requests
from magseg.model.generate import render_prompts
from magseg.model.shapes import GEMMA_SPECIAL_IDS, GEMMA_VOCAB, build_gemma3_shaped, gemma_sized_tokenizer


def test_tokenizer_has_gemmas_size_and_special_ids() -> None:
    tok = gemma_sized_tokenizer()
    assert len(tok) == GEMMA_VOCAB
    assert {t: tok.convert_tokens_to_ids(t) for t in GEMMA_SPECIAL_IDS} == GEMMA_SPECIAL_IDS
    assert tok.decode(tok("field *12| tree *4")["input_ids"]) == "field *12| tree *4"  # round trip
    assert tok.tokenize("*123")[-3:] == ["1", "2", "3"]  # counts digit by digit, as the tiny model's


def test_4b_shapes_go_through_inference(tmp_path: Path) -> None:
    folder = build_gemma3_shaped(tmp_path / "g4b", "4b", text_layers=1)
    fmt = {"patch": 128, "grid": 16, "context_size": 896}
    predictor = Predictor.from_pretrained(folder, max_new_tokens=2, batch_size=2, **fmt)
    model = predictor.engine.model  # type: ignore[attr-defined]
    text, vision = model.config.text_config, model.config.vision_config
    assert (text.hidden_size, text.num_attention_heads, text.num_key_value_heads, text.head_dim) == (
        2560,
        8,
        4,
        256,
    )
    assert (vision.image_size, vision.patch_size, model.config.mm_tokens_per_image) == (896, 14, 256)
    image = np.random.default_rng(0).integers(0, 255, (3, 256, 256), dtype=np.uint8)
    _, requests = scene_requests(image, ModelFormat(**fmt))
    inputs = render_prompts(predictor.processor, requests[:1])
    ids = inputs["input_ids"][0].tolist()
    assert ids.count(GEMMA_SPECIAL_IDS["<image_soft_token>"]) == 2 * 256  # scene + crop, 256 tokens each
    assert inputs["pixel_values"].shape[-2:] == (896, 896)
    pred = predictor.predict(image)
    assert pred.semantic.shape == (256, 256) and pred.n_patches == 4 and all(n <= 2 for n in pred.tokens)
    assert pred.confidence is not None and pred.confidence.shape == (256, 256)


def test_refuses_unknown_size(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="4b, 12b"):
        build_gemma3_shaped(tmp_path / "x", "7b")
