"""The demo end to end at a small size: the region job's outputs exist and the scores are against the truth."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pytest

from tests.conftest import run_magseg


def test_demo_maps_and_scores(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--scenes", "1", "--size", "384", "--seed", "3", "--no-progress"]
    status, stdout, stderr = run_magseg(monkeypatch, capsys, *args)
    assert status == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tiles"]["finished"] == summary["tiles"]["planned"] >= 1
    assert 0.0 < summary["mean_dice"] <= 1.0 and summary["decode_valid_rate"] > 0.9
    assert 0.0 <= summary["scores"]["field"]["mean_iou"] <= 1.0
    layer = gpd.read_file(out / "fields.gpkg")
    assert len(layer) == summary["polygons"] > 0
    assert (out / "map" / "map.html").is_file() and (out / "map" / "quicklook.png").is_file()
    assert "mean DICE" in stdout and "field" in stdout
    # the layer's confidence is checked against the truth too (the bundled model ships a calibrator)
    fields = summary["scores"]["confidence"]["fields"]
    assert fields["n"] > 0 and 0.0 <= fields["ece"] <= 1.0 and "field confidence: ECE" in stdout
    assert layer["magseg:confidence"].between(0, 1).all()
    # stitching artifacts: the layer is checked along the region job's own patch seams (the scenes lie on
    # its UTM grid), beside the cell lines inside patches
    seams = summary["scores"]["seams"]
    assert seams["seam_disagreement"] is not None and seams["seam_truth"] is not None
    assert -1.0 <= seams["seam_excess"] <= 1.0 and seams["cell_excess"] is not None
    assert "seam excess" in stdout and "patch seams" in stdout
    # the baselines go through the same region job as stand-in engines, each with its own layer
    for key in ("field_everywhere", "pixel_classifier", "truth_at_grid"):
        assert (out / "baselines" / key / "fields").is_dir()
        assert 0.0 <= summary["baselines"][key]["field"]["mean_iou"] <= 1.0
        # the model's fields mIoU lead over it: the pooled difference; one scene gives no interval
        lead = summary["baselines"][key]["fields_miou_model_minus"]
        gap = summary["scores"]["field"]["mean_iou"] - summary["baselines"][key]["field"]["mean_iou"]
        assert lead["difference"] == pytest.approx(gap) and lead["scenes"] == 1 and lead["ci95"] is None
        assert f"model minus {key.replace('_', ' ')}: {gap:+.3f} (one scene: no interval)" in stdout
    assert summary["baselines"]["field_everywhere"]["tree"]["dice"] == 0.0  # it writes field only
    assert "same region job" in stdout
