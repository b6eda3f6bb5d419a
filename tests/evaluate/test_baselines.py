"""Tests of the baselines and of pooled scoring."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from magseg.errors import InputError
from magseg.evaluate import (
    MethodScores,
    PixelClassifier,
    field_everywhere,
    pooled_scores,
    scene_gsd,
    synthetic_training_scenes,
    to_patch_grid,
)
from magseg.evaluate.scoring import ScenePair
from magseg.inference import ModelFormat
from magseg.labels import LabelRaster
from magseg.metrics import mean_dice


def test_pixel_classifier_beats_field_everywhere_on_synthetic_scenes() -> None:
    train = synthetic_training_scenes(8, 256, 0.5, seed=1)
    held_out = synthetic_training_scenes(4, 256, 0.5, seed=42)
    clf = PixelClassifier().fit(train)
    assert set(clf.classes.tolist()) >= {0, 1, 2}
    config = ModelFormat(patch=64, grid=8)
    model = [mean_dice(to_patch_grid(clf.predict(s.image), config), s.labels.semantic) for s in held_out]
    none = [mean_dice(field_everywhere(s.shape), s.labels.semantic) for s in held_out]
    assert np.mean(model) > np.mean(none) + 0.1


def test_to_patch_grid_is_the_cell_majority() -> None:
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :22] = 2  # cells of 8 px: columns 0-1 all tree, column 2 (16..23) mostly tree
    mask[:2, :] = 4  # two rows of pond: a minority in the top cells
    out = to_patch_grid(mask, ModelFormat(patch=32, grid=4))
    assert out.shape == (64, 64)
    assert (out[:, :24] == 2).all() and (out[:, 24:] == 0).all()


def test_to_patch_grid_follows_the_model_grid_rule() -> None:
    mask = np.ones((64, 64), np.uint8)
    mask[10:15, 10:15] = 5  # a 5 x 5 px well inside the cell (8..15, 8..15)
    assert (to_patch_grid(mask, ModelFormat(patch=32, grid=4)) == 1).all()  # lost to a majority vote
    kept = to_patch_grid(mask, ModelFormat(patch=32, grid=4, grid_method="weighted"))
    assert (kept[8:16, 8:16] == 5).all() and int((kept == 5).sum()) == 64
    with pytest.raises(InputError, match="grid method"):
        ModelFormat(grid_method="biggest").check()


def test_scene_gsd_projected_and_geographic() -> None:
    utm = LabelRaster(np.zeros((4, 4), np.int32), np.zeros((4, 4), np.uint8),
                      Affine(0.5, 0, 7e5, 0, -0.5, 3e6), rasterio.crs.CRS.from_epsg(32643))  # fmt: skip
    assert abs(scene_gsd(utm) - 0.5) < 1e-9
    geo = LabelRaster(utm.instance, utm.semantic, Affine(1e-5, 0, -90, 0, -1e-5, 40.0),
                      rasterio.crs.CRS.from_epsg(4326))  # fmt: skip
    assert 0.8 < scene_gsd(geo) < 1.0  # 1e-5 degree is ~0.85 m east and ~1.1 m north at 40 N
    assert scene_gsd(LabelRaster(utm.instance, utm.semantic, utm.transform, None)) == 1.0


def test_pooled_scores_keep_instances_of_each_scene_apart() -> None:
    inst = np.zeros((20, 20), np.int32)
    inst[2:8, 2:8] = 1
    inst[10:18, 10:18] = 2
    sem = (inst > 0).astype(np.uint8)
    wrong = np.zeros_like(inst)
    wrong[2:8, 2:5] = 1  # half of field 1, field 2 missed
    scores = pooled_scores(
        [ScenePair(inst, sem, inst, sem), ScenePair(wrong, (wrong > 0).astype(np.uint8), inst, sem)]
    )
    field = scores["field"]
    assert field.n_truth == 4 and field.n_pred == 3  # same ids in two scenes stay four instances
    assert field.mean_iou == (1 + 1 + 0.5 + 0) / 4 and field.fnr == 0.25
    acc = MethodScores()
    acc.add(inst, sem, inst, sem)
    acc.add(wrong, (wrong > 0).astype(np.uint8), inst, sem)
    summary = acc.summary()
    assert summary["field"]["n_truth"] == 4
    assert abs(summary["mean_dice"] - (1 + mean_dice(wrong > 0, sem)) / 2) < 1e-9


def test_pixel_classifier_saved_and_loaded_predicts_the_same(tmp_path) -> None:
    scenes = synthetic_training_scenes(2, 128, 0.5, seed=3)
    clf = PixelClassifier().fit(scenes)
    clf.save(tmp_path / "clf.npz")
    loaded = PixelClassifier.load(tmp_path / "clf.npz")
    assert np.array_equal(loaded.predict(scenes[0].image), clf.predict(scenes[0].image))
    with pytest.raises(ValueError, match="fit"):
        PixelClassifier().save(tmp_path / "unfitted.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a classifier")
    with pytest.raises(InputError, match="not a pixel classifier"):
        PixelClassifier.load(tmp_path / "bad.npz")
