"""Label raster -> one polygon per (class, instance), with areas and perimeters in metres."""

from __future__ import annotations

import math
from collections.abc import Collection

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon, shape

from magseg.classes import BACKGROUND, CLASS_NAMES, class_id
from magseg.errors import InputError
from magseg.labels import LabelRaster, require_projected

__all__ = ["COLUMNS", "parse_classes", "polygonize"]

#: Columns of a polygon layer, geometry last.
COLUMNS: tuple[str, ...] = ("id", "class", "instance", "metrics:area", "metrics:perimeter", "geometry")


def parse_classes(classes: Collection[int | str] | str | None) -> tuple[int, ...]:
    """Class ids from ids, names/descriptors or a comma-separated string; None = every non-background class."""
    if classes is None:
        return tuple(range(1, len(CLASS_NAMES)))
    items = classes.split(",") if isinstance(classes, str) else list(classes)
    out: list[int] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            cid = class_id(item) if isinstance(item, str) else int(item)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        if not 0 < cid < len(CLASS_NAMES):
            raise InputError(
                f"class {item!r} cannot be polygonized: choose among {', '.join(CLASS_NAMES[1:])}"
            )
        out.append(cid)
    if not out:
        raise InputError("no class given; name at least one, e.g. field")
    return tuple(dict.fromkeys(out))


def polygonize(
    labels: LabelRaster,
    *,
    simplify: float = 0.0,
    min_area: float = 0.0,
    max_area: float | None = None,
    classes: Collection[int | str] | str | None = None,
    fill_holes_below: float | None = None,
    source: str = "label raster",
) -> gpd.GeoDataFrame:
    """Polygons of the instances of ``labels`` in its CRS: columns id, class, instance, metrics:*, geometry.

    ``id`` is ``"<class>-<instance>"`` (stable for a given raster). An instance split into several pieces
    (4-connected) is one MultiPolygon. Lengths and areas are in metres: ``simplify`` is a coverage
    simplification tolerance (Visvalingam-Whyatt, roughly the square root of the area of the removed
    triangles) applied to all polygons together so neighbours stay gap- and overlap-free;
    ``min_area`` / ``max_area`` (m²) drop polygons outside the range; ``fill_holes_below`` (m²) fills
    holes smaller than that which no other instance occupies. A geographic raster is measured on its
    local UTM projection (the geometry stays in the raster CRS); a raster with no CRS raises CRSError.
    """
    if labels.crs is None:
        require_projected(labels, source)  # raises CRSError: nothing can be measured without a CRS
    assert labels.crs is not None
    crs = pyproj.CRS.from_user_input(labels.crs.to_wkt())
    wanted = parse_classes(classes)
    key, pairs = _instance_keys(labels, wanted)
    if not pairs:
        return _empty(crs)
    m2_per_px, m_per_unit = _pixel_scale(labels, crs)
    if fill_holes_below:
        key = _fill_holes(key, fill_holes_below / m2_per_px)

    pieces: dict[int, list[Polygon]] = {}
    for geom, value in shapes(key, mask=key > 0, transform=labels.transform, connectivity=4):
        pieces.setdefault(int(value), []).append(shape(geom))
    values = sorted(pieces)
    geoms = np.array(
        [p[0] if len(p) == 1 else MultiPolygon(p) for p in (pieces[v] for v in values)], dtype=object
    )
    if simplify > 0:
        geoms = shapely.coverage_simplify(geoms, simplify / m_per_unit)
    geoms = np.array([_polygonal(g) for g in geoms], dtype=object)

    frame = gpd.GeoDataFrame(
        {
            "class": [CLASS_NAMES[pairs[v - 1][0]] for v in values],
            "instance": np.array([pairs[v - 1][1] for v in values], dtype=np.int64),
        },
        geometry=list(geoms),
        crs=crs,
    )
    frame = frame[~frame.geometry.is_empty]
    metric = frame.geometry.to_crs(frame.estimate_utm_crs()) if crs.is_geographic else frame.geometry
    scale = 1.0 if crs.is_geographic else m_per_unit
    frame["metrics:area"] = metric.area.to_numpy() * scale**2
    frame["metrics:perimeter"] = metric.length.to_numpy() * scale
    keep = frame["metrics:area"] >= min_area
    if max_area is not None:
        keep &= frame["metrics:area"] <= max_area
    frame = frame[keep].copy()
    frame["id"] = frame["class"] + "-" + frame["instance"].astype(str)
    return frame[list(COLUMNS)].reset_index(drop=True)


def _instance_keys(labels: LabelRaster, wanted: tuple[int, ...]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Number each (class, instance) pair 1..K on the raster; return the key raster and the pairs in order."""
    inst = np.asarray(labels.instance).astype(np.int64)
    sem = np.asarray(labels.semantic).astype(np.int64)
    scored = (inst > 0) & np.isin(sem, wanted) & (sem != BACKGROUND)
    if not scored.any():
        return np.zeros(inst.shape, dtype=np.int32), []
    width = int(inst.max()) + 1
    codes, inverse = np.unique(sem[scored] * width + inst[scored], return_inverse=True)
    key = np.zeros(inst.shape, dtype=np.int32)  # rasterio.features.shapes takes int32, not int64
    key[scored] = inverse.ravel() + 1
    return key, [(int(c // width), int(c % width)) for c in codes]


def _pixel_scale(labels: LabelRaster, crs: pyproj.CRS) -> tuple[float, float]:
    """(m² per pixel, metres per CRS unit); for a geographic CRS, measured at the raster centre in UTM."""
    if not crs.is_geographic:
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        return labels.pixel_area * unit**2, unit
    h, w = labels.shape
    t = labels.transform
    cx, cy = t @ (w / 2, h / 2)
    px = shapely.box(cx, cy, cx + t.a, cy + t.e)
    one = gpd.GeoSeries([px], crs=crs)
    m2 = float(one.to_crs(one.estimate_utm_crs()).area.iloc[0])
    # metres per degree, from the same pixel: sqrt of the area ratio (isotropic enough for a tolerance)
    return m2, math.sqrt(m2 / labels.pixel_area)


def _fill_holes(key: np.ndarray, max_px: float) -> np.ndarray:
    """Give each enclosed unlabelled region under ``max_px`` pixels to the one instance surrounding it."""
    holes, n = ndimage.label(key == 0)
    if n == 0:
        return key
    size = np.bincount(holes.ravel(), minlength=n + 1)
    edge = np.unique(np.concatenate([holes[0], holes[-1], holes[:, 0], holes[:, -1]]))
    # which instances each empty region touches (4-neighbours)
    a = np.concatenate(
        [holes[:, :-1].ravel(), holes[:-1, :].ravel(), holes[:, 1:].ravel(), holes[1:, :].ravel()]
    )
    b = np.concatenate([key[:, 1:].ravel(), key[1:, :].ravel(), key[:, :-1].ravel(), key[:-1, :].ravel()])
    touch = pd.DataFrame({"hole": a, "key": b})
    touch = touch[(touch.hole > 0) & (touch.key > 0)].drop_duplicates()
    counts = touch.groupby("hole")["key"].agg(["nunique", "first"])
    fill = np.zeros(n + 1, dtype=np.int32)
    ok = (counts["nunique"] == 1) & (size[counts.index] < max_px) & ~np.isin(counts.index, edge)
    fill[counts.index[ok]] = counts["first"][ok].to_numpy()
    out = key.copy()
    mask = fill[holes] > 0
    out[mask] = fill[holes][mask]
    return out


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """A valid Polygon or MultiPolygon (empty if nothing areal is left): make_valid may yield lines too."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [p for p in shapely.get_parts(geom) if p.geom_type == "Polygon" and not p.is_empty]
    polys += [q for p in shapely.get_parts(geom) if p.geom_type == "MultiPolygon" for q in p.geoms]
    if not polys:
        return Polygon()
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def _empty(crs: pyproj.CRS) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {
            "id": pd.Series(dtype=str),
            "class": pd.Series(dtype=str),
            "instance": pd.Series(dtype=np.int64),
            "metrics:area": pd.Series(dtype=np.float64),
            "metrics:perimeter": pd.Series(dtype=np.float64),
        },
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )
    return frame[list(COLUMNS)]
