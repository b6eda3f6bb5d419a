"""The seed's instance metrics on polygon layers: exact geometry, one instance per row, by `class` column."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely import STRtree

from magseg.classes import CLASS_NAMES, class_id
from magseg.errors import CRSError, InputError
from magseg.metrics.instances import DEFAULT_CLASSES, check_classes
from magseg.metrics.scores import ClassScores, assemble_scores

if TYPE_CHECKING:  # geopandas is only needed by whoever builds the layers; keep `import magseg.metrics` light
    import geopandas as gpd


def _class_ids(layer: gpd.GeoDataFrame, role: str) -> np.ndarray:
    """Class id of each row, from class names (or descriptors, or integer ids)."""
    if "class" not in layer.columns:
        raise InputError(f"the {role} layer has no `class` column; add one holding class names (e.g. field)")
    values = layer["class"]
    if values.isna().any():
        raise InputError(
            f"the {role} layer has {int(values.isna().sum())} row(s) without a class; fill or drop them"
        )
    ids: dict[object, int] = {}
    for value in dict.fromkeys(values.tolist()):
        try:
            ids[value] = class_id(value) if isinstance(value, str) else int(value)
        except (ValueError, TypeError):
            raise InputError(
                f"the {role} layer has unknown class {value!r}; use one of {', '.join(CLASS_NAMES)}"
            ) from None
        if not 0 <= ids[value] < len(CLASS_NAMES):
            raise InputError(f"the {role} layer has class id {ids[value]}; ids are 0..{len(CLASS_NAMES) - 1}")
    return np.asarray([ids[v] for v in values.tolist()], dtype=np.int64)


def _geometries(layer: gpd.GeoDataFrame, mask: np.ndarray) -> np.ndarray:
    """The selected rows' geometries, repaired, without the missing or empty ones."""
    geoms = np.asarray(layer.geometry.values[mask], dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    # Hand-drawn or simplified polygons are often self-intersecting; make_valid keeps their area measurable.
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms[invalid] = shapely.make_valid(geoms[invalid])
    return geoms


def _score_class(truth: np.ndarray, pred: np.ndarray) -> ClassScores:
    """Scores of one class from its truth and predicted polygons."""
    tree = STRtree(pred)
    pair_t, pair_p = tree.query(truth, predicate="intersects")
    inter = shapely.area(shapely.intersection(truth[pair_t], pred[pair_p]))
    # Polygons that only touch along an edge intersect but do not overlap: they are not a match.
    overlap = inter > 0
    pair_t, pair_p, inter = pair_t[overlap], pair_p[overlap], inter[overlap]
    true_area, pred_area = shapely.area(truth), shapely.area(pred)

    truth_iou = np.zeros(truth.size)
    # Predicted polygons may overlap one another, so the merge is a real union, not a sum of areas.
    touching: dict[int, list[int]] = {}
    for t, p in zip(pair_t.tolist(), pair_p.tolist(), strict=True):
        touching.setdefault(t, []).append(p)
    for t, preds in touching.items():
        merged = shapely.union_all(pred[preds])
        union = shapely.area(shapely.union(merged, truth[t]))
        truth_iou[t] = shapely.area(shapely.intersection(merged, truth[t])) / union if union > 0 else 0.0
    truth_hit = np.bincount(pair_t, minlength=truth.size) > 0
    pred_hit = np.bincount(pair_p, minlength=pred.size) > 0
    pair_iou = inter / (true_area[pair_t] + pred_area[pair_p] - inter)
    return assemble_scores(truth_iou, truth_hit, pred_hit, pair_t, pair_p, pair_iou)


def score_layers(
    pred: gpd.GeoDataFrame, truth: gpd.GeoDataFrame, classes: Sequence[int] | None = None
) -> dict[str, ClassScores]:
    """Score a predicted polygon layer against a truth layer, per class (keyed by class name).

    Each row is one instance. The prediction is reprojected to the truth's CRS; IoU is a ratio of areas,
    so a geographic CRS is accepted as is.
    """
    wanted = check_classes(classes)
    if (pred.crs is None) != (truth.crs is None):
        missing = "prediction" if pred.crs is None else "truth"
        raise CRSError(f"the {missing} layer has no CRS while the other has one; set its CRS and retry")
    if pred.crs is not None and truth.crs is not None and pred.crs != truth.crs:
        pred = pred.to_crs(truth.crs)
    pred_cls, true_cls = _class_ids(pred, "prediction"), _class_ids(truth, "truth")
    out: dict[str, ClassScores] = {}
    for c in DEFAULT_CLASSES:
        if c in wanted:
            out[CLASS_NAMES[c]] = _score_class(
                _geometries(truth, true_cls == c), _geometries(pred, pred_cls == c)
            )
    return out
