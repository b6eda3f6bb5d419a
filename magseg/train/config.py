"""Training configuration: dataclasses with documented defaults, presets, and YAML loading."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from magseg.configfile import read_yaml_mapping
from magseg.errors import InputError

#: LoRA goes on the language model's linear layers only (PEFT full-matches a string): not the vision
#: tower, not the projector, not lm_head; the seed and Text4Seg adapt the LLM alone.
LANGUAGE_LINEARS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class LoraSettings:
    """LoRA adapter; ``enabled: false`` trains every weight (needed for a randomly initialised model)."""

    enabled: bool = True
    r: int = 64  # seed / Text4Seg
    alpha: int = 128  # seed / Text4Seg
    dropout: float = 0.05
    target_modules: str = LANGUAGE_LINEARS


@dataclass
class SFTSettings:
    """Supervised fine-tuning: next-token loss on the RRLE completion only."""

    output_dir: str = "runs/sft"
    learning_rate: float = 2e-4  # seed / Text4Seg, with LoRA on a pretrained model
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 8  # per device
    grad_accum: int = 1
    lr_scheduler: str = "cosine"
    warmup: float = 0.03  # a fraction of all steps (< 1) or a number of steps (>= 1)
    weight_decay: float = 0.0
    logging_steps: int = 10
    save_steps: int = 500
    gradient_checkpointing: bool = False
    freeze_vision: bool = False  # keep the vision tower + projector as given (e.g. after alignment)
    # the vision tower + projector learn at learning_rate x this (full fine-tuning; 1: one rate for all): a
    # tower that has learnt what it sees can move slowly while the language model adapts
    vision_lr_scale: float = 1.0


@dataclass
class AlignSettings:
    """Pre-alignment of a from-scratch vision tower (magseg.train.align): per-token cell classes."""

    output_dir: str = "runs/align"
    steps: int = 1500
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    logging_steps: int = 100


@dataclass
class GRPOSettings:
    """GRPO from the SFT output: G rollouts per prompt, reward = mean DICE, KL to the SFT policy."""

    output_dir: str = "runs/grpo"
    init: str | None = None  # SFT output (adapter or full model); None: sft.output_dir
    learning_rate: float = 1e-5
    epochs: float = 1.0
    max_steps: int = -1
    prompts_per_step: int = 4  # per device; the step's batch is prompts_per_step x num_generations rollouts
    num_generations: int = 8  # G
    beta: float = 0.04  # KL weight; with an SFT adapter the reference is a frozen copy of that adapter
    epsilon: float = 0.2  # ratio clip
    # "dapo" (TRL's default): token losses averaged over all tokens of the batch, no length bias;
    # "grpo": averaged per sequence first (the original GRPO paper), which favours short good rollouts.
    loss_type: str = "dapo"
    scale_rewards: str = "group"  # advantage = (r - group mean) / group std, as in the seed
    temperature: float = 1.0
    max_completion_length: int = 512
    use_vllm: bool = False  # GPU hosts only; HF generate otherwise (forced off on CPU)
    vllm_mode: str = "colocate"
    logging_steps: int = 10
    save_steps: int = 500
    gradient_checkpointing: bool = False
    freeze_vision: bool = False  # as sft.freeze_vision: only the language model learns from the reward


@dataclass
class TrainConfig:
    """Everything run_sft / run_grpo need; load from YAML with :func:`load_config`."""

    model: str = ""  # local base model folder (save_pretrained layout)
    data: str = ""  # `magseg samples` output folder
    train_split: str = "train"
    eval_split: str | None = None
    max_samples: int | None = None  # cap on training samples (smoke runs)
    seed: int = 0
    dtype: str = "auto"  # model weights dtype when loading ("auto": the checkpoint's own)
    report_to: str = "none"
    lora: LoraSettings = field(default_factory=LoraSettings)
    align: AlignSettings = field(default_factory=AlignSettings)
    sft: SFTSettings = field(default_factory=SFTSettings)
    grpo: GRPOSettings = field(default_factory=GRPOSettings)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


#: Overrides applied before the user's keys. "seed": the paper's LoRA setup for Gemma3 4B/12B (the
#: dataclass defaults). "tiny": a from-scratch ~5M tiny Gemma3 on CPU (stack.md): full fine-tuning,
#: lr 2e-3 cosine, batch 8; GRPO 4 prompts x 4 rollouts, beta 0.04, lr 1e-4.
PRESETS: dict[str, dict[str, Any]] = {
    "seed": {},
    "tiny": {
        "lora": {"enabled": False},
        "sft": {"learning_rate": 2e-3, "batch_size": 8, "lr_scheduler": "cosine", "warmup": 0.0},
        "grpo": {
            "learning_rate": 1e-4,
            "num_generations": 4,
            "prompts_per_step": 4,
            "beta": 0.04,
            "max_completion_length": 256,
        },
    },
}

_SECTIONS = {"lora": LoraSettings, "align": AlignSettings, "sft": SFTSettings, "grpo": GRPOSettings}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**values)


def config_from_dict(values: dict[str, Any], where: str = "config") -> TrainConfig:
    """Build a TrainConfig from nested dicts; ``preset`` (seed | tiny) supplies defaults first."""
    values = dict(values)
    preset = values.pop("preset", "seed")
    if preset not in PRESETS:
        raise InputError(f"{where}: unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    merged = _merge(PRESETS[preset], values)
    sections = {}
    for name, cls in _SECTIONS.items():
        section = merged.pop(name, {}) or {}
        if not isinstance(section, dict):
            raise InputError(f"{where}: '{name}' must be a mapping, got {type(section).__name__}")
        sections[name] = _build(cls, section, f"{where} [{name}]")
    return _build(TrainConfig, {**merged, **sections}, where)


def load_config(path: str | os.PathLike[str], **overrides: Any) -> TrainConfig:
    """Read a YAML training config; top-level ``overrides`` (e.g. model=..., data=...) win over the file."""
    values = read_yaml_mapping(path, "a training config", "write a YAML file (see magseg.train.config)")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(values, str(path))
