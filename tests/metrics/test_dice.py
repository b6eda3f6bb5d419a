"""mean DICE (the GRPO reward): hand-computed values and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from magseg.metrics import mean_dice
from magseg.metrics.dice import dice_per_class


def test_both_empty_is_one() -> None:
    empty = np.zeros((4, 4), dtype=np.uint8)
    assert mean_dice(empty, empty) == 1.0


def test_perfect_is_one_and_disjoint_is_near_zero() -> None:
    a = np.array([[1, 1], [2, 0]])
    assert mean_dice(a, a) == pytest.approx(1.0)
    b = np.array([[2, 2], [1, 0]])
    # Field: |P|=2, |G|=1, overlap 0; tree: |P|=1, |G|=2, overlap 0 -> both eps/3.
    assert mean_dice(a, b) == pytest.approx(0.0, abs=1e-6)


def test_known_value() -> None:
    pred = np.array([[1, 1, 1, 0], [0, 0, 0, 0]])
    true = np.array([[1, 1, 0, 0], [2, 0, 0, 0]])
    # Field: 2*2 / (3 + 2) = 0.8; tree: only in the truth, 0 / (0 + 1) = 0 -> mean 0.4 (pond etc. absent).
    assert mean_dice(pred, true) == pytest.approx(0.4, abs=1e-6)
    # With background: |P0| = 5, |G0| = 5, overlap 4 -> 8/10 = 0.8; mean of (0.8, 0, 0.8) = 1.6/3.
    assert mean_dice(pred, true, include_background=True) == pytest.approx(1.6 / 3, abs=1e-6)


def test_predicting_a_class_absent_from_the_truth_is_penalised() -> None:
    true = np.zeros((2, 2), dtype=np.uint8)
    pred = true.copy()
    pred[0, 0] = 3
    # Cloud present only in the prediction: DICE ~0; it is the only class counted.
    assert mean_dice(pred, true) == pytest.approx(0.0, abs=1e-6)


def test_counts_and_validation() -> None:
    pred = np.array([0, 1, 1, 2], dtype=np.uint8)
    true = np.array([0, 1, 2, 2], dtype=np.uint8)
    counts = dice_per_class(pred, true, num_classes=3)
    assert counts.tolist() == [[1, 1, 1], [1, 2, 1], [1, 1, 2]]
    with pytest.raises(ValueError, match="class ids"):
        mean_dice(pred, np.array([0, 1, 6, 2]))
    with pytest.raises(ValueError, match="shape"):
        mean_dice(pred, true[:3])
