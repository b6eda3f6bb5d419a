"""Tests of the colour edge step: blocky class cells pulled back onto what the scene's colours show."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from magseg.classes import FIELD, POND, TREE
from magseg.metrics import mean_dice
from magseg.refine import refine
from magseg.refine.colour import colour_edges


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A light field with a dark round tree clump; the truth, and the clump as a model writes it: 8 px cells."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    truth = np.full((64, 64), FIELD, np.uint8)
    truth[(yy - 30) ** 2 + (xx - 30) ** 2 <= 7**2] = TREE
    image = np.where(truth == TREE, 40, 170)[None].repeat(3, 0).astype(np.float32)
    image += rng.normal(0, 6, image.shape)
    blocky = np.full((64, 64), FIELD, np.uint8)
    blocky[16:48, 16:48] = TREE  # whole cells over the clump: half the tree pixels are field
    return np.clip(image, 0, 255).astype(np.uint8), truth, blocky


def test_an_overshooting_clump_shrinks_onto_its_pixels() -> None:
    image, truth, blocky = _scene()
    out = colour_edges(blocky, image, 8, near=(TREE,), keep=(FIELD,))
    assert mean_dice(out, truth) > mean_dice(blocky, truth) + 0.2
    assert (out[blocky == FIELD] == FIELD).all()  # kept: field pixels never change
    assert not np.isin(out, [POND]).any()  # no class appears that was not within reach


def test_nothing_moves_without_a_band_or_an_edge() -> None:
    image, _, blocky = _scene()
    assert (colour_edges(blocky, image, 0) == blocky).all()
    flat = np.full((64, 64), FIELD, np.uint8)
    assert (colour_edges(flat, image, 8) == flat).all()


def test_refine_takes_the_colour_step_with_the_snap_and_can_leave_it_out() -> None:
    image, truth, blocky = _scene(1)
    default = refine(blocky, image, gsd=0.5, snap_px=8).semantic
    off = refine(blocky, image, gsd=0.5, snap_px=8, colour_px=0).semantic
    assert mean_dice(default, truth) > mean_dice(off, truth)
    assert (
        refine(blocky, gsd=0.5, snap_px=8).semantic
        == refine(blocky, gsd=0.5, snap_px=8, colour_px=0).semantic
    ).all()


def test_specks_left_by_pixel_choices_go_to_their_surroundings() -> None:
    """Noisy pixels inside the overshoot would stay tree one by one; only the clump's main piece survives."""
    image, truth, blocky = _scene(2)
    rng = np.random.default_rng(3)
    ys, xs = rng.integers(16, 48, 40), rng.integers(16, 48, 40)
    far = (ys - 30) ** 2 + (xs - 30) ** 2 > 10**2
    image[:, ys[far], xs[far]] = 40  # dark specks in the field part of the overshooting cells
    out = colour_edges(blocky, image, 8, near=(TREE,), keep=(FIELD,))
    _, pieces = ndimage.label(out == TREE)
    assert pieces == 1
    assert mean_dice(out, truth) > mean_dice(blocky, truth) + 0.15
    lone = np.full((64, 64), FIELD, np.uint8)
    lone[30:33, 30:33] = TREE  # a small object in one piece is kept whatever its size
    assert (colour_edges(lone, image, 8, near=(TREE,), keep=(FIELD,)) == TREE).sum() >= 1
