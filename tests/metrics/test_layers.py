"""Polygon-layer scoring: agreement with the raster version, real unions, CRS handling, bad layers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from rasterio.features import shapes
from shapely.geometry import box, shape

from magseg.classes import CLASS_NAMES
from magseg.errors import CRSError, InputError
from magseg.metrics import score_instances, score_layers
from tests.metrics.rasters import draw

TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 2000000.0)
CRS = "EPSG:32643"


def polygonize(inst: np.ndarray, cls: np.ndarray) -> gpd.GeoDataFrame:
    """One row per (class, instance) of a label raster, dissolved from rasterio's polygons."""
    key = (cls.astype(np.int32) * 1000 + inst).astype(np.int32)
    parts = [(int(v), shape(g)) for g, v in shapes(key, mask=key > 0, transform=TRANSFORM)]
    frame = gpd.GeoDataFrame({"key": [k for k, _ in parts]}, geometry=[g for _, g in parts], crs=CRS)
    layer = frame.dissolve(by="key").reset_index()
    layer["class"] = [CLASS_NAMES[k // 1000] for k in layer["key"]]
    return layer


def test_layer_scores_equal_raster_scores_on_a_rasterizable_case() -> None:
    shape_ = (12, 12)
    truth = draw(
        shape_,
        [
            (0, 4, 0, 4, 1, 1),
            (0, 2, 4, 8, 1, 1),  # same id: an L-shaped field
            (5, 9, 0, 5, 2, 1),
            (0, 5, 9, 12, 3, 2),
            (9, 12, 6, 12, 4, 1),  # missed below
        ],
    )
    pred = draw(
        shape_,
        [
            (0, 3, 0, 5, 1, 1),
            (3, 5, 0, 3, 2, 1),  # second part of the L, a split
            (5, 9, 0, 2, 3, 1),
            (5, 9, 3, 6, 4, 1),  # the second field split in two with a gap
            (0, 4, 9, 12, 5, 2),
            (10, 12, 0, 3, 6, 1),  # a false positive
        ],
    )
    from_rasters = score_instances(*pred, *truth)
    from_layers = score_layers(polygonize(*pred), polygonize(*truth))
    assert from_rasters["field"].n_truth == 3 and from_rasters["field"].fpr == pytest.approx(1 / 5)
    for name, want in from_rasters.items():
        got = from_layers[name]
        for key, value in want.as_dict().items():
            assert got.as_dict()[key] == (value if value is None else pytest.approx(value)), (name, key)


def test_overlapping_predictions_are_unioned_not_summed() -> None:
    truth = gpd.GeoDataFrame({"class": ["field"]}, geometry=[box(0, 0, 4, 4)], crs=CRS)
    # Two predictions overlapping each other on 1 < x < 3: their union is the truth exactly.
    pred = gpd.GeoDataFrame(
        {"class": ["field", "field"]}, geometry=[box(0, 0, 3, 4), box(1, 0, 4, 4)], crs=CRS
    )
    s = score_layers(pred, truth)["field"]
    assert s.mean_iou == pytest.approx(1.0)
    # Each alone: 12 / 16 = 0.75 > 0.5, but one-to-one: one TP -> P 1/2, R 1.
    assert (s.precision, s.recall) == pytest.approx((0.5, 1.0))


def test_polygons_that_only_touch_do_not_overlap() -> None:
    truth = gpd.GeoDataFrame({"class": ["field"]}, geometry=[box(0, 0, 2, 2)], crs=CRS)
    pred = gpd.GeoDataFrame({"class": ["field"]}, geometry=[box(2, 0, 4, 2)], crs=CRS)
    s = score_layers(pred, truth)["field"]
    assert (s.mean_iou, s.fnr, s.fpr) == (0.0, 1.0, 1.0)


def test_prediction_is_reprojected_to_the_truth_crs() -> None:
    x0, y0 = 500000.0, 2000000.0
    truth = gpd.GeoDataFrame({"class": ["tree"]}, geometry=[box(x0, y0, x0 + 100, y0 + 100)], crs=CRS)
    pred = truth.to_crs("EPSG:4326")
    s = score_layers(pred, truth)["tree"]
    assert s.mean_iou == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(CRSError, match="no CRS"):
        score_layers(pred.set_crs(None, allow_override=True), truth)


def test_bad_class_columns_are_input_errors() -> None:
    good = gpd.GeoDataFrame({"class": ["field"]}, geometry=[box(0, 0, 1, 1)], crs=CRS)
    no_class = gpd.GeoDataFrame({"kind": ["field"]}, geometry=[box(0, 0, 1, 1)], crs=CRS)
    with pytest.raises(InputError, match="no `class` column"):
        score_layers(no_class, good)
    unknown = gpd.GeoDataFrame({"class": ["barn"]}, geometry=[box(0, 0, 1, 1)], crs=CRS)
    with pytest.raises(InputError, match="unknown class 'barn'"):
        score_layers(good, unknown)
