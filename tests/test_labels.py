"""Tests of label-raster helpers."""

from __future__ import annotations

import pytest
from affine import Affine
from rasterio.crs import CRS

from magseg.labels import ground_sample_distance


def test_gsd_of_projected_grid_is_its_pixel_size() -> None:
    assert ground_sample_distance(Affine(0.5, 0, 7e5, 0, -0.5, 3.3e6), CRS.from_epsg(32643)) == 0.5


def test_gsd_of_geographic_grid_is_in_metres() -> None:
    # 1 m NAIP-like pixels in degrees at 40°N: ~9e-6 degrees of latitude per metre
    gsd = ground_sample_distance(Affine(1.17e-5, 0, -89.9, 0, -0.9e-5, 40.2), CRS.from_epsg(4326))
    assert gsd == pytest.approx(1.0, rel=0.1)


def test_rasterize_layer_keeps_small_objects_on_top() -> None:
    import geopandas as gpd
    import shapely

    from magseg.classes import class_id
    from magseg.labels import rasterize_layer

    layer = gpd.GeoDataFrame(
        {"class": ["well", "field"]},
        geometry=[shapely.box(4, 4, 6, 6), shapely.box(0, 0, 10, 10)],
        crs="EPSG:32643",
    )
    out = rasterize_layer(layer, (10, 10), Affine(1, 0, 0, 0, -1, 10), CRS.from_epsg(32643))
    assert out.semantic[5, 5] == class_id("well") and out.semantic[0, 0] == class_id("field")
    assert (out.instance[5, 5], out.instance[0, 0]) == (1, 2)  # instance id i + 1 is row i
    assert out.instance[5, 5] != out.instance[0, 0] and (out.instance > 0).all()
    empty = rasterize_layer(layer.iloc[:0], (4, 4), Affine(1, 0, 0, 0, -1, 4), CRS.from_epsg(32643))
    assert not empty.instance.any() and not empty.semantic.any()
