"""Per-class score record and its assembly from instance overlaps (shared by raster and layer scoring)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from magseg.metrics.ftw import greedy_match, precision_recall_f1


@dataclass(frozen=True)
class ClassScores:
    """The seed's instance metrics for one class, plus FTW-style object precision/recall.

    Fractions are 0-1; None where undefined (no truth instances -> no IoU or FNR; no predictions -> no FPR).
    """

    mean_iou: float | None
    median_iou: float | None
    fnr: float | None
    fpr: float | None
    n_truth: int
    n_pred: int
    precision: float | None
    recall: float | None
    f1: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        """The scores as a plain dict (JSON-ready: None becomes null)."""
        return asdict(self)


def assemble_scores(
    truth_iou: np.ndarray,
    truth_hit: np.ndarray,
    pred_hit: np.ndarray,
    pair_truth: np.ndarray,
    pair_pred: np.ndarray,
    pair_iou: np.ndarray,
) -> ClassScores:
    """Build one class's scores.

    truth_iou[i]: IoU of truth instance i with the merge of its overlapping predictions (0 if none);
    truth_hit / pred_hit: whether each truth / predicted instance overlaps one of the other side;
    pair_*: every overlapping (truth, prediction) pair with its own IoU, for the one-to-one matching.
    """
    n_truth, n_pred = int(truth_iou.size), int(pred_hit.size)
    mean_iou = float(np.mean(truth_iou)) if n_truth else None
    median_iou = float(np.median(truth_iou)) if n_truth else None
    fnr = float(np.count_nonzero(~truth_hit)) / n_truth if n_truth else None
    fpr = float(np.count_nonzero(~pred_hit)) / n_pred if n_pred else None
    matched_truth, _ = greedy_match(pair_truth, pair_pred, pair_iou)
    precision, recall, f1 = precision_recall_f1(int(matched_truth.size), n_pred, n_truth)
    return ClassScores(mean_iou, median_iou, fnr, fpr, n_truth, n_pred, precision, recall, f1)
