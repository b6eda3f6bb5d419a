"""Supervised fine-tuning with TRL's SFTTrainer: LoRA (or full) on the RRLE completion only."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from magseg.train.common import (
    device_args,
    freeze_vision,
    load_for_training,
    load_split,
    lora_config,
    train_and_save,
)
from magseg.train.config import TrainConfig

COLUMNS = ["images", "prompt", "completion"]


def sft_args(config: TrainConfig, output_dir: str | os.PathLike[str]) -> SFTConfig:
    """SFTConfig from our settings: completion-only loss, no truncation, no packing (images)."""
    s = config.sft
    return SFTConfig(
        output_dir=str(output_dir),
        learning_rate=s.learning_rate,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        lr_scheduler_type=s.lr_scheduler,
        warmup_steps=s.warmup if s.warmup < 1 else int(s.warmup),
        weight_decay=s.weight_decay,
        logging_steps=s.logging_steps,
        save_strategy="steps",
        save_steps=s.save_steps,
        eval_strategy="steps" if config.eval_split else "no",
        eval_steps=s.save_steps,
        gradient_checkpointing=s.gradient_checkpointing,
        completion_only_loss=True,
        max_length=None,  # truncating would cut image tokens or the RRLE
        report_to=config.report_to,
        seed=config.seed,
        dataloader_num_workers=0,
        **device_args(),
    )


def build_sft_trainer(
    config: TrainConfig,
    output_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
) -> SFTTrainer:
    """The SFTTrainer run_sft trains (built separately so Ray glue and tests can inspect it)."""
    out = Path(output_dir or config.sft.output_dir)
    model, processor = load_for_training(config.model, config)
    if config.sft.freeze_vision:
        freeze_vision(model)
    eval_ds = load_split(config, COLUMNS, config.eval_split) if config.eval_split else None
    return SFTTrainer(
        model=model,
        args=sft_args(config, out),
        train_dataset=load_split(config, COLUMNS),
        eval_dataset=eval_ds,
        processing_class=processor,
        peft_config=lora_config(config.lora),
        callbacks=list(callbacks or []),
    )


def run_sft(
    config: TrainConfig,
    output_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
) -> Path:
    """Train and save to ``output_dir`` (default sft.output_dir): an adapter (LoRA) or a full model,
    the processor, trainer_state.json and the config used; returns the folder."""
    out = Path(output_dir or config.sft.output_dir)
    trainer = build_sft_trainer(config, out, callbacks)
    return train_and_save(trainer, config, out)
