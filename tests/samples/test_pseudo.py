"""Tests of the woods pseudo-labels for sparse real labels (0 = not annotated)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from magseg.classes import BACKGROUND, FIELD, TREE
from magseg.samples import SampleConfig, scene_samples
from magseg.samples.pseudo import label_woods, woods_mask
from magseg.sources import LabelledScene


def _landscape(size: int = 192) -> np.ndarray:
    """(3, H, W) uint8: left third dark crop in one-pixel rows, middle third woods (dark crowns of a few
    metres), right third bright bare soil."""
    rng = np.random.default_rng(0)
    image = np.zeros((3, size, size), dtype=np.float32)
    third = size // 3
    rows = np.where(np.arange(size) % 2 == 0, 6.0, -6.0)[:, None]  # crop rows: a pixel apart
    image[:, :, :third] = np.array([60.0, 95.0, 55.0])[:, None, None] + rows
    crowns = ndimage.gaussian_filter(rng.normal(0, 1, (size, size)), 2.5)
    crowns = 25 * crowns / crowns.std()  # texture at the scale of a crown
    image[:, :, third : 2 * third] = (
        np.array([45.0, 80.0, 40.0])[:, None, None] + crowns[:, third : 2 * third]
    )
    image[:, :, 2 * third :] = np.array([170.0, 150.0, 120.0])[:, None, None]
    return np.clip(image, 0, 255).astype(np.uint8)


def test_woods_mask_finds_textured_dark_green_and_not_crop_rows() -> None:
    image = _landscape()
    woods = woods_mask(image)
    inner = slice(20, -20)
    assert woods[inner, 74:118].mean() > 0.9  # the woods' interior
    assert woods[inner, 10:54].mean() < 0.05  # crop rows vanish under the blur
    assert woods[inner, 138:182].mean() == 0.0  # bright soil is never woods


def test_label_woods_changes_only_unannotated_pixels() -> None:
    image = _landscape()
    semantic = np.zeros((192, 192), dtype=np.uint8)
    semantic[:, :64] = FIELD  # the crop is annotated
    semantic[:96, 64:128] = FIELD  # a wrongly annotated half of the woods stays field
    out = label_woods(image, semantic)
    assert np.array_equal(out[semantic == FIELD], semantic[semantic == FIELD])
    assert (out[120:170, 74:118] == TREE).mean() > 0.9  # unannotated woods
    assert not (out[:, 138:] == TREE).any()  # unannotated soil stays background
    assert set(np.unique(out).tolist()) <= {BACKGROUND, FIELD, TREE}


def test_label_woods_leaves_small_clumps_as_background() -> None:
    image = _landscape()
    semantic = np.full((192, 192), FIELD, dtype=np.uint8)
    semantic[90:100, 90:100] = BACKGROUND  # a 100 px hole in the annotation, inside the woods
    assert not (label_woods(image, semantic, min_area_px=400) == TREE).any()
    assert (label_woods(image, semantic, min_area_px=50)[92:98, 92:98] == TREE).all()


def test_woods_mask_rejects_a_grey_image() -> None:
    with pytest.raises(ValueError, match="RGB"):
        woods_mask(np.zeros((64, 64), dtype=np.uint8))


def test_samples_with_woods_teach_tree_over_unannotated_woods() -> None:
    from magseg.labels import LabelRaster

    image = _landscape()
    semantic = np.zeros((192, 192), dtype=np.uint8)
    semantic[:, :64] = FIELD
    labels = LabelRaster(semantic.astype(np.int32), semantic, transform=None, crs=None)  # type: ignore[arg-type]
    scene = LabelledScene("woods", image, labels)
    config = SampleConfig(patch=32, grid=4, per_scene=30, context_size=64)
    plain = scene_samples(scene, config, np.random.default_rng(1))
    woods = scene_samples(scene, dataclasses.replace(config, woods=True), np.random.default_rng(1))
    assert [(s.x0, s.y0) for s in plain] == [(s.x0, s.y0) for s in woods]  # same draws, other targets
    assert not any("tree" in s.solution for s in plain)
    assert any("tree" in s.solution for s in woods)
    for p, w in zip(plain, woods, strict=True):  # annotated field cells keep their class
        assert ("field" in p.solution) == ("field" in w.solution)
