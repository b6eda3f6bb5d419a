"""What a field's pixels and outline say of it: the features the confidence calibrator weighs.

- ``token_mean``: the mean probability of the RRLE tokens that wrote the instance's pixels
  (magseg.codec.cell_scores); ``token_low``: the share of its pixels written with probability < 0.5;
- ``edge``: the mean boundary probability on its outline (a field cut along a real bund scores high);
  ``inner``: the mean boundary probability inside it (a strong edge inside hints at two fields merged);
- ``log_area``: log10 of its area in m² (specks are often debris); ``is_field``: 1 for the field class.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from magseg.classes import FIELD

__all__ = ["FEATURES", "instance_features"]

FEATURES: tuple[str, ...] = ("token_mean", "token_low", "edge", "inner", "log_area", "is_field")


def _outline(instance: np.ndarray) -> np.ndarray:
    """Pixels of an instance with a 4-neighbour outside it (the scene edge does not count as outline)."""
    ring = np.zeros(instance.shape, dtype=bool)
    for a, b in (
        (np.s_[:, 1:], np.s_[:, :-1]),
        (np.s_[1:, :], np.s_[:-1, :]),
    ):
        differ = instance[a] != instance[b]
        ring[a] |= differ
        ring[b] |= differ
    return ring & (instance > 0)


def _means(values: np.ndarray, labels: np.ndarray, index: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Mean of ``values`` per label over the pixels in ``where`` (NaN for a label with none there)."""
    n = int(index.max(initial=0)) + 1
    lab = labels[where]
    total = np.bincount(lab, weights=values[where].astype(np.float64), minlength=n)
    count = np.bincount(lab, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count)[index]


def instance_features(
    instance: np.ndarray,
    semantic: np.ndarray,
    token_conf: np.ndarray,
    boundary: np.ndarray | None,
    gsd: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, X): the instance ids of the raster (sorted, > 0) and their (n, len(FEATURES)) features."""
    inst = np.asarray(instance).astype(np.int64)
    ids = np.unique(inst[inst > 0])
    if ids.size == 0:
        return ids, np.zeros((0, len(FEATURES)), dtype=np.float64)
    inside = inst > 0
    area = np.bincount(inst[inside], minlength=int(ids.max()) + 1)[ids].astype(np.float64)
    conf = np.asarray(token_conf, dtype=np.float32)
    token_mean = _means(conf, inst, ids, inside)
    token_low = _means((conf < 0.5).astype(np.float32), inst, ids, inside)
    if boundary is None:
        edge = inner = np.zeros(ids.size)
    else:
        ring = _outline(inst)
        edge = _means(boundary, inst, ids, ring)
        inner = _means(boundary, inst, ids, inside & ~ring)
        edge = np.where(np.isnan(edge), inner, edge)
        inner = np.where(np.isnan(inner), edge, inner)
    cls = np.asarray(ndimage.maximum(semantic, inst, ids))  # one class per instance
    log_area = np.log10(np.maximum(area * gsd * gsd, 1e-3))
    x = np.stack([token_mean, token_low, edge, inner, log_area, (cls == FIELD).astype(np.float64)], axis=1)
    return ids, np.nan_to_num(x.astype(np.float64))
