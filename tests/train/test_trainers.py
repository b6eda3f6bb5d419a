"""A few real TRL steps on CPU: SFT (LoRA and full) saves what GRPO and load_model read back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from peft import PeftModel
from transformers import TrainerCallback

from magseg.model import load_model
from magseg.train import config_from_dict, run_grpo, run_sft
from magseg.train.config import TrainConfig


class Spy(TrainerCallback):
    """Records the trainable parameter names at the start and the number of steps run."""

    def __init__(self) -> None:
        self.trainable: list[str] = []
        self.steps = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self.trainable = [n for n, p in model.named_parameters() if p.requires_grad]

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.steps += 1


def _config(model: Path, samples: Path, **lora: Any) -> TrainConfig:
    quick = {"logging_steps": 1, "save_steps": 1000}
    return config_from_dict(
        {
            "model": str(model),
            "data": str(samples),
            "lora": {"r": 4, "alpha": 8, **lora},
            "sft": {"max_steps": 3, "batch_size": 2, **quick},
            "grpo": {
                "max_steps": 2,
                "prompts_per_step": 1,
                "num_generations": 2,
                "max_completion_length": 12,
                **quick,
            },
        }
    )


@pytest.fixture(scope="module")
def lora_sft(tiny_model: Path, tiny_samples: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    spy = Spy()
    cfg = _config(tiny_model, tiny_samples)
    out = run_sft(cfg, output_dir=tmp_path_factory.mktemp("run") / "sft", callbacks=[spy])
    return cfg, out, spy


def test_lora_sft_trains_the_language_model_only(lora_sft: tuple) -> None:
    _, out, spy = lora_sft
    assert spy.steps == 3
    assert spy.trainable and all("lora_" in n and "language_model" in n for n in spy.trainable)
    assert any("q_proj" in n for n in spy.trainable) and any("down_proj" in n for n in spy.trainable)
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [h["step"] for h in history if "loss" in h] == [1, 2, 3]
    model, processor = load_model(out)  # the adapter folder reloads on its own
    assert isinstance(model, PeftModel) and processor.tokenizer.pad_token == "<pad>"


def test_grpo_continues_the_sft_adapter(lora_sft: tuple, tmp_path: Path) -> None:
    cfg, sft_out, _ = lora_sft
    cfg.grpo.init = str(sft_out)
    spy = Spy()
    out = run_grpo(cfg, output_dir=tmp_path / "grpo", callbacks=[spy])
    assert spy.steps == 2
    # only the SFT adapter trains; TRL keeps a frozen copy ("ref") as the KL reference
    assert spy.trainable and all(".default." in n for n in spy.trainable)
    logs = [h for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "reward" in h]
    assert len(logs) == 2
    for h in logs:
        assert 0.0 <= h["reward"] <= 1.0 and h["reward_std"] >= 0.0
        assert 0.0 <= h["decode_repair_rate"] <= 1.0
        assert 1 <= h["completions/mean_length"] <= 12
        assert "kl" in h
    assert isinstance(load_model(out)[0], PeftModel)


def test_full_fine_tuning_from_scratch(tiny_model: Path, tiny_samples: Path, tmp_path: Path) -> None:
    cfg = _config(tiny_model, tiny_samples, enabled=False)
    cfg.sft.max_steps, cfg.grpo.max_steps = 1, 1
    spy = Spy()
    sft_out = run_sft(cfg, output_dir=tmp_path / "sft", callbacks=[spy])
    model, _ = load_model(sft_out)
    assert len(spy.trainable) == len(list(model.parameters()))  # every weight, vision tower included
    assert (sft_out / "model.safetensors").is_file()
    cfg.grpo.init, cfg.grpo.freeze_vision = str(sft_out), True
    spy = Spy()
    grpo_out = run_grpo(cfg, output_dir=tmp_path / "grpo", callbacks=[spy])  # reference: a copy of sft_out
    assert (grpo_out / "model.safetensors").is_file()
    # the reward trains the language model only: an aligned vision tower stays as it was
    assert spy.trainable and not any(
        "vision_tower" in n or "multi_modal_projector" in n for n in spy.trainable
    )


def test_vision_tower_can_learn_at_a_scaled_rate(
    tiny_model: Path, tiny_samples: Path, tmp_path: Path
) -> None:
    """Full fine-tuning with sft.vision_lr_scale: the tower + projector get that share of the rate, the
    language model the full rate, and every trainable parameter is in exactly one group."""
    from magseg.train.common import vision_parameters
    from magseg.train.sft import build_sft_trainer

    cfg = config_from_dict(
        {
            "model": str(tiny_model),
            "data": str(tiny_samples),
            "lora": {"enabled": False},
            "sft": {"max_steps": 1, "batch_size": 2, "learning_rate": 1e-3, "vision_lr_scale": 0.1},
        }
    )
    trainer = build_sft_trainer(cfg, tmp_path / "sft")
    optimizer = trainer.create_optimizer()
    vision = {id(p) for p in vision_parameters(trainer.model)}
    rates = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    assert len(rates) == sum(len(g["params"]) for g in optimizer.param_groups) == len(trainable)
    assert vision and all(rates[i] == pytest.approx(1e-4) for i in vision)
    assert all(r == pytest.approx(1e-3) for i, r in rates.items() if i not in vision)
    trainer.train()  # the scheduler takes both rates along
    assert {round(g["initial_lr"], 8) for g in optimizer.param_groups} == {1e-3, 1e-4}
