"""Training: SFT and GRPO with TRL (LoRA or full fine-tuning), the DICE reward, the boundary model, config.

Names are imported lazily: a Ray job driver that only reads a config must not pay for importing TRL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AlignSettings": "config",
    "run_align": "align",
    "BoundaryConfig": "boundary",
    "BoundarySource": "boundary",
    "load_boundary_config": "boundary",
    "run_boundary": "boundary",
    "GRPOSettings": "config",
    "LoraSettings": "config",
    "SFTSettings": "config",
    "TrainConfig": "config",
    "config_from_dict": "config",
    "load_config": "config",
    "build_grpo_trainer": "grpo",
    "run_grpo": "grpo",
    "decode_repair_rate": "reward",
    "dice_reward": "reward",
    "build_sft_trainer": "sft",
    "run_sft": "sft",
}

__all__ = [
    "AlignSettings",
    "run_align",
    "BoundaryConfig",
    "BoundarySource",
    "GRPOSettings",
    "LoraSettings",
    "SFTSettings",
    "TrainConfig",
    "build_grpo_trainer",
    "build_sft_trainer",
    "config_from_dict",
    "decode_repair_rate",
    "dice_reward",
    "load_boundary_config",
    "load_config",
    "run_boundary",
    "run_grpo",
    "run_sft",
]

if TYPE_CHECKING:
    from magseg.train.align import run_align
    from magseg.train.boundary import BoundaryConfig, BoundarySource, load_boundary_config, run_boundary
    from magseg.train.config import (
        AlignSettings,
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'magseg.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"magseg.train.{_EXPORTS[name]}"), name)
