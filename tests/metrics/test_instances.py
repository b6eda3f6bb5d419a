"""Hand-computed cases of the seed's instance metrics on label rasters."""

from __future__ import annotations

import numpy as np
import pytest

from magseg.errors import InputError
from magseg.metrics import ClassScores, label_instances, score_instances
from tests.metrics.rasters import draw

FIELD, TREE = 1, 2


def test_perfect_prediction_scores_one_and_empty_classes_are_none() -> None:
    inst, cls = draw((6, 8), [(0, 2, 0, 3, 1, FIELD), (3, 6, 0, 3, 2, FIELD), (0, 4, 5, 8, 3, TREE)])
    scores = score_instances(inst, cls, inst, cls)
    assert list(scores) == ["field", "tree", "cloud", "pond", "well"]
    field = scores["field"]
    assert field == ClassScores(1.0, 1.0, 0.0, 0.0, 2, 2, 1.0, 1.0, 1.0)
    assert scores["tree"].n_truth == 1 and scores["tree"].mean_iou == 1.0
    # No cloud anywhere: every ratio is undefined, the counts are zero.
    assert scores["cloud"] == ClassScores(None, None, None, None, 0, 0, None, None, None)


def test_split_prediction_merges_to_iou_one_but_fails_one_to_one_matching() -> None:
    truth = draw((2, 4), [(0, 2, 0, 4, 1, FIELD)])  # 8 px
    pred = draw((2, 4), [(0, 2, 0, 2, 1, FIELD), (0, 2, 2, 4, 2, FIELD)])  # 4 px + 4 px
    s = score_instances(*pred, *truth)["field"]
    # merged prediction == truth -> IoU 1; both predictions overlap the truth -> no FN, no FP.
    assert (s.mean_iou, s.median_iou, s.fnr, s.fpr) == (1.0, 1.0, 0.0, 0.0)
    assert (s.n_truth, s.n_pred) == (1, 2)
    # Each half alone has IoU 4/8 = 0.5, not > 0.5: no FTW match, so P = R = F1 = 0.
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)


def test_one_prediction_over_two_truths_and_a_missed_truth() -> None:
    # Truth A: 2x3 = 6 px, truth B: 2x1 = 2 px, truth C: 2x2 = 4 px far away (missed).
    truth = draw((5, 5), [(0, 2, 0, 3, 1, FIELD), (0, 2, 4, 5, 2, FIELD), (3, 5, 0, 2, 3, FIELD)])
    pred = draw((5, 5), [(0, 2, 0, 5, 7, FIELD)])  # 2x5 = 10 px covering A, B and the gap column
    s = score_instances(*pred, *truth)["field"]
    # A: 6/10 = 0.6; B: 2/10 = 0.2; C: 0 -> mean 0.8/3, median 0.2; FNR 1/3; the prediction hits -> FPR 0.
    assert s.mean_iou == pytest.approx(0.8 / 3)
    assert s.median_iou == pytest.approx(0.2)
    assert s.fnr == pytest.approx(1 / 3)
    assert s.fpr == 0.0
    # FTW: the prediction matches A at IoU 0.6 > 0.5 -> TP 1; P = 1/1, R = 1/3, F1 = 2*(1/3)/(4/3) = 0.5.
    assert (s.precision, s.recall, s.f1) == pytest.approx((1.0, 1 / 3, 0.5))


def test_merged_union_counts_prediction_area_outside_the_truth() -> None:
    truth = draw((2, 4), [(0, 2, 0, 2, 1, FIELD)])  # 4 px
    # The truth is columns 0-1; p1 = columns 1-2 (4 px, 2 inside), p2 = column 0 (2 px, all inside).
    pred = draw((2, 4), [(0, 2, 1, 3, 1, FIELD), (0, 2, 0, 1, 2, FIELD)])
    s = score_instances(*pred, *truth)["field"]
    # merged = 6 px, 4 inside: IoU = 4 / (6 + 4 - 4) = 2/3.
    assert s.mean_iou == pytest.approx(2 / 3)


def test_false_positive_and_missed_instance() -> None:
    truth = draw((4, 8), [(0, 2, 0, 2, 1, FIELD), (2, 4, 6, 8, 2, FIELD)])
    # p1 = truth 1 exactly; p2 lies where there is no truth (a false positive); truth 2 is missed.
    pred = draw((4, 8), [(0, 2, 0, 2, 5, FIELD), (0, 2, 4, 6, 6, FIELD)])
    s = score_instances(*pred, *truth)["field"]
    # IoUs [1, 0] -> mean = median = 0.5; FNR 1/2; FPR 1/2; TP 1: P 1/2, R 1/2, F1 1/2.
    assert s == ClassScores(0.5, 0.5, 0.5, 0.5, 2, 2, 0.5, 0.5, 0.5)


def test_prediction_of_another_class_does_not_count() -> None:
    truth = draw((2, 2), [(0, 2, 0, 2, 1, FIELD)])
    pred = draw((2, 2), [(0, 2, 0, 2, 1, TREE)])
    scores = score_instances(*pred, *truth)
    # Field: truth missed (IoU 0, FNR 1), no field predictions (FPR undefined, precision undefined).
    assert scores["field"] == ClassScores(0.0, 0.0, 1.0, None, 1, 0, None, 0.0, None)
    # Tree: a prediction with no tree truth: FPR 1, no IoU, recall undefined.
    assert scores["tree"] == ClassScores(None, None, None, 1.0, 0, 1, 0.0, None, None)


def test_semantic_only_masks_use_eight_connected_components() -> None:
    cls = np.zeros((4, 4), dtype=np.uint8)
    cls[0, 0] = cls[1, 1] = FIELD  # diagonal neighbours: one 8-connected instance
    cls[3, 3] = FIELD  # a second instance
    labels, label_class = label_instances(np.zeros_like(cls, dtype=np.int32), cls)
    assert label_class.tolist() == [0, FIELD, FIELD]
    assert labels[0, 0] == labels[1, 1] != labels[3, 3]
    s = score_instances(np.zeros((4, 4), np.int32), cls, np.zeros((4, 4), np.int32), cls)["field"]
    assert (s.n_truth, s.n_pred, s.mean_iou) == (2, 2, 1.0)


def test_same_instance_id_in_two_classes_is_two_instances() -> None:
    inst = np.ones((2, 4), dtype=np.int32)
    cls = np.array([[1, 1, 2, 2], [1, 1, 2, 2]], dtype=np.uint8)
    labels, label_class = label_instances(inst, cls)
    assert sorted(label_class.tolist()) == [0, 1, 2]
    assert labels[0, 0] != labels[0, 3]


def test_classes_argument_limits_the_output_and_rejects_background() -> None:
    inst, cls = draw((2, 2), [(0, 2, 0, 2, 1, FIELD)])
    assert list(score_instances(inst, cls, inst, cls, classes=[2, 1])) == ["field", "tree"]
    with pytest.raises(ValueError, match="background"):
        score_instances(inst, cls, inst, cls, classes=[0])


def test_shape_mismatch_is_an_input_error() -> None:
    a = np.zeros((2, 2), np.int32)
    b = np.zeros((3, 2), np.int32)
    with pytest.raises(InputError, match="resample/crop"):
        score_instances(a, a, b, b)


def test_large_raster_with_a_thousand_instances() -> None:
    # 32x32 grid of 32x32 cells = 1024 instances on 1024x1024; prediction shifted by 4 px diagonally.
    y, x = np.mgrid[0:1024, 0:1024]
    truth = (y // 32) * 32 + x // 32 + 1
    pred = np.minimum((y + 4) // 32, 31) * 32 + np.minimum((x + 4) // 32, 31) + 1
    cls = np.ones_like(truth, dtype=np.uint8)
    s = score_instances(pred, cls, truth, cls)["field"]
    assert (s.n_truth, s.n_pred) == (1024, 1024)
    # An interior cell's merged prediction is its own cell plus the 4 neighbours overlapping it:
    # 4 cells of 1024 px -> IoU = 1024 / 4096 = 0.25, which is also the median.
    assert s.median_iou == pytest.approx(0.25)
    # Its best single prediction covers 28x28 = 784 px: IoU 784 / (2048 - 784) = 0.62 > 0.5 -> all match.
    assert s.recall == pytest.approx(1.0)
