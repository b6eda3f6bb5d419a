"""Fixtures of the mapping tests: a small synthetic region with its embedded STAC catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
import shapely
from shapely.geometry import shape

from magseg.stac import open_catalog
from magseg.synth import write_dataset


@pytest.fixture(scope="session")
def region(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """Four 256 px scenes (2 x 2, 256 m square) and a bbox well inside them."""
    root = write_dataset(tmp_path_factory.mktemp("region") / "synth", 4, 256, 0.5, seed=21)
    items = open_catalog(root).search()
    w, s, e, n = shapely.union_all([shape(it.geometry) for it in items]).bounds
    dx, dy = (e - w) * 0.2, (n - s) * 0.2
    return root, [w + dx, s + dy, e - 1.5 * dx, n - 1.5 * dy]
