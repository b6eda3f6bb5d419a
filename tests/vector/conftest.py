"""Tiny label rasters for the vector tests, built in code."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from magseg.classes import FIELD, TREE
from magseg.labels import LabelRaster

PIXEL = 2.0  # metres


def scene() -> tuple[np.ndarray, np.ndarray]:
    """Two adjacent fields (one with a 2x2 hole), a tree clump and a tiny field."""
    inst = np.zeros((40, 60), dtype=np.int32)
    sem = np.zeros((40, 60), dtype=np.uint8)
    inst[5:20, 5:30] = 1
    inst[5:20, 30:55] = 2
    inst[10:12, 10:12] = 0  # a hole in field 1
    inst[25:35, 10:20] = 3
    inst[30:32, 40:42] = 4  # 4 px = 16 m²
    sem[inst > 0] = FIELD
    sem[inst == 3] = TREE
    return inst, sem


@pytest.fixture
def utm_labels() -> LabelRaster:
    inst, sem = scene()
    return LabelRaster(inst, sem, Affine(PIXEL, 0, 500000, 0, -PIXEL, 4000000), CRS.from_epsg(32633))


@pytest.fixture
def wgs84_labels() -> LabelRaster:
    """The same scene on a NAIP-like geographic grid (about 1 m pixels at 37° N)."""
    inst, sem = scene()
    return LabelRaster(inst, sem, Affine(1.1282e-05, 0, -86.9, 0, -8.9832e-06, 37.23), CRS.from_epsg(4326))
