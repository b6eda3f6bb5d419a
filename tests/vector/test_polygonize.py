"""polygonize(): one valid polygon per instance, areas in m², filters and simplification."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine

from magseg.errors import CRSError, InputError
from magseg.labels import LabelRaster
from magseg.vector import COLUMNS, polygonize
from tests.vector.conftest import PIXEL  # the fixtures' pixel size


def test_one_polygon_per_instance_with_pixel_areas(utm_labels: LabelRaster) -> None:
    layer = polygonize(utm_labels)
    assert list(layer.columns) == list(COLUMNS)
    assert layer.crs.to_epsg() == 32633
    assert layer["id"].tolist() == ["field-1", "field-2", "field-4", "tree-3"]
    assert layer["id"].is_unique
    for instance, area in zip(layer["instance"], layer["metrics:area"], strict=True):
        pixels = int((utm_labels.instance == instance).sum())
        assert area == pytest.approx(pixels * PIXEL**2)
    assert layer.geometry.is_valid.all()
    assert set(layer.geometry.geom_type) == {"Polygon"}
    field1 = layer.set_index("id").loc["field-1"]
    assert field1["metrics:perimeter"] == pytest.approx(2 * (15 + 25) * PIXEL + 4 * 2 * PIXEL)  # outer + hole


def test_geographic_raster_is_measured_in_utm(wgs84_labels: LabelRaster) -> None:
    layer = polygonize(wgs84_labels)
    assert layer.crs.to_epsg() == 4326  # geometry stays in the raster CRS
    # the local pixel area in m², from the grid: 1.1282e-5° of longitude x 8.9832e-6° of latitude at 37.23° N
    lat = np.radians(37.23)
    m2_per_px = (1.1282e-05 * 111_320 * np.cos(lat)) * (8.9832e-06 * 110_950)
    for instance, area in zip(layer["instance"], layer["metrics:area"], strict=True):
        pixels = int((wgs84_labels.instance == instance).sum())
        assert area == pytest.approx(pixels * m2_per_px, rel=0.01)


def test_no_crs_is_an_error(utm_labels: LabelRaster) -> None:
    utm_labels.crs = None
    with pytest.raises(CRSError, match="no CRS"):
        polygonize(utm_labels)


def test_min_and_max_area_filter(utm_labels: LabelRaster) -> None:
    areas = polygonize(utm_labels).set_index("id")["metrics:area"]
    kept = polygonize(utm_labels, min_area=100.0)
    assert "field-4" not in set(kept["id"]) and len(kept) == 3
    small = polygonize(utm_labels, max_area=float(areas["tree-3"]))
    assert set(small["id"]) == {"field-4", "tree-3"}


def test_classes_filter_accepts_names_and_ids(utm_labels: LabelRaster) -> None:
    assert set(polygonize(utm_labels, classes="tree")["class"]) == {"tree"}
    assert set(polygonize(utm_labels, classes=[1])["class"]) == {"field"}
    with pytest.raises(InputError):
        polygonize(utm_labels, classes="banana")


def test_fill_holes_below(utm_labels: LabelRaster) -> None:
    hole_m2 = 4 * PIXEL**2
    filled = polygonize(utm_labels, fill_holes_below=hole_m2 + 1).set_index("id")
    assert filled.loc["field-1", "metrics:area"] == pytest.approx(15 * 25 * PIXEL**2)
    assert len(filled.loc["field-1", "geometry"].interiors) == 0
    kept = polygonize(utm_labels, fill_holes_below=hole_m2 - 1).set_index("id")
    assert len(kept.loc["field-1", "geometry"].interiors) == 1


def test_simplify_reduces_vertices_and_keeps_the_coverage() -> None:
    # a staircase edge between two fields: many vertices before, few after
    inst = np.zeros((40, 40), dtype=np.int32)
    yy, xx = np.mgrid[:40, :40]
    inst[:] = np.where(xx > yy * 0.7 + 5, 2, 1)
    labels = LabelRaster(inst, np.ones_like(inst, dtype=np.uint8), Affine(1, 0, 0, 0, -1, 40), _utm())
    raw = polygonize(labels)
    simple = polygonize(labels, simplify=2.0)
    count = shapely.get_num_coordinates
    assert count(simple.geometry.to_numpy()).sum() < count(raw.geometry.to_numpy()).sum() / 2
    assert simple.geometry.is_valid.all()
    # shared edges simplified once: no gap, no overlap between the two fields
    a, b = simple.geometry.iloc[0], simple.geometry.iloc[1]
    assert a.intersection(b).area == pytest.approx(0, abs=1e-9)
    assert a.union(b).area == pytest.approx(40 * 40, rel=1e-6)
    assert simple["metrics:area"].sum() == pytest.approx(1600, rel=1e-6)


def test_split_instance_is_one_multipolygon() -> None:
    inst = np.zeros((10, 10), dtype=np.int32)
    inst[1:3, 1:3] = 7
    inst[6:9, 6:9] = 7
    labels = LabelRaster(inst, (inst > 0).astype(np.uint8), Affine(1, 0, 0, 0, -1, 10), _utm())
    layer = polygonize(labels)
    assert len(layer) == 1 and layer.geometry.iloc[0].geom_type == "MultiPolygon"
    assert layer["metrics:area"].iloc[0] == pytest.approx(13)


def test_empty_raster_gives_an_empty_layer(utm_labels: LabelRaster) -> None:
    utm_labels.instance[:] = 0
    layer = polygonize(utm_labels)
    assert layer.empty and list(layer.columns) == list(COLUMNS)


def _utm():
    from rasterio.crs import CRS

    return CRS.from_epsg(32633)
