"""Tests of the model card: written with a model, read back at inference, overridden by flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from magseg.errors import InputError
from magseg.inference import ModelFormat, read_model_meta, resolve_config, write_model_card_meta
from magseg.samples import SampleConfig


def test_card_round_trip_and_overrides(tmp_path: Path) -> None:
    cfg = SampleConfig(patch=32, grid=4, context_size=128, crop_size=48, with_crop=False, jpeg_quality=80)
    write_model_card_meta(tmp_path, cfg, extra={"note": "x"})
    read = read_model_meta(tmp_path)
    assert read == ModelFormat(32, 4, 128, 48, False, 80)
    config, source = resolve_config(tmp_path, grid=8, patch=None)
    assert (config.patch, config.grid, config.context_size) == (32, 8, 128)
    assert source == "model folder + flags"


def test_no_card_gives_defaults_and_bad_overrides_fail(tmp_path: Path) -> None:
    assert read_model_meta(tmp_path) is None
    config, source = resolve_config(tmp_path)
    assert config == ModelFormat() and source == "defaults"
    with pytest.raises(InputError, match="grid"):
        resolve_config(tmp_path, patch=8, grid=16)


def test_checkpoint_and_finished_run_fall_back_to_the_samples(tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    recorded = {"patch": 48, "grid": 6, "context_size": 96, "with_crop": True, "per_scene": 3}
    (samples / "samples.json").write_text(json.dumps({"config": recorded}))
    run = tmp_path / "sft"
    (run / "checkpoint-500").mkdir(parents=True)
    (run / "train_config.yaml").write_text(yaml.safe_dump({"data": str(samples)}))
    for folder in (run, run / "checkpoint-500"):
        meta = read_model_meta(folder)
        assert meta is not None and (meta.patch, meta.grid, meta.context_size) == (48, 6, 96)
    # a card in the folder wins over the training record
    write_model_card_meta(run / "checkpoint-500", SampleConfig(patch=16, grid=4))
    assert read_model_meta(run / "checkpoint-500") == ModelFormat.of(SampleConfig(16, 4))


def test_broken_card_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "magseg.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON") as info:
        read_model_meta(tmp_path)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="no such model folder"):
        write_model_card_meta(tmp_path / "missing", SampleConfig())


def test_inference_depends_on_nothing_of_training() -> None:
    """The sample format lives in magseg.format: importing inference loads no training-side module."""
    import subprocess
    import sys

    code = "import sys, magseg.inference; print(sorted(m for m in sys.modules if m.startswith('magseg.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "magseg.format" in loaded
    assert "magseg.samples" not in loaded and "magseg.train" not in loaded and "magseg.sources" not in loaded
