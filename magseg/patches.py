"""Split a scene into disjoint p x p patches and stitch their decoded g x g grids back into one mask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from magseg.codec import grid_to_mask


@dataclass(frozen=True)
class PatchLayout:
    """Disjoint patches tiling a scene; the last row/column of patches is padded past the scene edge."""

    height: int
    width: int
    patch: int

    @property
    def rows(self) -> int:
        return -(-self.height // self.patch)

    @property
    def cols(self) -> int:
        return -(-self.width // self.patch)

    def origins(self) -> list[tuple[int, int]]:
        """Top-left (x0, y0) of every patch, row-major."""
        return [(c * self.patch, r * self.patch) for r in range(self.rows) for c in range(self.cols)]

    def __len__(self) -> int:
        return self.rows * self.cols


def crop_patch(array: np.ndarray, x0: int, y0: int, patch: int, fill: int = 0) -> np.ndarray:
    """The p x p window at (x0, y0) of a (..., H, W) array, padded with ``fill`` past the edge."""
    window = array[..., y0 : y0 + patch, x0 : x0 + patch]
    short_y, short_x = patch - window.shape[-2], patch - window.shape[-1]
    if short_y or short_x:
        pad = [(0, 0)] * (array.ndim - 2) + [(0, short_y), (0, short_x)]
        window = np.pad(window, pad, constant_values=fill)
    return window


def stitch(grids: Sequence[np.ndarray], layout: PatchLayout, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Expand each patch's g x g grid to p x p pixels and place it; returns the (H, W) mask (class ids,
    or any per-cell value such as a confidence with ``dtype`` float32)."""
    if len(grids) != len(layout):
        raise ValueError(f"got {len(grids)} grids for a layout of {len(layout)} patches")
    canvas = np.zeros((layout.rows * layout.patch, layout.cols * layout.patch), dtype=dtype)
    for grid, (x0, y0) in zip(grids, layout.origins(), strict=True):
        canvas[y0 : y0 + layout.patch, x0 : x0 + layout.patch] = grid_to_mask(grid, layout.patch)
    return canvas[: layout.height, : layout.width]


def window_origin(
    x0: int, y0: int, height: int, width: int, window: int | None, patch: int | None = None
) -> tuple[int, int, int, int]:
    """The scene window (wx, wy, w, h) a patch at (x0, y0) is predicted in.

    Scenes larger than ``window`` (the scene size a model was trained on) are seen as windows of that
    side at multiples of it, the last moved inward to end at the scene edge; a patch whose origin is a
    multiple of the patch side (itself dividing ``window``) lies wholly inside its window. A patch of
    side ``patch`` at any other offset (magseg.inference.rereads) that would cross that window's edge is
    seen in the window at the multiple of half the window below it, which holds it whole when ``patch`` <=
    ``window`` / 2 (else in one starting at the patch), as training's windows held their patches. ``None`` or a scene no larger than the
    window: the whole scene.
    """
    if window is None:
        return 0, 0, width, height
    w, h = min(window, width), min(window, height)
    return _window_start(x0, w, width, patch), _window_start(y0, h, height, patch), w, h


def _window_start(start: int, side: int, total: int, patch: int | None) -> int:
    """Where the window of ``side`` px holding a patch starting at ``start`` begins along one axis."""
    at = min((start // side) * side, total - side)
    if patch is None or start + patch <= at + side:
        return at
    step = max(side // 2, 1)
    at = min((start // step) * step, total - side)
    return at if start + patch <= at + side else min(start, total - side)
