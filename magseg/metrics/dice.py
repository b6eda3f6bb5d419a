"""Mean DICE over classes between two semantic masks: the GRPO reward, computed once per rollout."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from magseg.classes import CLASSES


def dice_per_class(
    pred_class: ArrayLike, true_class: ArrayLike, num_classes: int = len(CLASSES)
) -> np.ndarray:
    """Return a (num_classes, 3) array of |P_c ∩ G_c|, |P_c| and |G_c| pixel counts."""
    pred = np.asarray(pred_class)
    true = np.asarray(true_class)
    if pred.shape != true.shape:
        raise ValueError(f"masks differ in shape: prediction {pred.shape}, truth {true.shape}")
    k = int(num_classes)
    if pred.size:
        lo = min(int(pred.min()), int(true.min()))
        hi = max(int(pred.max()), int(true.max()))
        if lo < 0 or hi >= k:
            raise ValueError(f"class ids must lie in 0..{k - 1}; found {lo}..{hi}")
    # One bincount over the joint code pred * K + true gives the whole confusion matrix in one pass.
    code = pred.astype(np.intp, copy=False).ravel() * k + true.astype(np.intp, copy=False).ravel()
    confusion = np.bincount(code, minlength=k * k).reshape(k, k)
    return np.stack([np.diagonal(confusion), confusion.sum(axis=1), confusion.sum(axis=0)], axis=1)


def mean_dice(
    pred_class: ArrayLike,
    true_class: ArrayLike,
    num_classes: int = len(CLASSES),
    include_background: bool = False,
    eps: float = 1e-6,
) -> float:
    """Mean of DICE_c = (2|P_c ∩ G_c| + eps) / (|P_c| + |G_c| + eps) over classes in either mask.

    Background (class 0) is left out unless include_background; when no class counted is present in
    either mask the prediction is right (both empty) and the score is 1.0.
    """
    counts = dice_per_class(pred_class, true_class, num_classes).astype(np.float64)
    inter, n_pred, n_true = counts[:, 0], counts[:, 1], counts[:, 2]
    present = (n_pred + n_true) > 0
    if not include_background:
        present[0] = False
    if not present.any():
        return 1.0
    dice = (2.0 * inter[present] + eps) / (n_pred[present] + n_true[present] + eps)
    return float(dice.mean())
