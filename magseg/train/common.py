"""What SFT and GRPO share: precision/device arguments, the dataset, the LoRA config, the model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset

from magseg.errors import InputError
from magseg.model.load import load_model
from magseg.samples import load_samples
from magseg.train.config import LoraSettings, TrainConfig

if TYPE_CHECKING:
    from transformers import Trainer


def device_args() -> dict[str, Any]:
    """TrainingArguments for this host: CPU without CUDA; bf16 only on a GPU that supports it."""
    cuda = torch.cuda.is_available()
    return {"use_cpu": not cuda, "bf16": cuda and torch.cuda.is_bf16_supported(), "fp16": False}


def load_split(config: TrainConfig, columns: list[str], split: str | None = None) -> Dataset:
    """One split of the samples, only ``columns`` kept, capped at ``max_samples``."""
    ds = load_samples(config.data, split or config.train_split)
    if config.max_samples is not None:
        ds = ds.select(range(min(config.max_samples, len(ds))))
    return ds.select_columns(columns)


def lora_config(lora: LoraSettings) -> Any:
    """A PEFT LoraConfig for the language model's linear layers, or None for full fine-tuning."""
    if not lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def load_for_training(path: str | Path, config: TrainConfig) -> tuple[Any, Any]:
    """Load a base model, a full fine-tuned model or a LoRA output folder, trainable, absolute paths.

    Absolute paths matter: an adapter records its base by path, and TRL rebuilds a full-FT reference
    model from ``config._name_or_path``.
    """
    dtype = None if config.dtype == "auto" else getattr(torch, config.dtype, None)
    if config.dtype != "auto" and not isinstance(dtype, torch.dtype):
        raise InputError(f"dtype {config.dtype!r} is not a torch dtype; use auto, float32 or bfloat16")
    return load_model(Path(path).resolve(), dtype=dtype, trainable=True)


def vision_parameters(model: Any) -> list[torch.nn.Parameter]:
    """The parameters of the vision tower and the projector (a PEFT wrapper is looked through)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return [p for m in (inner.model.vision_tower, inner.model.multi_modal_projector) for p in m.parameters()]


def freeze_vision(model: Any) -> None:
    """Keep the vision tower and projector as loaded (e.g. after pre-alignment): only the LM trains."""
    for p in vision_parameters(model):
        p.requires_grad_(False)


def train_and_save(trainer: Trainer, config: TrainConfig, out: Path) -> Path:
    """Train, then save the model (adapter or full) with its processor, trainer_state.json and the config.

    Safe under distributed training (Ray Train workers): only rank 0 writes.
    """
    trainer.train()
    trainer.save_model(str(out))  # also saves the processor (the trainer's processing_class)
    trainer.save_state()
    if trainer.is_world_process_zero():
        config.save(out / "train_config.yaml")
    return out
