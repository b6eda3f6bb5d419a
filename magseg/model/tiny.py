"""Build a tiny Gemma3 image-text-to-text model offline: tokenizer, processor and random weights."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3ImageProcessorPil,
    Gemma3Processor,
    Gemma3TextConfig,
    GenerationConfig,
    PreTrainedTokenizerFast,
    SiglipVisionConfig,
)

from magseg.atomic import atomic_dir
from magseg.classes import CLASSES
from magseg.codec import encode
from magseg.prompts import INSTRUCTION, PatchSpec, patch_text

#: Gemma's special tokens, in Gemma's roles; ids follow this order (0 = <pad>).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
)


def gemma3_chat_template() -> str:
    """Gemma3's own chat template (TRL ships the original, byte for byte, for model identification)."""
    return (resources.files("trl") / "chat_templates" / "gemma3.jinja").read_text()


def _blocky_grid(rng: np.random.Generator, g: int) -> np.ndarray:
    """A random class grid made of a few rectangles: RRLE text that looks like real masks."""
    grid = np.full((g, g), rng.integers(0, len(CLASSES)), dtype=np.int64)
    for _ in range(int(rng.integers(0, 5))):
        y0, x0 = rng.integers(0, g, size=2)
        h, w = rng.integers(1, g + 1, size=2)
        grid[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, len(CLASSES))
    return grid


def default_corpus(seed: int = 0, n: int = 400) -> Iterator[str]:
    """Prompts and RRLE strings like those the model will read and write (grids 4..32)."""
    rng = np.random.default_rng(seed)
    yield INSTRUCTION
    yield "user\nmodel\n"
    for _ in range(n):
        scene = int(rng.choice([128, 256, 512, 1024]))
        size = int(rng.integers(16, scene + 1))
        g = int(rng.choice([4, 8, 16, 24, 32]))
        spec = PatchSpec(
            int(rng.integers(0, scene - size + 1)),
            int(rng.integers(0, scene - size + 1)),
            size,
            scene,
            scene,
            g,
        )
        yield patch_text(spec)
        yield encode(_blocky_grid(rng, g))


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Byte-level BPE with one token per digit, Gemma's special tokens and Gemma3's chat template."""
    tok = Tokenizer(models.BPE())
    # Digits one per token: a run count is read and written digit by digit, never as an unseen merge.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """A `tokenizers` BPE as Gemma's tokenizer: its special-token roles, left padding, Gemma3's template."""
    # No post-processor: the chat template writes <bos> itself.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<end_of_turn>",  # generation ends with the turn
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        padding_side="left",
        extra_special_tokens={
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "image_token": "<image_soft_token>",
        },
        chat_template=gemma3_chat_template(),
    )


def _model_config(
    tokenizer: PreTrainedTokenizerFast,
    *,
    vision_hidden: int,
    vision_layers: int,
    text_hidden: int,
    text_layers: int,
    image_size: int,
    patch_size: int,
    mm_tokens_per_image: int,
) -> Gemma3Config:
    patches = (image_size // patch_size) ** 2
    side = round(mm_tokens_per_image**0.5)
    if side * side != mm_tokens_per_image or (image_size // patch_size) % side:
        raise ValueError(
            f"mm_tokens_per_image={mm_tokens_per_image} must be a square whose side divides the "
            f"{image_size // patch_size}x{image_size // patch_size} patch grid ({patches} patches)"
        )
    ids: dict[str, int] = {t: int(tokenizer.convert_tokens_to_ids(t)) for t in SPECIAL_TOKENS}  # type: ignore[arg-type]
    heads = max(1, text_hidden // 64)
    vision = SiglipVisionConfig(
        hidden_size=vision_hidden,
        intermediate_size=4 * vision_hidden,
        num_hidden_layers=vision_layers,
        num_attention_heads=max(1, vision_hidden // 32),
        image_size=image_size,
        patch_size=patch_size,
        vision_use_head=False,
    )
    text = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=text_hidden,
        intermediate_size=4 * text_hidden,
        num_hidden_layers=text_layers,
        num_attention_heads=heads,
        num_key_value_heads=1,
        head_dim=text_hidden // heads,
        query_pre_attn_scalar=text_hidden // heads,
        max_position_embeddings=2048,
        sliding_window=2048,  # prompts are short: every layer sees the whole sequence
        pad_token_id=ids["<pad>"],
        bos_token_id=ids["<bos>"],
        eos_token_id=[ids["<end_of_turn>"], ids["<eos>"]],
    )
    return Gemma3Config(
        vision_config=vision,
        text_config=text,
        mm_tokens_per_image=mm_tokens_per_image,
        boi_token_index=ids["<start_of_image>"],
        eoi_token_index=ids["<end_of_image>"],
        image_token_index=ids["<image_soft_token>"],
    )


def build_tiny_gemma3(
    out_dir: str | os.PathLike[str],
    *,
    vision_hidden: int = 128,
    vision_layers: int = 4,
    text_hidden: int = 256,
    text_layers: int = 4,
    image_size: int = 64,
    patch_size: int = 8,
    mm_tokens_per_image: int = 64,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    vocab_size: int = 512,
) -> Path:
    """Build a randomly initialised Gemma3 and save model + processor to ``out_dir``; return the path.

    The defaults give ~5M parameters and one unpooled image token per 8 px patch: with a 64 px crop
    and an 8x8 RRLE grid that is one token per mask cell, which is what let a from-scratch model see
    the patch (stack.md). The folder loads with AutoProcessor / AutoModelForImageTextToText.
    """
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(default_corpus(seed) if corpus is None else corpus, vocab_size)
    config = _model_config(
        tokenizer,
        vision_hidden=vision_hidden,
        vision_layers=vision_layers,
        text_hidden=text_hidden,
        text_layers=text_layers,
        image_size=image_size,
        patch_size=patch_size,
        mm_tokens_per_image=mm_tokens_per_image,
    )
    model = Gemma3ForConditionalGeneration(config)
    text = config.get_text_config()
    # transformers zero-initialises the projector (right for fine-tuning, fatal from scratch: image
    # embeddings start at 0 and the vision tower never gets a gradient).
    with torch.no_grad():
        proj = model.model.multi_modal_projector.mm_input_projection_weight
        proj.normal_(0.0, text.initializer_range)
    model.generation_config = GenerationConfig(
        bos_token_id=text.bos_token_id,
        eos_token_id=text.eos_token_id,
        pad_token_id=text.pad_token_id,
        do_sample=False,
    )
    return save_gemma3(out_dir, model, tokenizer, image_size, mm_tokens_per_image)


def save_gemma3(
    out_dir: str | os.PathLike[str],
    model: Gemma3ForConditionalGeneration,
    tokenizer: PreTrainedTokenizerFast,
    image_size: int,
    mm_tokens_per_image: int,
) -> Path:
    """Save a Gemma3 with Gemma3's image processor (square ``image_size``, no pan-and-scan) and processor
    to ``out_dir`` atomically; the folder loads with AutoProcessor / AutoModelForImageTextToText."""
    image_processor = Gemma3ImageProcessorPil(
        size={"height": image_size, "width": image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        do_pan_and_scan=False,
    )
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=tokenizer.chat_template,
        image_seq_length=mm_tokens_per_image,
    )
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
    return out
