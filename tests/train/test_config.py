"""Tests of the training config: presets, YAML loading, overrides and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from magseg.errors import InputError
from magseg.train.config import TrainConfig, config_from_dict, load_config


def test_seed_defaults_are_the_papers() -> None:
    cfg = TrainConfig()
    assert (cfg.lora.enabled, cfg.lora.r, cfg.lora.alpha, cfg.sft.learning_rate) == (True, 64, 128, 2e-4)
    assert cfg.grpo.beta > 0 and cfg.grpo.use_vllm is False


def test_tiny_preset_trains_every_weight_and_keys_win(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"preset": "tiny", "model": "m", "sft": {"batch_size": 2}}))
    cfg = load_config(path, data="samples", model=None)
    assert cfg.lora.enabled is False
    assert cfg.sft.learning_rate == 2e-3 and cfg.sft.batch_size == 2  # preset, then the file's key
    assert cfg.grpo.num_generations == 4 and cfg.grpo.beta == pytest.approx(0.04)
    assert (cfg.model, cfg.data) == ("m", "samples")  # None overrides are ignored
    cfg.save(tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == cfg


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"sft": {"lr": 1}}, r"\[sft\]: unknown key\(s\) lr"),
        ({"modle": "x"}, r"unknown key\(s\) modle"),
        ({"preset": "huge"}, "unknown preset 'huge'"),
        ({"grpo": 3}, "'grpo' must be a mapping"),
    ],
)
def test_bad_configs(values: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        config_from_dict(values)


def test_missing_or_non_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        load_config(tmp_path / "list.yaml")


def test_bad_dtype_is_refused_before_loading(tmp_path: Path) -> None:
    from magseg.train.common import load_for_training

    with pytest.raises(InputError, match="'float33' is not a torch dtype"):
        load_for_training(tmp_path, config_from_dict({"dtype": "float33"}))
