"""`ray job submit` of jobs/sft.py against a local `ray start --head` cluster: checkpoint, stop, resume on 2 workers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.jobs.conftest import REPO, Cluster

pytestmark = pytest.mark.slow

CONFIG = REPO / "jobs" / "configs" / "sft_tiny_cpu.yaml"
MAX_STEPS = 8


def _snapshot(run: Path) -> dict[str, Any] | None:
    """Ray Train's record of the run's reported checkpoints, once it names at least one."""
    try:
        snap = json.loads((run / "checkpoint_manager_snapshot.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or being rewritten
        return None
    return snap if snap.get("latest_checkpoint_result") else None


def test_stopped_job_resumes_from_its_last_checkpoint_on_two_workers(
    ray_cluster: Cluster, tiny_model: Path, tiny_samples: Path, tmp_path: Path
) -> None:
    """One worker runs until its first checkpoint and is stopped (`ray job stop`); the same job resubmitted
    with the same name and storage resumes after that checkpoint's step, on 2 gloo workers, and finishes.
    """
    values = yaml.safe_load(CONFIG.read_text())
    values["sft"] |= {"max_steps": MAX_STEPS, "save_steps": 2}
    config = tmp_path / "sft.yaml"
    config.write_text(yaml.safe_dump(values))
    storage, run = tmp_path / "storage", tmp_path / "storage" / "resume"
    args = ["--config", str(config), "--model", str(tiny_model), "--data", str(tiny_samples)]
    args += ["--storage", str(storage), "--name", "resume"]

    first = ray_cluster.submit("first", "sft.py", *args, "--workers", "1", wait=False)
    assert first.returncode == 0, first.stderr
    deadline = time.monotonic() + 240
    while _snapshot(run) is None:
        status = ray_cluster.status("first")
        assert status in ("PENDING", "RUNNING"), f"{status}: {ray_cluster.logs('first')[-3000:]}"
        assert time.monotonic() < deadline, ray_cluster.logs("first")[-3000:]
        time.sleep(0.2)
    assert ray_cluster.stop("first") == "STOPPED"
    snap = _snapshot(run)
    assert snap is not None
    done = snap["latest_checkpoint_result"]["metrics"]
    assert "final" not in done and 2 <= done["step"] < MAX_STEPS, "the first run must stop before its end"
    assert not (run / "model").exists()

    second = ray_cluster.submit("second", "sft.py", *args, "--workers", "2")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    model = run / "model"
    info = json.loads((model / "ray_run.json").read_text())
    assert info["workers"] == 2
    assert info["resumed_from_step"] == done["step"]
    assert info["first_step"] == done["step"] + 1  # the resumed run starts after the checkpoint's step
    assert info["steps"] == MAX_STEPS - done["step"]
    assert json.loads((model / "trainer_state.json").read_text())["global_step"] == MAX_STEPS
    assert (model / "model.safetensors").is_file() and (model / "train_config.yaml").is_file()
    assert "model: " + str(model) in second.stdout
    # Both ranks reported into one Ray checkpoint: rank 0 the model and optimizer, rank 1 its RNG state.
    hf = max(run.glob("checkpoint_*/checkpoint"))
    assert {p.name for p in hf.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    assert (hf / "optimizer.pt").is_file()
