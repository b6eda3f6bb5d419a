"""Clouds: soft blobs with a crisp label (where the ground is mostly hidden) and an optional shadow."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from magseg.synth.render import shift, smooth_noise


def _drop_small(mask: np.ndarray, min_px: float) -> np.ndarray:
    """``mask`` without components (and holes) smaller than ``min_px`` pixels."""
    comp, n = ndimage.label(mask)
    if n:
        keep = np.bincount(comp.ravel()) >= min_px
        keep[0] = False
        mask = keep[comp]
    comp, n = ndimage.label(~mask)
    if n:
        hole = np.bincount(comp.ravel()) < min_px
        hole[0] = False
        mask = mask | hole[comp]
    return mask


def cloud_field(
    rng: np.random.Generator, size: int, gsd: float, cover: float
) -> tuple[np.ndarray, np.ndarray]:
    """Opacity (H, W) in 0..1 and the cloud label mask (opacity >= 0.5) covering about ``cover`` of the scene."""
    px = 1.0 / gsd
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    field = 0.35 * smooth_noise(rng, size, 30 * px) + 0.15 * smooth_noise(rng, size, 8 * px)
    for _ in range(int(rng.integers(1, 5))):
        cy, cx = rng.uniform(-0.2, 1.2, 2) * size
        sigma = rng.uniform(15, 60) * px
        field += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)).astype(np.float32)
    threshold = float(np.quantile(field, 1.0 - cover))
    mask = _drop_small(field >= threshold, 150 * px * px)
    # opacity from the signed distance to the label's edge: 0.5 on the edge, fading over a few metres
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    soft = rng.uniform(3, 9) * px
    alpha = np.clip(0.5 + (inside - outside) / soft, 0, 1).astype(np.float32) ** 0.7
    alpha *= (0.95 + 0.05 * smooth_noise(rng, size, 6 * px)).clip(0.85, 1.0)
    alpha[mask] = np.maximum(alpha[mask], 0.55)
    return alpha, mask


def composite(rng: np.random.Generator, img: np.ndarray, alpha: np.ndarray, gsd: float) -> np.ndarray:
    """Darken the cloud's shadow (displaced away from the sun) and lay the cloud over the ground."""
    px = 1.0 / gsd
    if rng.random() < 0.75:
        a = rng.uniform(0, 2 * math.pi)
        d = rng.uniform(15, 45) * px
        shadow = shift(alpha, int(d * math.sin(a)), int(d * math.cos(a)))
        img = img * (1 - 0.45 * shadow)[..., None]
    size = alpha.shape[0]
    white = np.float32(rng.uniform(225, 245)) * (0.94 + 0.06 * smooth_noise(rng, size, 10 * px))
    return img * (1 - alpha)[..., None] + (white * alpha)[..., None]
