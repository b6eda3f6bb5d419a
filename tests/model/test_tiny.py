"""Tests of the tiny Gemma3 builder: it saves, reloads with Auto* classes and can see images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from magseg.classes import CLASSES
from magseg.codec import encode
from magseg.model.tiny import SPECIAL_TOKENS, build_tiny_gemma3, train_tokenizer


def test_reloads_with_auto_classes(tiny_model: Path) -> None:
    processor = AutoProcessor.from_pretrained(tiny_model, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(
        tiny_model, local_files_only=True, use_safetensors=True
    )
    assert (tiny_model / "model.safetensors").is_file()
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    assert type(processor).__name__ == "Gemma3Processor"
    assert sum(p.numel() for p in model.parameters()) < 300_000
    # one image token per vision patch (32 px / 8 px = 4x4 = 16), no pooling
    assert processor.image_seq_length == model.config.mm_tokens_per_image == 16
    tok = processor.tokenizer
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<image_soft_token>")
    assert tok.convert_tokens_to_ids("<end_of_turn>") in model.generation_config.eos_token_id
    # the projector must not start at zero, or the vision tower never learns
    proj = model.model.multi_modal_projector.mm_input_projection_weight
    assert proj.abs().sum() > 0


def test_tokenizer_gives_one_token_per_descriptor_and_digit(tiny_model: Path) -> None:
    tok = AutoProcessor.from_pretrained(tiny_model, local_files_only=True).tokenizer
    for name in CLASSES:
        assert len(tok.tokenize(name)) == 1, name
        assert len(tok.tokenize(" " + name)) == 1, name  # runs after "| " and rows after "\n "
    assert tok.tokenize("1024") == ["1", "0", "2", "4"]
    # no <bos> added outside the chat template (the template writes it)
    assert tok("field")["input_ids"] == tok.convert_tokens_to_ids(tok.tokenize("field"))
    assert [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    rrle = encode(np.array([[0, 0, 1, 1], [4, 4, 4, 4], [0, 1, 2, 3], [5, 5, 5, 5]]))
    assert tok.decode(tok(rrle)["input_ids"]) == rrle


def test_corpus_shapes_the_vocabulary() -> None:
    tok = train_tokenizer(["zebra *12| zebra *4\n"] * 50, vocab_size=300)
    assert len(tok.tokenize("zebra")) == 1
    assert len(tok.tokenize("field")) > 1


def test_images_change_the_output(tiny_model: Path) -> None:
    """The model sees pixels: the logits depend on the image (a zero projector would make them equal)."""
    processor = AutoProcessor.from_pretrained(tiny_model, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model, local_files_only=True).eval()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "mask"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    logits = []
    for value in (0, 255):
        image = np.full((32, 32, 3), value, dtype=np.uint8)
        inputs = processor(text=text, images=[image], return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logits.append(model(**inputs).logits[0, -1])
    assert not torch.allclose(logits[0], logits[1])


def test_token_count_must_fit_the_patch_grid(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="square"):
        build_tiny_gemma3(tmp_path / "m", image_size=32, patch_size=8, mm_tokens_per_image=9, text_hidden=64)
    assert not (tmp_path / "m").exists()
