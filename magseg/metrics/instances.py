"""The seed's instance metrics on label rasters: merged-prediction IoU per truth instance, FNR, FPR."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from magseg.classes import CLASS_NAMES
from magseg.errors import InputError
from magseg.metrics.scores import ClassScores, assemble_scores

#: Classes scored by default: every class but background.
DEFAULT_CLASSES: tuple[int, ...] = tuple(range(1, len(CLASS_NAMES)))

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def check_classes(classes: Sequence[int] | None) -> tuple[int, ...]:
    """Validate the classes to score (ids 1..5, background excluded); None means all of them."""
    if classes is None:
        return DEFAULT_CLASSES
    out = tuple(dict.fromkeys(int(c) for c in classes))
    bad = [c for c in out if c not in DEFAULT_CLASSES]
    if bad:
        raise ValueError(
            f"cannot score class ids {bad}: choose among {list(DEFAULT_CLASSES)} (background is never scored)"
        )
    return out


def label_instances(
    instance: ArrayLike, semantic: ArrayLike, classes: Sequence[int] = DEFAULT_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """Number the instances of a label raster 1..N; return (labels, class of each label).

    An instance is a (class, instance id) pair; pixels of a scored class with instance id 0 are split into
    8-connected components, so a semantic-only mask scores too. labels is int64 with 0 where no scored
    instance lies; the class array has N + 1 entries (entry 0 is 0).
    """
    inst = np.asarray(instance).astype(np.int64, copy=False)
    sem = np.asarray(semantic).astype(np.int64, copy=False)
    if inst.shape != sem.shape or inst.ndim != 2:
        raise InputError(f"instance {inst.shape} and class {sem.shape} arrays must be one 2-D shape")
    if inst.size and inst.min() < 0:
        raise InputError("instance ids must be >= 0 (0 = no instance)")
    scored = np.isin(sem, classes)
    local = np.where(scored, inst, 0)
    bare = scored & (inst == 0)
    if bare.any():
        # Components get ids above every real instance id so the two kinds never collide within a class.
        offset = int(inst.max(initial=0))
        for c in classes:
            components, n = ndimage.label(bare & (sem == c), structure=_EIGHT_CONNECTED)
            if n:
                hit = components > 0
                local[hit] = components[hit] + offset
                offset += n
    width = int(local.max(initial=0)) + 1
    key = sem[scored] * width + local[scored]
    uniq, inverse = np.unique(key, return_inverse=True)
    labels = np.zeros(inst.shape, dtype=np.int64)
    labels[scored] = inverse.ravel() + 1
    label_class = np.concatenate([[0], uniq // width]).astype(np.int64)
    return labels, label_class


def score_instances(
    pred_instance: ArrayLike,
    pred_class: ArrayLike,
    true_instance: ArrayLike,
    true_class: ArrayLike,
    classes: Sequence[int] | None = None,
) -> dict[str, ClassScores]:
    """Score predicted instances against the truth, per class (keyed by class name, every class present).

    Works on a sparse table of (predicted, true) overlap counts, so the cost is a few passes over the
    raster whatever the number of instances.
    """
    wanted = check_classes(classes)
    p_shape, t_shape = np.shape(pred_instance), np.shape(true_instance)
    if p_shape != t_shape:
        raise InputError(
            f"prediction {p_shape} and truth {t_shape} differ in shape; resample/crop to the truth grid"
        )
    pred_labels, pred_cls = label_instances(pred_instance, pred_class, wanted)
    true_labels, true_cls = label_instances(true_instance, true_class, wanted)
    n_p, n_t = pred_cls.size, true_cls.size  # label counts + 1 (index 0 = nothing)
    pred_area = np.bincount(pred_labels.ravel(), minlength=n_p).astype(np.float64)
    true_area = np.bincount(true_labels.ravel(), minlength=n_t).astype(np.float64)

    both = (pred_labels > 0) & (true_labels > 0)
    pair_code, inter = np.unique(pred_labels[both] * n_t + true_labels[both], return_counts=True)
    pair_p, pair_t = pair_code // n_t, pair_code % n_t
    same = pred_cls[pair_p] == true_cls[pair_t]  # a prediction only counts for its own class
    pair_p, pair_t, inter = pair_p[same], pair_t[same], inter[same].astype(np.float64)

    # Predicted instances are disjoint pixel sets, so for the merge M of the predictions touching truth
    # instance g: |M ∩ g| = Σ|p ∩ g| and |M ∪ g| = Σ|p| + |g| - |M ∩ g|.
    merged_inter = np.bincount(pair_t, weights=inter, minlength=n_t)
    merged_area = np.bincount(pair_t, weights=pred_area[pair_p], minlength=n_t)
    union = merged_area + true_area - merged_inter
    truth_iou = np.divide(merged_inter, union, out=np.zeros(n_t), where=union > 0)
    truth_hit = np.bincount(pair_t, minlength=n_t) > 0
    pred_hit = np.bincount(pair_p, minlength=n_p) > 0
    pair_iou = inter / (pred_area[pair_p] + true_area[pair_t] - inter)

    out: dict[str, ClassScores] = {}
    for c in DEFAULT_CLASSES:
        if c not in wanted:
            continue
        t_ids = np.flatnonzero(true_cls == c)
        t_ids = t_ids[t_ids > 0]
        p_ids = np.flatnonzero(pred_cls == c)
        p_ids = p_ids[p_ids > 0]
        in_class = true_cls[pair_t] == c
        out[CLASS_NAMES[c]] = assemble_scores(
            truth_iou[t_ids],
            truth_hit[t_ids],
            pred_hit[p_ids],
            pair_t[in_class],
            pair_p[in_class],
            pair_iou[in_class],
        )
    return out
