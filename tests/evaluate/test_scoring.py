"""Tests of the paired bootstrap of a mean-IoU difference between two methods scored on the same scenes."""

from __future__ import annotations

import numpy as np
import pytest

from magseg.classes import FIELD
from magseg.evaluate import MethodScores, iou_difference


def _scene(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two 16 x 16 fields side by side on a 32 x 48 scene, the third block background."""
    inst = np.zeros((32, 48), dtype=np.int32)
    inst[8:24, 0:16] = 1
    inst[8:24, 16:32] = 2 + seed  # ids differ per scene; scoring must not care
    return inst, np.where(inst > 0, FIELD, 0).astype(np.uint8)


def _scores(cut: list[int]) -> MethodScores:
    """Each scene's prediction: the truth with its fields' last ``cut[i]`` rows missing."""
    out = MethodScores()
    for i, rows in enumerate(cut):
        inst, cls = _scene(i)
        pred = inst.copy()
        if rows:
            pred[24 - rows : 24] = 0
        out.add(pred, np.where(pred > 0, FIELD, 0).astype(np.uint8), inst, cls)
    return out


def test_a_lead_in_every_scene_is_sure_and_equals_the_pooled_difference() -> None:
    exact, worse = _scores([0, 0, 0, 0]), _scores([4, 8, 2, 6])
    d = iou_difference(exact.scene_iou(), worse.scene_iou())
    pooled = exact.summary()["field"]["mean_iou"] - worse.summary()["field"]["mean_iou"]
    assert d["difference"] == pytest.approx(pooled) and d["difference"] > 0
    assert d["scenes"] == 4 and d["ahead"] == 1.0
    lo, hi = d["ci95"]
    assert 0 < lo <= hi < 1
    back = iou_difference(worse.scene_iou(), exact.scene_iou())  # the other way round: the mirror image
    assert back["difference"] == pytest.approx(-d["difference"]) and back["ahead"] == 0.0


def test_a_mixed_lead_has_an_interval_across_zero() -> None:
    a, b = _scores([0, 8, 0, 8, 0, 8]), _scores([8, 0, 8, 0, 8, 0])
    d = iou_difference(a.scene_iou(), b.scene_iou())
    assert d["difference"] == pytest.approx(0.0, abs=1e-12)
    lo, hi = d["ci95"]
    assert lo < 0 < hi and 0 < d["ahead"] < 1


def test_one_scene_has_no_interval_and_other_scenes_are_refused() -> None:
    d = iou_difference(_scores([0]).scene_iou(), _scores([4]).scene_iou())
    assert d["difference"] > 0 and d["ci95"] is None and d["ahead"] is None
    with pytest.raises(ValueError, match="same scenes"):
        iou_difference(_scores([0, 0]).scene_iou(), _scores([0]).scene_iou())
