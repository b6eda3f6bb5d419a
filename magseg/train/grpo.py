"""GRPO with TRL's GRPOTrainer from the SFT output: reward = mean DICE of the decoded RRLE."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from magseg.train.common import (
    device_args,
    freeze_vision,
    load_for_training,
    load_split,
    lora_config,
    train_and_save,
)
from magseg.train.config import TrainConfig
from magseg.train.reward import dice_reward

# The reward reads `solution` and `grid`; TRL passes extra dataset columns to it as keyword arguments.
COLUMNS = ["images", "prompt", "solution", "grid"]


def grpo_args(config: TrainConfig, output_dir: str | os.PathLike[str]) -> GRPOConfig:
    """GRPOConfig from our settings; TRL's GPU-minded defaults (bf16, checkpointing) are set explicitly."""
    g = config.grpo
    return GRPOConfig(
        output_dir=str(output_dir),
        learning_rate=g.learning_rate,
        num_train_epochs=g.epochs,
        max_steps=g.max_steps,
        per_device_train_batch_size=g.prompts_per_step * g.num_generations,
        num_generations=g.num_generations,
        beta=g.beta,
        epsilon=g.epsilon,
        loss_type=g.loss_type,
        scale_rewards=g.scale_rewards,
        temperature=g.temperature,
        max_completion_length=g.max_completion_length,
        use_vllm=g.use_vllm and torch.cuda.is_available(),
        vllm_mode=g.vllm_mode,
        logging_steps=g.logging_steps,
        save_strategy="steps",
        save_steps=g.save_steps,
        gradient_checkpointing=g.gradient_checkpointing,
        report_to=config.report_to,
        seed=config.seed,
        dataloader_num_workers=0,
        **device_args(),
    )


def build_grpo_trainer(
    config: TrainConfig,
    output_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
) -> GRPOTrainer:
    """The GRPOTrainer run_grpo trains.

    From a LoRA SFT output the SFT adapter itself keeps training and TRL keeps a frozen copy of it as
    the reference ("ref" adapter): the KL is to the SFT policy. From a full model with LoRA enabled a
    fresh adapter is added and the reference is that model with the adapter switched off. Full
    fine-tuning (lora.enabled false) makes TRL load a reference copy from the init folder.
    """
    out = Path(output_dir or config.grpo.output_dir)
    init = config.grpo.init or config.sft.output_dir
    model, processor = load_for_training(init, config)
    from peft import PeftModel

    if config.grpo.freeze_vision:
        freeze_vision(model)
    peft_config = None if isinstance(model, PeftModel) else lora_config(config.lora)
    return GRPOTrainer(
        model=model,
        reward_funcs=dice_reward,  # type: ignore[arg-type]  # list[float] is a list[float | None]
        args=grpo_args(config, out),
        train_dataset=load_split(config, COLUMNS),
        processing_class=processor,
        peft_config=peft_config,
        callbacks=list(callbacks or []),
    )


def run_grpo(
    config: TrainConfig,
    output_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[TrainerCallback] | None = None,
) -> Path:
    """Train and save to ``output_dir`` (default grpo.output_dir); returns the folder.

    Logged each ``logging_steps``: reward / reward_std (mean and std of DICE), decode_repair_rate and
    completions/mean_length (tokens), with TRL's KL, clip ratios and entropy.
    """
    out = Path(output_dir or config.grpo.output_dir)
    trainer = build_grpo_trainer(config, out, callbacks)
    return train_and_save(trainer, config, out)
