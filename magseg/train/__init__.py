"""Training: SFT and GRPO with TRL (LoRA or full fine-tuning), the DICE reward, and their config."""

from magseg.train.config import (
    GRPOSettings,
    LoraSettings,
    SFTSettings,
    TrainConfig,
    config_from_dict,
    load_config,
)
from magseg.train.grpo import build_grpo_trainer, run_grpo
from magseg.train.reward import decode_repair_rate, dice_reward
from magseg.train.sft import build_sft_trainer, run_sft

__all__ = [
    "GRPOSettings",
    "LoraSettings",
    "SFTSettings",
    "TrainConfig",
    "build_grpo_trainer",
    "build_sft_trainer",
    "config_from_dict",
    "decode_repair_rate",
    "dice_reward",
    "load_config",
    "run_grpo",
    "run_sft",
]
