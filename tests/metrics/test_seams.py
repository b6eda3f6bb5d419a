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
