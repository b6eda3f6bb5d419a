"""Pre-alignment: teach a from-scratch vision tower to see before SFT, through a throwaway head.

A real Gemma3 starts from a pretrained SigLIP tower; the tiny model starts from nothing, and SFT's
next-token loss reaches its vision tower only through the language model, so it learns to write the
majority class. This stage trains the vision tower and the projector on dense targets instead: each
image token of the patch crop predicts the class of its RRLE cell (one token per cell) through a linear
head that is thrown away afterwards. The saved model has exactly the base model's architecture, so
inference costs nothing more. Losses are class-weighted (inverse square-root frequency) so the rare
classes (tree, pond, well) are not drowned by fields.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from magseg.atomic import atomic_dir
from magseg.classes import CLASSES
from magseg.codec import decode
from magseg.errors import InputError
from magseg.train.common import load_for_training, load_split
from magseg.train.config import TrainConfig

Log = Callable[[dict[str, Any]], None]


def _crop_tensors(
    config: TrainConfig, split: str | None, processor: Any, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel values of every sample's patch crop and its g x g class grid, as tensors."""
    ds = load_split(config, ["images", "solution", "grid"], split)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    pixels, targets = [], []
    for start in range(0, len(ds), 256):
        rows = ds[start : start + 256]
        crops = []
        for images in rows["images"]:
            if len(images) < 2:
                raise InputError(
                    "alignment needs samples with the patch crop (with_crop: true); rebuild them"
                )
            crops.append(images[1].convert("RGB"))
        pixels.append(processor.image_processor(crops, return_tensors="pt")["pixel_values"])
        for text, g in zip(rows["solution"], rows["grid"], strict=True):
            targets.append(torch.from_numpy(decode(text, (g, g))[0].astype(np.int64).ravel()))
    return torch.cat(pixels), torch.stack(targets)


def class_weights(targets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse square-root class frequency, normalised to mean 1 over the classes present."""
    counts = torch.bincount(targets.ravel(), minlength=n_classes).float()
    weights = torch.where(counts > 0, counts.clamp(min=1).rsqrt(), torch.zeros_like(counts))
    return weights * (counts > 0).sum() / weights.sum()


def _token_logits(model: Any, head: nn.Linear, pixels: torch.Tensor) -> torch.Tensor:
    feats = model.model.get_image_features(pixel_values=pixels)
    feats = getattr(feats, "pooler_output", feats)
    return head(feats)  # (B, tokens, classes)


def _evaluate(model: Any, head: nn.Linear, pixels: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """Cell accuracy and per-class DICE of the head's argmax on held-out crops."""
    model.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, len(pixels), 128):
            preds.append(_token_logits(model, head, pixels[start : start + 128]).argmax(-1))
    model.train()
    pred = torch.cat(preds)
    out = {"cell_accuracy": float((pred == targets).float().mean())}
    for cls, name in enumerate(CLASSES):
        p, t = pred == cls, targets == cls
        if t.any():
            out[f"dice_{name}"] = float(2 * (p & t).sum() / (p.sum() + t.sum()))
    return out


def run_align(
    config: TrainConfig, output_dir: str | os.PathLike[str] | None = None, log: Log | None = None
) -> Path:
    """Train the vision tower + projector on per-token cell classes; save the model (no head) and processor."""
    a = config.align
    out = Path(output_dir or a.output_dir)
    torch.manual_seed(config.seed)
    model, processor = load_for_training(config.model, config)
    side = math.isqrt(int(model.config.mm_tokens_per_image))
    pixels, targets = _crop_tensors(config, None, processor)
    if targets.shape[1] != side * side:
        raise InputError(
            f"alignment needs one image token per RRLE cell: the model has {side}x{side} tokens per image "
            f"but the samples' grid is {math.isqrt(targets.shape[1])}; build samples at grid {side}"
        )
    held = _crop_tensors(config, config.eval_split, processor, limit=2048) if config.eval_split else None
    n_classes = len(CLASSES)
    head = nn.Linear(model.config.get_text_config().hidden_size, n_classes)
    trainable = [*model.model.vision_tower.parameters(), *model.model.multi_modal_projector.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trainable:
        p.requires_grad_(True)
    params = trainable + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=a.learning_rate, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / max(a.warmup_steps, 1)) * 0.5 * (1 + math.cos(math.pi * s / a.steps)),
    )
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(targets, n_classes))
    gen = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    t0 = time.time()
    model.train()
    running = 0.0
    for step in range(1, a.steps + 1):
        idx = torch.randint(0, len(pixels), (a.batch_size,), generator=gen)
        logits = _token_logits(model, head, pixels[idx])
        loss = loss_fn(logits.reshape(-1, n_classes), targets[idx].reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running += loss.item()
        if step % a.logging_steps == 0 or step == a.steps:
            entry: dict[str, Any] = {
                "step": step,
                "loss": running / a.logging_steps,
                "seconds": time.time() - t0,
            }
            running = 0.0
            if held is not None:
                entry.update(_evaluate(model, head, *held))
            history.append(entry)
            if log is not None:
                log(entry)
    for p in model.parameters():
        p.requires_grad_(True)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        (tmp / "align_history.json").write_text(json.dumps(history, indent=2))
        config.save(tmp / "train_config.yaml")
    return out
