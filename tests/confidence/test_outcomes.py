"""The event a confidence predicts: matched one-to-one, same class, IoU >= 0.5."""

from __future__ import annotations

import numpy as np

from magseg.classes import FIELD, TREE
from magseg.confidence import matched_predictions


def test_matched_at_half_iou_same_class_one_to_one() -> None:
    truth_inst = np.zeros((10, 20), dtype=np.int32)
    truth_inst[:, :10] = 1
    truth_inst[:, 10:] = 1  # the same id in another class is another instance
    truth_cls = np.full((10, 20), FIELD)
    truth_cls[:, 10:] = TREE
    pred = np.zeros((10, 20), dtype=np.int32)
    pred[:, :5] = 1  # IoU exactly 0.5 with the field: matched
    pred[:, 5:10] = 2  # also IoU 0.5 with the same field, which is taken: not matched
    pred[:, 10:14] = 3  # IoU 0.4 with the tree: not matched
    pred[:, 14:] = 5  # IoU 0.6 but predicted as field: wrong class, not matched
    pred_cls = np.full((10, 20), FIELD)
    pred_cls[:, 10:14] = TREE
    hit = matched_predictions(np.array([1, 2, 3, 5]), pred, pred_cls, truth_inst, truth_cls)
    assert hit.tolist().count(True) == 1
    assert hit[2:].tolist() == [False, False]
