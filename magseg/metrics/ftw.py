"""FTW-style object matching: greedy one-to-one pairing at IoU > 0.5, then precision, recall and F1."""

from __future__ import annotations

import numpy as np

#: FTW counts a prediction as a true positive when it matches a truth instance at IoU above this.
IOU_THRESHOLD = 0.5


def greedy_match(
    truth_idx: np.ndarray, pred_idx: np.ndarray, iou: np.ndarray, threshold: float = IOU_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Pair truth and predicted instances one-to-one, best IoU first, keeping pairs with IoU > threshold.

    The inputs list candidate pairs (truth index, predicted index, IoU); returns the matched truth and
    predicted indices, aligned.
    """
    keep = iou > threshold
    truth_idx, pred_idx, iou = truth_idx[keep], pred_idx[keep], iou[keep]
    # Stable sort on -IoU: ties resolve in input order, so the result is deterministic.
    order = np.argsort(-iou, kind="stable")
    used_truth: set[int] = set()
    used_pred: set[int] = set()
    out_truth: list[int] = []
    out_pred: list[int] = []
    # Only pairs above the threshold remain: at most a handful per instance, so a Python loop is cheap.
    for t, p in zip(truth_idx[order].tolist(), pred_idx[order].tolist(), strict=True):
        if t in used_truth or p in used_pred:
            continue
        used_truth.add(t)
        used_pred.add(p)
        out_truth.append(t)
        out_pred.append(p)
    return np.asarray(out_truth, dtype=np.int64), np.asarray(out_pred, dtype=np.int64)


def precision_recall_f1(
    true_positives: int, n_pred: int, n_truth: int
) -> tuple[float | None, float | None, float | None]:
    """Object precision (TP / predictions), recall (TP / truth) and their harmonic mean; None if undefined."""
    precision = true_positives / n_pred if n_pred else None
    recall = true_positives / n_truth if n_truth else None
    if precision is None or recall is None:
        return precision, recall, None
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1
