"""Gemma3 of the real 4B / 12B shapes, cut to a layer or two, random weights, built offline: a rehearsal model.

Everything a real checkpoint brings to the code paths except depth and trained weights: the SigLIP
so400m vision tower config (896 px, 14 px patches, 4,096 patch tokens pooled to 256 image tokens), the
text widths and head layout, Gemma3's local/global attention mix and rope, the vocabulary size with
Gemma's special tokens at their real ids, Gemma3's chat template and its image processor. A user with
real weights meets the same shapes, processor and template in SFT, GRPO, mapping and serving that this
model goes through on a CPU (scripts/rehearse_real_config.py, tests/model/test_shapes.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3TextConfig,
    GenerationConfig,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
)

from magseg.errors import InputError
from magseg.model.tiny import SPECIAL_TOKENS, default_corpus, save_gemma3, train_tokenizer, wrap_tokenizer

__all__ = ["GEMMA_SPECIAL_IDS", "GEMMA_VOCAB", "TEXT_SHAPES", "build_gemma3_shaped", "gemma_sized_tokenizer"]

#: google/gemma-3-{4b,12b}-it text configs (config.json), less the depth (34 and 48 layers).
TEXT_SHAPES: dict[str, dict[str, Any]] = {
    "4b": {
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
    },
    "12b": {
        "hidden_size": 3840,
        "intermediate_size": 15360,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
    },
}
#: Both sizes' vision tower (SigLIP so400m at 896 px), less the depth (27 layers).
VISION_SHAPE: dict[str, Any] = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_attention_heads": 16,
    "image_size": 896,
    "patch_size": 14,
    "layer_norm_eps": 1e-6,
    "vision_use_head": False,
}
#: Gemma3's vocabulary size (the embedding's rows) and its special tokens' ids.
GEMMA_VOCAB = 262_208
GEMMA_SPECIAL_IDS: dict[str, int] = {
    "<pad>": 0,
    "<eos>": 1,
    "<bos>": 2,
    "<unk>": 3,
    "<mask>": 4,
    "<start_of_turn>": 105,
    "<end_of_turn>": 106,
    "<start_of_image>": 255_999,
    "<end_of_image>": 256_000,
    "<image_soft_token>": 262_144,
}
MM_TOKENS_PER_IMAGE = 256


def gemma_sized_tokenizer(seed: int = 0) -> PreTrainedTokenizerFast:
    """magseg's small BPE (digits one per token) renumbered into Gemma's id space: the special tokens at
    Gemma's ids, the vocabulary filled with ``<unusedN>`` entries up to GEMMA_VOCAB."""
    small = train_tokenizer(default_corpus(seed))
    raw = json.loads(small.backend_tokenizer.to_str())
    reserved = set(GEMMA_SPECIAL_IDS.values())
    free = (i for i in range(GEMMA_VOCAB) if i not in reserved)
    renumber: dict[int, int] = {}
    vocab: dict[str, int] = {}
    for token, old in sorted(raw["model"]["vocab"].items(), key=lambda kv: kv[1]):
        new = GEMMA_SPECIAL_IDS[token] if token in GEMMA_SPECIAL_IDS else next(free)
        renumber[old] = new
        vocab[token] = new
    for i in free:  # the rest of the id space: tokens no merge ever produces
        vocab[f"<unused{i}>"] = i
    raw["model"]["vocab"] = vocab
    for added in raw["added_tokens"]:
        added["id"] = renumber[added["id"]]
    if len(vocab) != GEMMA_VOCAB or set(SPECIAL_TOKENS) - set(GEMMA_SPECIAL_IDS):
        raise RuntimeError(f"renumbered vocabulary has {len(vocab)} entries, want {GEMMA_VOCAB}")
    return wrap_tokenizer(Tokenizer.from_str(json.dumps(raw)))


def _layer_types(n: int) -> list[str]:
    """Gemma3's five local layers per global one, cut to ``n`` layers that end on a global one."""
    return ["sliding_attention"] * (n - 1) + ["full_attention"]


def build_gemma3_shaped(
    out_dir: str | os.PathLike[str],
    size: str = "4b",
    *,
    text_layers: int = 2,
    vision_layers: int = 1,
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
) -> Path:
    """Save a random Gemma3 of the real ``size`` ("4b" | "12b") shapes with few layers to ``out_dir``."""
    if size not in TEXT_SHAPES:
        raise InputError(f"unknown Gemma3 size {size!r}; use one of {', '.join(TEXT_SHAPES)}")
    if text_layers < 1 or vision_layers < 1:
        raise InputError("need at least one text and one vision layer")
    torch.manual_seed(seed)
    tokenizer = gemma_sized_tokenizer(seed)
    ids = GEMMA_SPECIAL_IDS
    text = Gemma3TextConfig(
        vocab_size=GEMMA_VOCAB,
        num_hidden_layers=text_layers,
        layer_types=_layer_types(text_layers),
        head_dim=256,
        query_pre_attn_scalar=256,
        sliding_window=1024,
        max_position_embeddings=131_072,
        rope_parameters={
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        },
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<bos>"],
        eos_token_id=[ids["<eos>"], ids["<end_of_turn>"]],
        **TEXT_SHAPES[size],
    )
    config = Gemma3Config(
        vision_config=SiglipVisionConfig(num_hidden_layers=vision_layers, **VISION_SHAPE),
        text_config=text,
        mm_tokens_per_image=MM_TOKENS_PER_IMAGE,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
    )
    model: Any = Gemma3ForConditionalGeneration(config)
    model = model.to(dtype)  # real checkpoints ship in bf16
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<bos>"], eos_token_id=[ids["<eos>"], ids["<end_of_turn>"]], pad_token_id=0
    )
    return save_gemma3(out_dir, model, tokenizer, VISION_SHAPE["image_size"], MM_TOKENS_PER_IMAGE)
