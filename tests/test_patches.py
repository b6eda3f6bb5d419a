"""Tests of patch layout and stitching."""

from __future__ import annotations

import numpy as np

from magseg.codec import mask_to_grid
from magseg.patches import PatchLayout, crop_patch, stitch


def test_layout_covers_scene_without_overlap() -> None:
    layout = PatchLayout(height=100, width=130, patch=32)
    cover = np.zeros((layout.rows * 32, layout.cols * 32), dtype=int)
    for x0, y0 in layout.origins():
        cover[y0 : y0 + 32, x0 : x0 + 32] += 1
    assert (cover == 1).all() and len(layout) == 4 * 5


def test_stitch_of_full_resolution_grids_is_the_mask() -> None:
    mask = np.random.default_rng(0).integers(0, 6, size=(70, 90)).astype(np.uint8)
    layout = PatchLayout(70, 90, 32)
    grids = [crop_patch(mask, x0, y0, 32) for x0, y0 in layout.origins()]
    np.testing.assert_array_equal(stitch(grids, layout), mask)


def test_stitch_of_coarse_grids_is_blocky() -> None:
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[:, 20:] = 1
    layout = PatchLayout(64, 64, 32)
    grids = [mask_to_grid(crop_patch(mask, x0, y0, 32), 4) for x0, y0 in layout.origins()]
    out = stitch(grids, layout)
    assert out.shape == (64, 64)
    assert (out[:, :16] == 0).all() and (out[:, 24:] == 1).all()  # edge snapped to the 8 px cells


def test_window_origin_holds_every_patch() -> None:
    from magseg.patches import window_origin

    for height, width in [(1024, 1024), (1000, 700), (512, 512), (300, 300)]:
        for x0 in [*range(0, width - 63, 64), width - 64]:
            for y0 in [*range(0, height - 63, 64), height - 64]:
                wx, wy, w, h = window_origin(x0, y0, height, width, 512)
                assert (w, h) == (min(512, width), min(512, height))
                assert wx <= x0 and x0 + 64 <= wx + w <= width
                assert wy <= y0 and y0 + 64 <= wy + h <= height
    assert window_origin(600, 100, 1024, 1024, None) == (0, 0, 1024, 1024)


def test_window_origin_holds_offset_patches_given_their_side() -> None:
    from magseg.patches import window_origin

    for height, width, patch in [(1024, 1024, 64), (1000, 700, 64), (1024, 1024, 300)]:
        for x0 in range(0, width - patch + 1, 32):
            for y0 in range(0, height - patch + 1, 32):
                wx, wy, w, h = window_origin(x0, y0, height, width, 512, patch)
                assert (w, h) == (min(512, width), min(512, height))
                assert wx <= x0 and x0 + patch <= wx + w <= width
                assert wy <= y0 and y0 + patch <= wy + h <= height
    # a patch inside its usual window keeps it (the scene's shared context); one across its edge does not
    assert window_origin(448, 0, 1024, 1024, 512, 64)[0] == 0
    assert window_origin(480, 0, 1024, 1024, 512, 64)[0] == 256
    assert window_origin(480, 0, 1024, 1024, 512)[0] == 0
