"""Patch-seam disagreement: how often a stitched mask changes class exactly where one patch meets the next.

Patches predicted independently jump at their seams (the seed's "stitching artifacts"). Along every seam
between patches, count the pixel pairs straddling it whose classes differ; the truth has such pairs too
(a field edge can fall on a seam), so the metric is the *excess*: the predicted share minus the truth's.

A mask written in cells (RRLE at ``patch // grid`` px) changes class on cell lines anyway, seam or not:
the same excess measured on the cell lines *inside* patches (``cell_excess``) is what any cell line shows,
so ``seam_excess - cell_excess`` is what the seams add on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine

__all__ = ["SeamCounts", "cell_line_pairs", "seam_pairs", "world_grid_origins"]


def _line_pairs(arr: np.ndarray, xs: Iterable[int], ys: Iterable[int]) -> tuple[int, int]:
    """(pairs whose classes differ, pairs) across the vertical lines left of ``xs`` and above ``ys``."""
    differ = total = 0
    for x in xs:
        differ += int((arr[:, x - 1] != arr[:, x]).sum())
        total += arr.shape[0]
    for y in ys:
        differ += int((arr[y - 1, :] != arr[y, :]).sum())
        total += arr.shape[1]
    return differ, total


def seam_pairs(mask: np.ndarray, origins: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """(pairs whose classes differ, pairs) across the seams of patches placed at ``origins`` (x0, y0)."""
    arr = np.asarray(mask)
    xs = sorted({x for x, _ in origins if x > 0})
    ys = sorted({y for _, y in origins if y > 0})
    return _line_pairs(arr, xs, ys)


def cell_line_pairs(
    mask: np.ndarray, origins: Sequence[tuple[int, int]], patch: int, cell: int
) -> tuple[int, int]:
    """(pairs whose classes differ, pairs) across the cell lines inside the patches (``cell`` px apart
    from each patch's origin), seams excluded: the reference a cell-written mask shows off the seams."""
    arr = np.asarray(mask)
    if cell <= 0 or patch <= cell:
        return 0, 0
    seams_x = {x for x, _ in origins}
    seams_y = {y for _, y in origins}
    steps = range(cell, patch, cell)
    xs = sorted({x + k for x in seams_x for k in steps if 0 < x + k < arr.shape[1]} - seams_x)
    ys = sorted({y + k for y in seams_y for k in steps if 0 < y + k < arr.shape[0]} - seams_y)
    return _line_pairs(arr, xs, ys)


def world_grid_origins(
    transform: Affine, shape: tuple[int, int], spacing: float, offset: float = 0.0
) -> list[tuple[int, int]] | None:
    """Where a patch grid laid in world coordinates falls on a raster: patch origins (x0, y0) in its pixels.

    The grid's lines lie at ``offset + k * spacing`` (CRS units) in x and y, as a region job's patches do
    in its UTM zone; the origins cover the raster (the first may start before pixel 0). None when the
    raster is not north-up or the lines do not fall on its pixel edges (another resolution or phase).
    """
    a, e = transform.a, transform.e
    if transform.b or transform.d or a <= 0 or e >= 0:
        return None
    step, col, row = spacing / a, (offset - transform.c) / a, (transform.f - offset) / -e
    if not all(abs(v - round(v)) < 1e-6 for v in (step, col, row)) or round(step) < 1:
        return None
    px = int(round(step))
    x0, y0 = int(round(col)) % px - px, int(round(row)) % px - px
    xs, ys = range(x0, shape[1], px), range(y0, shape[0], px)
    return [(x, y) for x in xs for y in ys]


@dataclass
class SeamCounts:
    """Seam pairs pooled over scenes, for a prediction and for the truth on the same seams; with ``cell``
    (px) set, the same counts on the cell lines inside the patches."""

    pred_differ: int = 0
    truth_differ: int = 0
    pairs: int = 0
    cell_pred_differ: int = 0
    cell_truth_differ: int = 0
    cell_pairs: int = 0

    def add(
        self,
        pred: np.ndarray,
        truth: np.ndarray,
        origins: Sequence[tuple[int, int]],
        patch: int = 0,
        cell: int = 0,
    ) -> None:
        differ, pairs = seam_pairs(pred, origins)
        self.pred_differ += differ
        self.truth_differ += seam_pairs(truth, origins)[0]
        self.pairs += pairs
        if cell > 0:
            differ, pairs = cell_line_pairs(pred, origins, patch, cell)
            self.cell_pred_differ += differ
            self.cell_truth_differ += cell_line_pairs(truth, origins, patch, cell)[0]
            self.cell_pairs += pairs

    def summary(self) -> dict[str, float | None]:
        """``seam_disagreement``: the predicted share; ``seam_excess``: that minus the truth's share;
        ``cell_excess``: the same excess on the cell lines inside patches (None when not counted)."""
        cell = (self.cell_pred_differ - self.cell_truth_differ) / self.cell_pairs if self.cell_pairs else None
        if self.pairs == 0:
            return {"seam_disagreement": None, "seam_truth": None, "seam_excess": None, "cell_excess": cell}
        pred, truth = self.pred_differ / self.pairs, self.truth_differ / self.pairs
        return {
            "seam_disagreement": pred,
            "seam_truth": truth,
            "seam_excess": pred - truth,
            "cell_excess": cell,
        }
