"""`ray job submit` of jobs/map_region.py to a real local cluster: the driver joins it and maps the region."""

from __future__ import annotations

import json
from pathlib import Path

from tests.jobs.conftest import Cluster


def test_map_region_job(ray_cluster: Cluster, region: tuple[Path, list[float]], tmp_path: Path) -> None:
    root, bbox = region
    out = tmp_path / "out"
    args = ["--config", "jobs/configs/map_tiny_cpu.yaml", "--bbox", *map(str, bbox)]
    args += ["--stac", str(root), "--out", str(out)]
    done = ray_cluster.submit("map-region-1", "map_region.py", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "connecting to Ray at" in done.stdout + done.stderr  # it ran on the submitted-to cluster
    summary = json.loads((out / "run.json").read_text())
    assert summary["tiles"]["finished"] == summary["tiles"]["planned"] >= 1
    assert summary["polygons"] > 0 and summary["config"]["tile_px"] == 384
    assert any((out / "fields").glob("quadkey=*/part-*.parquet"))
