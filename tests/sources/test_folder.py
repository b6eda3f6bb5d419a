"""Tests of labelled-scene discovery and loading across the supported folder layouts."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from magseg.errors import InputError
from magseg.sources import list_scenes
from tests.conftest import make_two_field_scene, write_rgb


def test_images_and_label_rasters(labelled_folder: Path) -> None:
    refs = list_scenes(labelled_folder)
    assert [r.scene_id for r in refs] == ["scene0", "scene1"]
    scene = refs[0].load()
    _, expected = make_two_field_scene(seed=0)
    assert scene.image.shape == (3, 128, 128) and scene.image.dtype == np.uint8
    np.testing.assert_array_equal(scene.labels.semantic, expected.semantic)
    np.testing.assert_array_equal(scene.labels.instance, expected.instance)


def test_vector_labels_are_rasterised(tmp_path: Path) -> None:
    image, labels = make_two_field_scene()
    (tmp_path / "images").mkdir()
    write_rgb(tmp_path / "images" / "a.tif", image, labels)
    x0, y0 = labels.transform.c, labels.transform.f
    # a field 10 m x 10 m (20 x 20 px) and a well inside it: the well must stay visible on top
    layer = gpd.GeoDataFrame(
        {"class": ["field", "well"]},
        geometry=[box(x0 + 5, y0 - 15, x0 + 15, y0 - 5), box(x0 + 9, y0 - 11, x0 + 11, y0 - 9)],
        crs=labels.crs,
    )
    layer.to_file(tmp_path / "labels.gpkg")
    scene = list_scenes(tmp_path)[0].load()
    assert (scene.labels.semantic == 1).sum() == 400 - 16
    assert (scene.labels.semantic == 5).sum() == 16
    assert len(np.unique(scene.labels.instance)) == 3


def test_naip_layout_reads_instance_masks(naip_folder: Path) -> None:
    refs = list_scenes(naip_folder)
    assert len(refs) == 3
    scene = refs[0].load()
    assert scene.image.shape == (3, 1024, 1024)
    assert set(np.unique(scene.labels.semantic)) <= {0, 1}
    assert scene.labels.instance.max() > 10


@pytest.mark.parametrize("make", ["missing", "nolabels", "wrongshape"])
def test_bad_folders_raise_one_line_errors(tmp_path: Path, make: str) -> None:
    if make == "nolabels":
        (tmp_path / "images").mkdir()
    if make == "wrongshape":
        image, labels = make_two_field_scene()
        (tmp_path / "images").mkdir()
        (tmp_path / "masks").mkdir()
        write_rgb(tmp_path / "images" / "a.tif", image, labels)
        small, small_labels = make_two_field_scene(size=64)
        from magseg.labels import write_label_raster

        write_label_raster(tmp_path / "masks" / "a.tif", small_labels)
    root = tmp_path / "nope" if make == "missing" else tmp_path
    with pytest.raises(InputError) as info:
        list_scenes(root)[0].load()
    assert "\n" not in str(info.value)
