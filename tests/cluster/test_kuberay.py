"""The KubeRay RayJob manifests: the fields KubeRay needs, and resources that fit the job configs they run."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from magseg.train.ray_job import load_job_config

REPO = Path(__file__).resolve().parents[2]
TRAIN_KINDS = ("boundary", "grpo", "sft")
MANIFESTS = [REPO / "cluster" / "kuberay" / f"rayjob-{kind}.yaml" for kind in TRAIN_KINDS]
MAP_MANIFEST = REPO / "cluster" / "kuberay" / "rayjob-map.yaml"


def _cpus(value: str | int) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def _containers(group: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = group["template"]["spec"]["containers"]
    assert containers and all(c.get("name") and c.get("image") for c in containers)
    return containers


def test_there_is_one_manifest_per_job() -> None:
    found = sorted(p.stem for p in (REPO / "cluster" / "kuberay").glob("rayjob-*.yaml"))
    assert found == sorted([p.stem for p in MANIFESTS] + [MAP_MANIFEST.stem])


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.stem)
def test_rayjob_manifest(path: Path) -> None:
    job = yaml.safe_load(path.read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["metadata"]["name"].startswith("magseg-")
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] >= 0

    # the entrypoint runs this job's script on a config that exists here and loads for that kind
    kind = path.stem.removeprefix("rayjob-")
    argv = shlex.split(spec["entrypoint"])
    assert argv[:2] == ["python", f"jobs/{kind}.py"] and (REPO / argv[1]).is_file()
    config_path = REPO / argv[argv.index("--config") + 1]
    _, ray = load_job_config(config_path, kind)
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["working_dir"] and isinstance(runtime_env.get("env_vars", {}), dict)

    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"].startswith("2.") and cluster["authOptions"]["mode"] == "token"
    head = cluster["headGroupSpec"]
    assert all(isinstance(v, str) for v in head["rayStartParams"].values())  # KubeRay wants strings
    ports = {p["containerPort"] for p in _containers(head)[0]["ports"]}
    assert {6379, 8265} <= ports  # GCS and the dashboard / job API

    groups = cluster["workerGroupSpecs"]
    assert groups and len({g["groupName"] for g in groups}) == len(groups)
    gpus = cpus = 0.0
    for group in groups:
        assert isinstance(group["rayStartParams"], dict)
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        for container in _containers(group):
            limits, requests = container["resources"]["limits"], container["resources"]["requests"]
            # GPUs are extended resources: Kubernetes needs limits, and requests equal to them if given
            assert requests.get("nvidia.com/gpu", limits["nvidia.com/gpu"]) == limits["nvidia.com/gpu"]
            gpus += group["minReplicas"] * int(limits["nvidia.com/gpu"])
            cpus = max(cpus, _cpus(limits["cpu"]))
        tolerated = {t["key"] for t in group["template"]["spec"].get("tolerations", [])}
        assert "nvidia.com/gpu" in tolerated
    # the job config's workers fit the GPU workers present from the start (its resource check)
    assert ray.use_gpu and gpus >= ray.workers * ray.gpus_per_worker
    assert cpus >= ray.cpus_per_worker


def test_map_manifest_fits_its_config() -> None:
    from magseg.mapping.config import load_map_config

    job = yaml.safe_load(MAP_MANIFEST.read_text())
    assert job["kind"] == "RayJob" and job["spec"]["shutdownAfterJobFinishes"] is True
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:2] == ["python", "jobs/map_region.py"] and (REPO / argv[1]).is_file()
    config = load_map_config(REPO / argv[argv.index("--config") + 1])
    assert config.engine == "vllm" and config.gpus_per_actor == 1
    groups = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    gpu_groups = [g for g in groups if "nvidia.com/gpu" in _containers(g)[0]["resources"]["limits"]]
    gpus = sum(
        g["minReplicas"] * int(_containers(g)[0]["resources"]["limits"]["nvidia.com/gpu"]) for g in gpu_groups
    )
    assert gpus >= config.actors * config.gpus_per_actor  # every model actor has its GPU from the start
    cpus = max(_cpus(_containers(g)[0]["resources"]["limits"]["cpu"]) for g in gpu_groups)
    assert cpus >= config.cpus_per_actor
