"""Supervised fine-tuning with TRL's SFTTrainer: LoRA (or full) on the RRLE completion only."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from magseg.errors import InputError
from magseg.train.common import (
    device_args,
    freeze_vision,
    load_for_training,
    load_split,
    lora_config,
    train_and_save,
    vision_parameters,
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


class MagsegSFTTrainer(SFTTrainer):
    """TRL's SFTTrainer with one addition: the vision tower + projector may learn at a scaled rate.

    The optimizer TRL builds is kept (its class, decay groups, options); only each group's vision
    parameters move to a twin group whose rate is scaled, before any step, so the scheduler scales both.
    """

    def __init__(self, *args: Any, vision_lr_scale: float = 1.0, **kwargs: Any) -> None:
        self.vision_lr_scale = vision_lr_scale
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        if self.vision_lr_scale == 1.0 or getattr(optimizer, "magseg_vision_scaled", False):
            return optimizer  # the base class hands back the optimizer it built before: scale it once
        vision = {id(p) for p in vision_parameters(self.model if model is None else model)}
        groups, optimizer.param_groups = optimizer.param_groups, []
        for group in groups:
            options = {k: v for k, v in group.items() if k != "params"}
            fast = [p for p in group["params"] if id(p) not in vision]
            slow = [p for p in group["params"] if id(p) in vision]
            for params, lr in ((fast, options["lr"]), (slow, options["lr"] * self.vision_lr_scale)):
                if params:
                    optimizer.add_param_group({**options, "params": params, "lr": lr})
        optimizer.magseg_vision_scaled = True  # type: ignore[attr-defined]
        return optimizer


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
    if config.sft.vision_lr_scale <= 0:
        raise InputError(
            f"sft.vision_lr_scale must be > 0, got {config.sft.vision_lr_scale}; freeze the tower with sft.freeze_vision"
        )
    return MagsegSFTTrainer(
        model=model,
        args=sft_args(config, out),
        train_dataset=load_split(config, COLUMNS),
        eval_dataset=eval_ds,
        processing_class=processor,
        peft_config=lora_config(config.lora),
        callbacks=list(callbacks or []),
        vision_lr_scale=config.sft.vision_lr_scale,
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
