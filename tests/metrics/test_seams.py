"""Seam disagreement: class changes exactly on patch seams, beyond the truth's own."""

from __future__ import annotations

import numpy as np
import pytest

from magseg.inference import patch_origins
from magseg.metrics.seams import SeamCounts, cell_line_pairs, seam_pairs


def test_patchwise_classes_disagree_on_every_seam_pair() -> None:
    origins = patch_origins(8, 8, 4)  # 2 x 2 patches: one vertical, one horizontal seam
    checker = np.kron(np.array([[1, 2], [2, 1]]), np.ones((4, 4), dtype=np.uint8))
    assert seam_pairs(checker, origins) == (16, 16)
    assert seam_pairs(np.ones((8, 8)), origins) == (0, 16)


def test_an_edge_off_the_seams_does_not_count_and_the_truth_is_subtracted() -> None:
    origins = patch_origins(8, 8, 4)
    edge_inside = np.zeros((8, 8), dtype=np.uint8)
    edge_inside[:, 2:] = 1  # a class edge at x = 2, inside the left patches
    assert seam_pairs(edge_inside, origins) == (0, 16)
    truth = np.zeros((8, 8), dtype=np.uint8)
    truth[:, 4:] = 1  # the truth's own edge lies on the vertical seam: 8 pairs
    pred = np.kron(np.array([[0, 1], [1, 0]]), np.ones((4, 4), dtype=np.uint8))
    counts = SeamCounts()
    counts.add(pred, truth, origins)
    out = counts.summary()
    assert out["seam_disagreement"] == 1.0 and out["seam_truth"] == 0.5
    assert out["seam_excess"] == pytest.approx(0.5)
    assert SeamCounts().summary()["seam_excess"] is None


def test_cell_lines_inside_patches_are_counted_apart_from_the_seams() -> None:
    origins = patch_origins(8, 8, 4)  # 2 x 2 patches of 4 px, cells of 2 px: one cell line inside each
    assert cell_line_pairs(np.ones((8, 8)), origins, 4, 2) == (0, 32)  # x = 2, 6 and y = 2, 6
    blocky = np.zeros((8, 8), dtype=np.uint8)
    blocky[:, 2:4] = 1  # a class edge on the cell line x = 2 (and one on the seam x = 4)
    assert cell_line_pairs(blocky, origins, 4, 2) == (8, 32)
    assert seam_pairs(blocky, origins) == (8, 16)
    counts = SeamCounts()
    counts.add(blocky, np.zeros((8, 8), dtype=np.uint8), origins, patch=4, cell=2)
    out = counts.summary()
    assert out["seam_excess"] == pytest.approx(0.5) and out["cell_excess"] == pytest.approx(0.25)
    assert SeamCounts().summary()["cell_excess"] is None


def test_a_world_patch_grid_lands_on_a_raster_whose_origin_is_off_the_grid() -> None:
    from affine import Affine

    from magseg.metrics.seams import world_grid_origins

    # 0.5 m pixels from x = 101, y = 207: lines every 4 m at 0, 4, 8, ... fall on columns 6, 14, ...
    # (x = 104, 108) and rows 6, 14, ... (y = 204, 200)
    origins = world_grid_origins(Affine(0.5, 0, 101.0, 0, -0.5, 207.0), (20, 20), 4.0)
    assert origins is not None
    assert sorted({x for x, _ in origins}) == [-2, 6, 14]
    assert sorted({y for _, y in origins}) == [-2, 6, 14]
    truth = np.zeros((20, 20), dtype=np.uint8)
    pred = truth.copy()
    pred[:, 6:] = 1  # a class edge on the seam at column 6: 20 seam pairs
    assert seam_pairs(pred, origins) == (20, 80)  # lines x = 6, 14 and y = 6, 14
    assert cell_line_pairs(pred, origins, 8, 4) == (0, 120)  # cell lines at 2, 10, 18 (x and y), none wrapped
    shifted = world_grid_origins(Affine(0.5, 0, 101.0, 0, -0.5, 207.0), (20, 20), 4.0, offset=2.0)
    assert shifted is not None and sorted({x for x, _ in shifted}) == [-6, 2, 10, 18]
    assert world_grid_origins(Affine(0.3, 0, 101.0, 0, -0.3, 207.0), (20, 20), 4.0) is None  # off pixel edges
    assert world_grid_origins(Affine(0.5, 0.1, 101.0, 0, -0.5, 207.0), (20, 20), 4.0) is None  # rotated
