"""`magseg polygonize`: writes a layer by extension; one-line errors with exit status 2 and nothing written."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine

from magseg.labels import LabelRaster, write_label_raster
from tests.conftest import run_magseg


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    return run_magseg(monkeypatch, capsys, "polygonize", *args)


@pytest.fixture
def labels_tif(tmp_path: Path, utm_labels: LabelRaster) -> Path:
    path = tmp_path / "labels.tif"
    write_label_raster(path, utm_labels)
    return path


def test_writes_each_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], labels_tif: Path, tmp_path: Path
) -> None:
    for name in ("out.parquet", "out.fgb", "out.gpkg"):
        status, out, _ = run(
            monkeypatch, capsys, str(labels_tif), "--out", str(tmp_path / name), "--min-area", "20"
        )
        assert status == 0 and "wrote 3 polygons" in out
        layer = (
            gpd.read_parquet(tmp_path / name) if name.endswith("parquet") else gpd.read_file(tmp_path / name)
        )
        assert sorted(layer["id"]) == ["field-1", "field-2", "tree-3"]


def test_classes_and_area_options(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], labels_tif: Path, tmp_path: Path
) -> None:
    out = tmp_path / "fields.fgb"
    status, _, _ = run(
        monkeypatch, capsys, str(labels_tif), "--out", str(out), "--classes", "field", "--max-area", "1000"
    )
    assert status == 0
    assert set(gpd.read_file(out)["id"]) == {"field-4"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "no such file"),
        ("no_crs", "no CRS"),
        ("empty", "no instances"),
        ("bad_ext", "unknown layer extension"),
        ("filtered", "no polygon left"),
    ],
)
def test_errors_are_one_line_exit_2_nothing_written(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    utm_labels: LabelRaster,
    setup: str,
    message: str,
) -> None:
    src = tmp_path / "labels.tif"
    out = tmp_path / "out" / ("fields.shp" if setup == "bad_ext" else "fields.parquet")
    extra: list[str] = []
    if setup == "no_crs":
        profile = {"driver": "GTiff", "width": 60, "height": 40, "count": 2, "dtype": "int32",
                   "transform": Affine(2, 0, 0, 0, -2, 80)}  # fmt: skip
        with rasterio.open(src, "w", **profile) as dst:
            dst.write(np.stack([utm_labels.instance, utm_labels.semantic.astype(np.int32)]))
    elif setup == "empty":
        utm_labels.instance[:] = 0
        write_label_raster(src, utm_labels)
    elif setup != "missing":
        write_label_raster(src, utm_labels)
    if setup == "filtered":
        extra = ["--min-area", "1e9"]
    status, _, err = run(monkeypatch, capsys, str(src), "--out", str(out), *extra)
    assert status == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and (not out.parent.exists() or not any(out.parent.iterdir()))
