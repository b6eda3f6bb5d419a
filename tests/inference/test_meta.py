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


def test_class_bias_lives_in_the_card_and_the_eval_flag_parses_it(tmp_path: Path) -> None:
    """decoding.class_bias is read back (also from a checkpoint's run folder); none recorded is {}; a
    malformed one, or a malformed --class-bias, is a one-line error."""
    from magseg.cli.eval import parse_class_bias
    from magseg.inference.meta import read_class_bias

    assert read_class_bias(tmp_path) == {}
    write_model_card_meta(
        tmp_path, SampleConfig(), extra={"decoding": {"class_bias": {"tree": 1, "well": 2.5}}}
    )
    assert read_class_bias(tmp_path) == {"tree": 1.0, "well": 2.5}
    (tmp_path / "checkpoint-10").mkdir()
    assert read_class_bias(tmp_path / "checkpoint-10") == {"tree": 1.0, "well": 2.5}
    write_model_card_meta(tmp_path, SampleConfig(), extra={"decoding": {"class_bias": {"tree": "big"}}})
    with pytest.raises(InputError, match="decoding.class_bias must map class names to numbers"):
        read_class_bias(tmp_path)
    assert parse_class_bias("tree=1, well=3") == {"tree": 1.0, "well": 3.0}
    assert parse_class_bias("none") == {} and parse_class_bias(None) is None
    for bad in ("tree", "tree=x", "tree:1"):
        with pytest.raises(InputError, match="CLASS=NUMBER"):
            parse_class_bias(bad)


def test_rereads_live_in_the_card_and_bad_shares_are_one_line_errors(tmp_path: Path) -> None:
    """decoding.rereads is read back (0.0 when none is recorded); the bundled card asks for some; a share
    outside [0, 4] is an error, in the card and in a map config."""
    from magseg.bundled import BUNDLED_MODEL
    from magseg.inference.meta import read_rereads
    from magseg.mapping.config import MapConfig

    assert read_rereads(tmp_path) == 0.0
    write_model_card_meta(tmp_path, SampleConfig(), extra={"decoding": {"rereads": 0.3}})
    assert read_rereads(tmp_path) == 0.3
    assert 0 < read_rereads(BUNDLED_MODEL) <= 0.3
    write_model_card_meta(tmp_path, SampleConfig(), extra={"decoding": {"rereads": -1}})
    with pytest.raises(InputError, match="decoding.rereads must be a share"):
        read_rereads(tmp_path)
    with pytest.raises(InputError, match="rereads 7"):
        MapConfig(bbox=(0, 0, 0.01, 0.01), stac="x", out="o", rereads=7)
    assert MapConfig(bbox=(0, 0, 0.01, 0.01), stac="x", out="o", rereads=0).result_settings()["rereads"] == 0
