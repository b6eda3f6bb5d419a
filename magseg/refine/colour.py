"""Class edges settled by the scene's own colours: a per-scene Gaussian model of each class, fitted on
the pixels the model's mask gives it, re-decides the pixels near class changes.

The RRLE mask is blocky (one class per cell); its edges lie up to a cell off the true ones. Away from
its edges the mask is mostly right, so it labels the scene well enough to learn what each class looks
like *in this scene* (light, season, sensor): a Gaussian per class over colour and local mean colour.
Pixels within ``band_px`` of a class change then take the likeliest class among those present within
the band, so an edge moves at most ``band_px`` and no class appears where the mask had none nearby.
Nothing is learnt across scenes and nothing is read from labels: it runs the same in eval, mapping and
serve.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from scipy import ndimage

__all__ = ["colour_edges"]

#: A class needs this many pixels to get its own colour model; rarer ones keep their pixels.
MIN_PIXELS = 32
#: Added to each covariance's diagonal (grey levels squared): keeps flat classes from overconfidence.
RIDGE = 4.0


def _features(image_chw: np.ndarray) -> np.ndarray:
    """(H, W, 6): each pixel's colour and its 5 x 5 mean colour."""
    rgb = np.asarray(image_chw, dtype=np.float32)[:3].transpose(1, 2, 0)
    mean = np.stack([ndimage.uniform_filter(rgb[..., b], 5) for b in range(3)], axis=-1)
    return np.concatenate([rgb, mean], axis=-1)


def colour_edges(
    semantic: np.ndarray,
    image_chw: np.ndarray,
    band_px: int,
    near: Collection[int] | None = None,
    keep: Collection[int] = (),
) -> np.ndarray:
    """``semantic`` with the pixels within ``band_px`` of a class change given their likeliest class.

    ``near``: only edges within ``band_px`` of these classes move (None: every edge); ``keep``: pixels of
    these classes never change (pixels of other classes may still turn into them). Each class's Gaussian
    is fitted on its pixels outside the band (all its pixels when too few lie there); a pixel may only
    take a class present within ``band_px`` of it. Classes with fewer than MIN_PIXELS pixels are left as
    they are. Specks the pixel-wise choice leaves are then given to their surroundings (_drop_fragments).
    """
    sem = np.asarray(semantic)
    if band_px <= 0 or sem.size == 0:
        return sem.copy()
    size = 2 * int(band_px) + 1
    band = ndimage.maximum_filter(sem, size=size) != ndimage.minimum_filter(sem, size=size)
    if near is not None:  # only edges within reach of these classes
        band &= ndimage.maximum_filter(np.isin(sem, list(near)).astype(np.uint8), size=size) > 0
    band &= ~np.isin(sem, list(keep))
    if not band.any():
        return sem.copy()
    feats = _features(image_chw)
    at = feats[band]
    classes = [int(c) for c in np.unique(sem)]
    best = np.full(at.shape[0], -np.inf, dtype=np.float64)
    choice = sem[band].copy()
    kept = np.zeros(at.shape[0], dtype=bool)  # pixels of a class too rare to model keep their class
    for cls in classes:
        own = sem == cls
        pixels = feats[own & ~band]
        if pixels.shape[0] < MIN_PIXELS:
            pixels = feats[own]
        if pixels.shape[0] < MIN_PIXELS:
            kept |= sem[band] == cls
            continue
        mean = pixels.mean(axis=0)
        cov = np.cov(pixels.T.astype(np.float64)) + RIDGE * np.eye(pixels.shape[1])
        inv = np.linalg.inv(cov)
        _, logdet = np.linalg.slogdet(cov)
        z = at - mean
        loglik = -0.5 * (np.einsum("ij,jk,ik->i", z, inv, z) + logdet)
        nearby = (ndimage.maximum_filter(own.astype(np.uint8), size=size) > 0)[band]
        better = nearby & (loglik > best)
        best[better] = loglik[better]
        choice[better] = cls
    choice[kept] = sem[band][kept]
    out = sem.copy()
    out[band] = choice
    return _drop_fragments(out, sem, near if near is not None else classes, band_px * band_px)


def _drop_fragments(out: np.ndarray, before: np.ndarray, classes: Collection[int], min_px: int) -> np.ndarray:
    """Pixel-wise choices break a region into specks; keep, of each class region of ``before``, its largest
    piece in ``out`` and pieces of at least ``min_px``, and give the pixels of the others the class of the
    nearest pixel kept. A region that stays one piece is kept whatever its size (a small well stays)."""
    dropped = np.zeros(out.shape, dtype=bool)
    for cls in classes:
        pieces, n = ndimage.label(out == cls)
        if n < 2:
            continue
        parents, _ = ndimage.label(before == cls)
        ids = np.arange(1, n + 1)
        sizes = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
        parent = ndimage.maximum(parents, pieces, ids).astype(np.int64)  # 0: a piece from nothing
        largest = np.zeros(int(parents.max()) + 1, dtype=sizes.dtype)
        np.maximum.at(largest, parent, sizes)
        keep = (sizes >= min_px) | ((sizes == largest[parent]) & (parent > 0))
        dropped |= np.concatenate([[False], ~keep])[pieces]  # piece id -> dropped, 0 (not this class) kept
    if not dropped.any():
        return out
    nearest = ndimage.distance_transform_edt(dropped, return_distances=False, return_indices=True)
    filled = out.copy()
    filled[dropped] = out[nearest[0][dropped], nearest[1][dropped]]
    return filled
