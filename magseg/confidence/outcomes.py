"""The event a confidence predicts: a predicted instance matched one-to-one to a truth instance of its class
at IoU >= 0.5 (FTW's object matching, magseg.metrics.ftw)."""

from __future__ import annotations

import numpy as np

from magseg.metrics.ftw import greedy_match

__all__ = ["matched_predictions"]


def matched_predictions(
    ids: np.ndarray,
    pred_instance: np.ndarray,
    pred_class: np.ndarray,
    true_instance: np.ndarray,
    true_class: np.ndarray,
    threshold: float = 0.5,
) -> np.ndarray:
    """For each predicted instance id in ``ids``: True when it matches a same-class truth instance at IoU
    >= ``threshold`` (greedy one-to-one, best IoU first)."""
    pred = np.asarray(pred_instance).astype(np.int64)
    # a truth instance is (class, id): ids may repeat across classes in a label raster
    t_cls = np.asarray(true_class).astype(np.int64)
    t_inst = np.asarray(true_instance).astype(np.int64)
    truth = np.where(t_inst > 0, t_cls * (int(t_inst.max(initial=0)) + 1) + t_inst, 0)
    both = (pred > 0) & (truth > 0) & (np.asarray(pred_class) == t_cls)
    n_t = int(truth.max(initial=0)) + 1
    codes, inter = np.unique(pred[both] * n_t + truth[both], return_counts=True)
    p_idx, t_idx = codes // n_t, codes % n_t
    p_area = np.bincount(pred.ravel(), minlength=int(pred.max(initial=0)) + 1)
    t_area = np.bincount(truth.ravel(), minlength=n_t)
    iou = inter / (p_area[p_idx] + t_area[t_idx] - inter)
    # IoU >= threshold: greedy_match keeps pairs strictly above, so nudge by a hair
    _, matched = greedy_match(t_idx, p_idx, iou, threshold - 1e-12)
    return np.isin(np.asarray(ids), matched)
