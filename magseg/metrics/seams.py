"""Patch-seam disagreement: how often a stitched mask changes class exactly where one patch meets the next.

Patches predicted independently jump at their seams (the seed's "stitching artifacts"). Along every seam
between patches, count the pixel pairs straddling it whose classes differ; the truth has such pairs too
(a field edge can fall on a seam), so the metric is the *excess*: the predicted share minus the truth's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["SeamCounts", "seam_pairs"]


def seam_pairs(mask: np.ndarray, origins: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """(pairs whose classes differ, pairs) across the seams of patches placed at ``origins`` (x0, y0)."""
    arr = np.asarray(mask)
    xs = sorted({x for x, _ in origins if x > 0})
    ys = sorted({y for _, y in origins if y > 0})
    differ = total = 0
    for x in xs:
        differ += int((arr[:, x - 1] != arr[:, x]).sum())
        total += arr.shape[0]
    for y in ys:
        differ += int((arr[y - 1, :] != arr[y, :]).sum())
        total += arr.shape[1]
    return differ, total


@dataclass
class SeamCounts:
    """Seam pairs pooled over scenes, for a prediction and for the truth on the same seams."""

    pred_differ: int = 0
    truth_differ: int = 0
    pairs: int = 0

    def add(self, pred: np.ndarray, truth: np.ndarray, origins: Sequence[tuple[int, int]]) -> None:
        differ, pairs = seam_pairs(pred, origins)
        self.pred_differ += differ
        self.truth_differ += seam_pairs(truth, origins)[0]
        self.pairs += pairs

    def summary(self) -> dict[str, float | None]:
        """``seam_disagreement``: the predicted share; ``seam_excess``: that minus the truth's share."""
        if self.pairs == 0:
            return {"seam_disagreement": None, "seam_truth": None, "seam_excess": None}
        pred, truth = self.pred_differ / self.pairs, self.truth_differ / self.pairs
        return {"seam_disagreement": pred, "seam_truth": truth, "seam_excess": pred - truth}
