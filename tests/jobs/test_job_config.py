"""Job configs, Ray resources derived from the cluster, and `magseg train --local` (no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from magseg.errors import InputError
from magseg.train.boundary import BoundaryConfig
from magseg.train.config import TrainConfig
from magseg.train.ray_job import load_job_config
from magseg.train.ray_train import RaySettings, check_kind, config_of, ray_settings, scaling_for
from tests.jobs.conftest import REPO

TRAINING = ("sft", "grpo", "boundary", "align")
CONFIGS = sorted(p for p in (REPO / "jobs" / "configs").glob("*.yaml") if p.stem.split("_")[0] in TRAINING)
MAP_CONFIGS = sorted((REPO / "jobs" / "configs").glob("map_*.yaml"))
CPU_ONLY = {"CPU": 2.0, "memory": 1e9}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads(path: Path) -> None:
    kind = path.stem.split("_")[0]
    config, settings = load_job_config(path, kind)
    assert isinstance(config, BoundaryConfig if kind == "boundary" else TrainConfig)
    assert settings.name and settings.workers == 1
    assert settings.use_gpu is ("cpu" not in path.stem)  # tiny CPU configs say so; GPU ones ask for GPUs
    if settings.use_gpu and kind != "boundary":  # the seed's LoRA on a local Gemma3 folder
        assert isinstance(config, TrainConfig)
        assert (config.lora.enabled, config.lora.r, config.lora.alpha) == (True, 64, 128)
        assert config.model.startswith("/") and "gemma-3" in config.model
        assert (config.grpo.use_vllm, config.grpo.vllm_mode) == (True, "colocate") or kind == "sft"
    # what travels to the workers rebuilds the same config
    assert config_of(kind, config.to_dict()) == config


def test_overrides_and_unknown_ray_keys(tmp_path: Path) -> None:
    config, _ = load_job_config(REPO / "jobs/configs/sft_tiny_cpu.yaml", "sft", model="/m", data="/d")
    assert (config.model, config.data) == ("/m", "/d")
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: tiny\nray: {workers: 1, gpu: 1}\n")
    with pytest.raises(InputError, match=r"\[ray\]: unknown key\(s\) gpu"):
        load_job_config(bad, "sft")
    with pytest.raises(InputError, match="workers must be >= 1"):
        ray_settings({"workers": 0})
    with pytest.raises(InputError, match="unknown training kind"):
        load_job_config(bad, "dpo")
    with pytest.raises(InputError, match="one process"):
        check_kind("boundary", workers=2)


def test_gpu_config_on_a_cpu_cluster_fails_at_once() -> None:
    _, gpu = load_job_config(REPO / "jobs/configs/sft_gemma3_4b.yaml", "sft")
    with pytest.raises(InputError, match="need 1 GPU\\(s\\) but the Ray cluster has 0") as err:
        scaling_for(gpu, CPU_ONLY)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="need 4 CPUs but the Ray cluster has 2"):
        scaling_for(RaySettings(workers=2, cpus_per_worker=2), CPU_ONLY)
    gpu.check_resources = False  # autoscaling clusters: GPU nodes appear once asked for
    scaling, backend = scaling_for(gpu, CPU_ONLY)
    assert backend == "nccl" and scaling.use_gpu and scaling.num_workers == 1


def test_resources_follow_the_cluster() -> None:
    auto = RaySettings(workers=2, cpus_per_worker=1)  # use_gpu unset: GPUs when there are some
    scaling, backend = scaling_for(auto, CPU_ONLY)
    assert (backend, scaling.use_gpu, scaling.num_workers) == ("gloo", False, 2)
    assert scaling.resources_per_worker == {"CPU": 1}
    scaling, backend = scaling_for(auto, {"CPU": 16.0, "GPU": 2.0})
    assert (backend, scaling.use_gpu) == ("nccl", True)
    assert scaling.resources_per_worker == {"CPU": 1, "GPU": 1}


def test_storage_uri_keeps_uris_and_anchors_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert RaySettings(storage="s3://bucket/magseg").storage_uri() == "s3://bucket/magseg"
    assert RaySettings(storage="runs/ray").storage_uri() == str(tmp_path / "runs" / "ray")


def test_magseg_train_local_runs_without_ray(
    tiny_model: Path, tiny_samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from magseg.cli.train import command

    monkeypatch.chdir(tmp_path)
    args = ["sft", "--config", str(REPO / "jobs/configs/sft_tiny_cpu.yaml"), "--local"]
    result = CliRunner().invoke(command, [*args, "--model", str(tiny_model), "--data", str(tiny_samples)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "runs" / "sft"  # the config's sft.output_dir: no Ray storage involved
    assert f"model: {out}" in result.output
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 6
    assert not (tmp_path / "runs" / "ray").exists()


@pytest.mark.parametrize("path", MAP_CONFIGS, ids=lambda p: p.stem)
def test_map_configs_load(path: Path) -> None:
    from magseg.mapping.config import load_map_config

    config = load_map_config(path, bbox=[76.9, 29.6, 76.95, 29.65], stac="/catalog.parquet", out="/out")
    assert config.bbox == (76.9, 29.6, 76.95, 29.65) and config.out == "/out"
    assert (config.engine, config.gpus_per_actor > 0) == (
        ("vllm", True) if "gpu" in path.stem else ("hf", False)
    )
    assert config.tile_px % 64 == 0 and config.margin_px % 64 == 0


def test_map_config_rejects_unknown_keys(tmp_path: Path) -> None:
    from magseg.mapping.config import load_map_config

    path = tmp_path / "map.yaml"
    path.write_text("bbox: [1, 2, 3, 4]\nstac: x\nout: y\ntile_size: 5\n")
    with pytest.raises(InputError, match="unknown keys tile_size"):
        load_map_config(path)
