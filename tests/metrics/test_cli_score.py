"""`magseg score`: JSON and table output on rasters and layers, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box

from magseg.labels import LabelRaster, write_label_raster
from tests.conftest import run_magseg
from tests.metrics.rasters import draw

TRANSFORM = Affine(0.5, 0.0, 710_000.0, 0.0, -0.5, 3_290_000.0)


def write(path: Path, inst: np.ndarray, cls: np.ndarray) -> Path:
    write_label_raster(path, LabelRaster(inst, cls, TRANSFORM, CRS.from_epsg(32643)))
    return path


@pytest.fixture
def rasters(tmp_path: Path) -> tuple[Path, Path]:
    """The false-positive/missed case: truth 2 fields, prediction hits one and adds one elsewhere."""
    truth = write(tmp_path / "truth.tif", *draw((4, 8), [(0, 2, 0, 2, 1, 1), (2, 4, 6, 8, 2, 1)]))
    pred = write(tmp_path / "pred.tif", *draw((4, 8), [(0, 2, 0, 2, 5, 1), (0, 2, 4, 6, 6, 1)]))
    return pred, truth


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    return run_magseg(monkeypatch, capsys, "score", *args)


def test_json_on_rasters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rasters: tuple[Path, Path]
) -> None:
    pred, truth = rasters
    status, out, _ = run(monkeypatch, capsys, "--pred", str(pred), "--truth", str(truth), "--json")
    assert status == 0
    doc = json.loads(out)  # exactly one JSON object
    assert list(doc) == ["field", "tree", "cloud", "pond", "well"]
    # IoUs [1, 0]; FNR 1/2; FPR 1/2; one TP of 2 predictions and 2 truths.
    assert doc["field"] == {
        "mean_iou": 0.5, "median_iou": 0.5, "fnr": 0.5, "fpr": 0.5, "n_truth": 2, "n_pred": 2,
        "precision": 0.5, "recall": 0.5, "f1": 0.5,
    }  # fmt: skip
    assert doc["tree"]["mean_iou"] is None and doc["tree"]["fpr"] is None
    assert '"mean_iou": null' in out


def test_table_and_class_selection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rasters: tuple[Path, Path]
) -> None:
    pred, truth = rasters
    status, out, _ = run(
        monkeypatch, capsys, "--pred", str(pred), "--truth", str(truth), "--classes", "field,tree"
    )
    assert status == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["class", "truth", "pred"]
    assert [line.split()[0] for line in lines[2:]] == ["field", "tree"]
    assert lines[2].split()[3] == "0.500"


@pytest.mark.parametrize("suffix", [".gpkg", ".parquet"])
def test_json_on_layers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str
) -> None:
    truth = gpd.GeoDataFrame({"class": ["pond"]}, geometry=[box(0, 0, 4, 4)], crs="EPSG:32643")
    pred = gpd.GeoDataFrame({"class": ["pond"]}, geometry=[box(0, 0, 4, 2)], crs="EPSG:32643")
    paths = [tmp_path / f"truth{suffix}", tmp_path / f"pred{suffix}"]
    for layer, path in zip([truth, pred], paths, strict=True):
        layer.to_parquet(path) if suffix == ".parquet" else layer.to_file(path)
    status, out, _ = run(monkeypatch, capsys, "--pred", str(paths[1]), "--truth", str(paths[0]), "--json")
    assert status == 0
    # The prediction is half the pond: IoU 8 / 16 = 0.5.
    assert json.loads(out)["pond"]["mean_iou"] == pytest.approx(0.5)


def test_errors_are_one_line_with_status_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    rasters: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    pred, truth = rasters
    small = write(tmp_path / "small.tif", *draw((3, 3), [(0, 1, 0, 1, 1, 1)]))
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"not a tiff")
    layer = tmp_path / "layer.gpkg"
    gpd.GeoDataFrame({"kind": ["field"]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32643").to_file(layer)
    cases = {
        "no such file": ["--pred", str(tmp_path / "missing.tif"), "--truth", str(truth)],
        "not a readable raster": ["--pred", str(garbage), "--truth", str(truth)],
        "resample/crop": ["--pred", str(small), "--truth", str(truth)],
        "two label rasters or two polygon layers": ["--pred", str(layer), "--truth", str(truth)],
        "unknown class 'barn'": ["--pred", str(pred), "--truth", str(truth), "--classes", "field,barn"],
        "no `class` column": ["--pred", str(layer), "--truth", str(layer)],
        "unknown extension": ["--pred", str(tmp_path / "x.csv"), "--truth", str(truth)],
    }
    for expected, args in cases.items():
        status, out, err = run(monkeypatch, capsys, *args)
        assert status == 2, expected
        assert out == ""
        assert err.startswith("error: ") and expected in err and err.count("\n") == 1, err


def test_installed_entry_point(rasters: tuple[Path, Path]) -> None:
    pred, truth = rasters
    proc = subprocess.run(
        [sys.executable, "-m", "magseg", "score", "--pred", str(pred), "--truth", str(truth), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["field"]["n_pred"] == 2
