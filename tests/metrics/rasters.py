"""Tiny label rasters drawn from rectangles, for the metrics tests."""

from __future__ import annotations

import numpy as np


def draw(
    shape: tuple[int, int], boxes: list[tuple[int, int, int, int, int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Instance and class rasters from (row0, row1, col0, col1, instance id, class id) boxes (ends exclusive)."""
    inst = np.zeros(shape, dtype=np.int32)
    cls = np.zeros(shape, dtype=np.uint8)
    for r0, r1, c0, c1, i, c in boxes:
        inst[r0:r1, c0:c1] = i
        cls[r0:r1, c0:c1] = c
    return inst, cls
