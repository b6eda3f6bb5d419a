"""The demo end to end on one small synthetic scene: every output exists and the text round trip is exact."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
from click.testing import CliRunner

from magseg.cli import cli


def test_demo_writes_all_outputs(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        cli, ["demo", "--out", str(out), "--scenes", "1", "--size", "256", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenes"][0]["rrle_valid"] == 1.0  # oracle text decodes exactly
    assert summary["scenes"][0]["patches"] == 16
    layer = gpd.read_parquet(out / "fields.parquet")
    assert len(layer) == summary["polygons"] > 0 and layer.crs.to_string() in ("OGC:CRS84", "EPSG:4326")
    assert (out / "quicklook.png").stat().st_size > 10_000
    assert "fields mIoU coarse" in result.output
