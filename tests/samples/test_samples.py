"""Tests of instruction samples: crops, targets, reproducibility and the TRL-readable output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from magseg.cli import cli
from magseg.codec import decode, mask_to_grid
from magseg.errors import InputError
from magseg.samples import SampleConfig, load_samples, scene_samples, write_samples
from magseg.sources import list_scenes


def test_targets_decode_to_the_patch_labels(labelled_folder: Path) -> None:
    scene = list_scenes(labelled_folder)[0].load()
    config = SampleConfig(patch=32, grid=8, per_scene=20)
    samples = scene_samples(scene, config, np.random.default_rng(0))
    assert len(samples) == 20
    for s in samples:
        assert 0 <= s.x0 <= 128 - 32 and 0 <= s.y0 <= 128 - 32
        grid, report = decode(s.solution, (8, 8))
        assert report.valid
        window = scene.labels.semantic[s.y0 : s.y0 + 32, s.x0 : s.x0 + 32]
        np.testing.assert_array_equal(grid, mask_to_grid(window, 8))
        assert s.completion[0]["content"][0]["text"] == s.solution
        assert len(s.images) == 2 and s.images[1]["bytes"][:2] == b"\xff\xd8"  # JPEG


def test_top_left_corners_cover_the_scene(labelled_folder: Path) -> None:
    scene = list_scenes(labelled_folder)[0].load()
    samples = scene_samples(scene, SampleConfig(patch=32, per_scene=400), np.random.default_rng(1))
    xs = np.array([s.x0 for s in samples])
    assert xs.min() <= 5 and xs.max() >= 91  # uniform over 0..96, both ends reached


def test_written_dataset_is_reproducible_and_loads(labelled_folder: Path, tmp_path: Path) -> None:
    config = SampleConfig(patch=32, grid=8, per_scene=5, context_size=64)
    counts = write_samples([labelled_folder], tmp_path / "a", config, seed=3)
    write_samples([labelled_folder], tmp_path / "b", config, seed=3)
    write_samples([labelled_folder], tmp_path / "c", config, seed=4)
    assert counts == {"train": 10, "val": 0}
    a, b, c = (load_samples(tmp_path / n) for n in "abc")
    assert a["solution"] == b["solution"] and (a["x0"], a["y0"]) == (b["x0"], b["y0"])
    assert (a["x0"], a["y0"]) != (c["x0"], c["y0"])
    row = a[0]
    assert row["images"][0].size == (64, 64)  # decoded to PIL by the Image feature
    assert row["prompt"][0]["role"] == "user" and row["completion"][0]["role"] == "assistant"
    meta = json.loads((tmp_path / "a" / "samples.json").read_text())
    assert meta["seed"] == 3 and meta["config"]["patch"] == 32


def test_validation_split_holds_whole_scenes(naip_folder: Path, tmp_path: Path) -> None:
    config = SampleConfig(patch=128, grid=16, per_scene=2, context_size=64)
    counts = write_samples([naip_folder], tmp_path / "s", config, seed=0, val_fraction=0.3)
    assert counts["train"] + counts["val"] == 6 and counts["val"] > 0
    train, val = load_samples(tmp_path / "s", "train"), load_samples(tmp_path / "s", "val")
    assert not set(train["scene_id"]) & set(val["scene_id"])


def test_refuses_to_overwrite(labelled_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        write_samples([labelled_folder], tmp_path / "out", SampleConfig(patch=32))
    assert (tmp_path / "out" / "keep.txt").exists()


def test_cli(labelled_folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["samples", "--source", str(labelled_folder), "--out", str(tmp_path / "o"),
                             "--patch", "32", "--per-scene", "3"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "wrote 6 train" in ok.output
    bad = runner.invoke(cli, ["samples", "--source", str(labelled_folder), "--out", str(tmp_path / "p"),
                              "--patch", "8", "--grid", "16"])  # fmt: skip
    assert bad.exit_code != 0 and "grid" in bad.output
    assert not (tmp_path / "p").exists()


def test_cli_sampling_options(labelled_folder: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["samples", "--source", str(labelled_folder), "--out", str(tmp_path / "o"),
                             "--patch", "32", "--per-scene", "4", "--window", "64", "--balance", "0.5",
                             "--augment", "--jitter", "0.1"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    meta = json.loads((tmp_path / "o" / "samples.json").read_text())["config"]
    assert (meta["window"], meta["balance"], meta["augment"], meta["jitter"]) == (64, 0.5, True, 0.1)
    assert max(load_samples(tmp_path / "o")["x0"]) <= 64 - 32  # positions inside the 64 px window
    bad = runner.invoke(cli, ["samples", "--source", str(labelled_folder), "--out", str(tmp_path / "p"),
                              "--patch", "32", "--window", "48"])  # fmt: skip
    assert bad.exit_code != 0 and "multiple of the patch" in bad.output
