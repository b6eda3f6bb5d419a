"""FTW-style greedy one-to-one matching at IoU > 0.5."""

from __future__ import annotations

import numpy as np

from magseg.metrics import greedy_match, precision_recall_f1


def test_greedy_takes_the_best_pair_first_and_matches_one_to_one() -> None:
    # Truth 0 overlaps pred 0 (0.6) and pred 1 (0.9); truth 1 overlaps pred 1 (0.7).
    truth = np.array([0, 0, 1])
    pred = np.array([0, 1, 1])
    iou = np.array([0.6, 0.9, 0.7])
    matched_t, matched_p = greedy_match(truth, pred, iou)
    # Best first: (0, 1) at 0.9; then (1, 1) is blocked (pred 1 used); (0, 0) blocked (truth 0 used).
    assert list(zip(matched_t.tolist(), matched_p.tolist(), strict=True)) == [(0, 1)]


def test_threshold_is_strict() -> None:
    matched_t, _ = greedy_match(np.array([0, 1]), np.array([0, 1]), np.array([0.5, 0.51]))
    assert matched_t.tolist() == [1]


def test_precision_recall_f1() -> None:
    # 2 TP of 4 predictions and 2 truths: P 0.5, R 1, F1 2*0.5/1.5 = 2/3.
    p, r, f = precision_recall_f1(2, 4, 2)
    assert (p, r) == (0.5, 1.0) and f is not None and abs(f - 2 / 3) < 1e-12
    assert precision_recall_f1(0, 0, 3) == (None, 0.0, None)
    assert precision_recall_f1(0, 2, 3) == (0.0, 0.0, 0.0)
