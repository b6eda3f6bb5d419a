"""Pseudo-labels for sparse real labels: unannotated woods become tree.

Real field datasets label fields only (naip-fields: 0 = "not annotated"), so a model trained on their
patches learns field next to "nothing" and writes field over woods, where its field instances then bridge
neighbouring fields. Woods are easy to tell from crops at 1 m: dark, green and textured at the scale of a
crown (3-10 m), while crop rows (about one pixel apart) vanish under a slight blur. ``label_woods`` marks
such unannotated pixels as tree; annotated pixels never change, so no labelled field is lost.

The defaults were set by eye on the NAIP training tiles (1 m RGB); on other sensors or resolutions check
``woods_mask`` against a few tiles before training with it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from magseg.classes import BACKGROUND, TREE

__all__ = ["label_woods", "woods_mask"]


def woods_mask(
    image: np.ndarray,
    *,
    sigma: float = 1.5,
    window: int = 9,
    min_texture: float = 2.0,
    max_brightness: float = 105.0,
    open_px: int = 4,
) -> np.ndarray:
    """Pixels of a (3, H, W) uint8 RGB image that look like woods: a boolean (H, W) mask.

    Texture is the local standard deviation (``window`` px) of the brightness blurred by ``sigma`` px, so
    that crop rows do not count; woods are textured (> ``min_texture``), dark (mean brightness below
    ``max_brightness``) and greener than red and blue together. An opening and a closing of ``open_px``
    drop hedgerow specks and fill gaps between crowns.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 3 or img.shape[0] < 3:
        raise ValueError(f"need a (3, H, W) RGB image, got shape {img.shape}")
    lum = ndimage.gaussian_filter(img[:3].mean(axis=0), sigma)
    mean = ndimage.uniform_filter(lum, window)
    texture = np.sqrt(np.maximum(ndimage.uniform_filter(lum * lum, window) - mean * mean, 0.0))
    green = ndimage.uniform_filter(2 * img[1] - img[0] - img[2], window)
    woods = (texture > min_texture) & (mean < max_brightness) & (green > 0)
    if open_px > 0:
        woods = ndimage.binary_opening(woods, iterations=open_px)
        woods = ndimage.binary_closing(woods, iterations=open_px)
    return woods


def label_woods(image: np.ndarray, semantic: np.ndarray, *, min_area_px: int = 400) -> np.ndarray:
    """The class mask with its unannotated (background) woods pixels labelled tree.

    Only pixels of class 0 change, and only in woods patches of at least ``min_area_px`` pixels (a clump
    of a few trees or a field's textured margin stays background).
    """
    sem = np.asarray(semantic)
    woods = woods_mask(image) & (sem == BACKGROUND)
    labels, n = ndimage.label(woods)
    if n:
        big = np.bincount(labels.ravel()) >= min_area_px
        big[0] = False
        woods = big[labels]
    out = sem.copy()
    out[woods] = TREE
    return out
