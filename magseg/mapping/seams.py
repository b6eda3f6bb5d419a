"""Join the pieces of an object cut by tile edges: same class, sharing a stretch of the seam, become one polygon."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from magseg.vector import CONFIDENCE

__all__ = ["merge_seams"]


def merge_seams(pieces: gpd.GeoDataFrame, gsd: float, min_shared_px: float = 4.0) -> gpd.GeoDataFrame:
    """Union seam pieces of the same class whose outlines share at least ``min_shared_px`` pixels of edge.

    ``pieces`` are the per-tile polygons of magseg.mapping.tile (one projected CRS; ``seams`` says which
    core sides a piece reaches). Tile cores are disjoint and cut on one pixel grid, so two pieces of one
    field meet along the seam line exactly, while two fields that merely sit on either side of a seam are
    kept apart by the gap refinement leaves between instances (and touch, if at all, at a corner or for a
    pixel or two, under ``min_shared_px``). Groups are joined transitively (a field over a tile corner
    has four pieces). A joined polygon takes the smallest id of its pieces, so the result depends only on
    the pieces, never on the order tiles finished in. Areas and perimeters are recomputed; a confidence
    (magseg:confidence) becomes the area-weighted mean of the pieces'.
    """
    return join_touching(pieces, gsd, min_shared_px).drop(columns="seams")


def join_touching(pieces: gpd.GeoDataFrame, gsd: float, min_shared_px: float = 4.0) -> gpd.GeoDataFrame:
    """merge_seams keeping the ``seams`` column (a joined polygon gets the union of its pieces' flags)."""
    frame = pieces.reset_index(drop=True)
    on_seam = np.flatnonzero(frame["seams"].astype(str).str.len().to_numpy() > 0)
    if len(on_seam) < 2:
        return frame
    geoms = frame.geometry.to_numpy()
    classes = frame["class"].to_numpy()
    tree = shapely.STRtree(geoms[on_seam])
    left, right = tree.query(geoms[on_seam], predicate="touches")
    keep = (left < right) & (classes[on_seam[left]] == classes[on_seam[right]])
    left, right = on_seam[left[keep]], on_seam[right[keep]]
    shared = shapely.length(shapely.intersection(geoms[left], geoms[right]))
    keep = shared >= min_shared_px * gsd
    return _union_groups(frame, left[keep], right[keep], gsd)


def _union_groups(
    frame: gpd.GeoDataFrame, left: np.ndarray, right: np.ndarray, gsd: float
) -> gpd.GeoDataFrame:
    """Union the connected groups of the pairs (left[i], right[i]) of ``frame``'s rows."""
    n = len(frame)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    sizes = np.bincount(group)
    if (sizes == 1).all():
        return frame

    grouped = sizes[group] > 1
    single = frame[~grouped]
    joined: list[dict[str, object]] = []
    grid = gsd / 100.0  # snap to a hundredth of a pixel so the shared seam vertices coincide exactly
    # one pass over the grouped pieces (not one mask per group: regions have thousands of groups)
    multi = frame[grouped].assign(_group=group[grouped]).sort_values(["_group", "id"], kind="stable")
    for _, members in multi.drop(columns="_group").groupby(multi["_group"].to_numpy(), sort=False):
        first = members.iloc[0]
        geom = shapely.union_all(shapely.set_precision(members.geometry.to_numpy(), grid))
        flags = sorted({f for text in members["seams"].astype(str) for f in text.split(",") if f})
        row = {**first.to_dict(), "geometry": geom, "seams": ",".join(flags)}
        if CONFIDENCE in members.columns:
            area = shapely.area(members.geometry.to_numpy())
            row[CONFIDENCE] = np.float32(np.average(members[CONFIDENCE].to_numpy(np.float64), weights=area))
        joined.append(row)
    merged = gpd.GeoDataFrame(joined, geometry="geometry", crs=frame.crs)
    merged["metrics:area"] = merged.geometry.area.to_numpy()
    merged["metrics:perimeter"] = merged.geometry.length.to_numpy()
    out = pd.concat([single, merged], ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs)
    return out.sort_values("id", kind="stable").reset_index(drop=True)


def join_across_zones(
    frames: list[gpd.GeoDataFrame], gsd: float, min_shared_px: float = 4.0
) -> gpd.GeoDataFrame:
    """Join the pieces cut on UTM zone lines (``Z`` flag) with their partners in the neighbouring zone.

    ``frames`` hold pieces of different zones, each in its own UTM CRS. Both sides cut along the same
    points of the zone line (magseg.mapping.tile.zone_strip) but are reprojected from different CRSs, so
    outlines are matched within a tolerance (a hundredth of a pixel) rather than exactly: two pieces of
    one class join when one's outline runs within that tolerance of the other's for ``min_shared_px``
    pixels. The result is in the first frame's CRS.
    """
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame({"id": [], "seams": []}, geometry=[])
    crs = frames[0].crs
    frame = gpd.GeoDataFrame(
        pd.concat([f.to_crs(crs) for f in frames], ignore_index=True), geometry="geometry", crs=crs
    )
    tol = gsd / 100.0
    geoms = frame.geometry.to_numpy()
    cut = np.flatnonzero(frame["seams"].astype(str).str.contains("Z").to_numpy())
    if len(cut) < 2:
        return frame
    tree = shapely.STRtree(geoms[cut])
    left, right = tree.query(geoms[cut], predicate="dwithin", distance=tol)
    classes = frame["class"].to_numpy()
    keep = (left < right) & (classes[cut[left]] == classes[cut[right]])
    left, right = cut[left[keep]], cut[right[keep]]
    near = shapely.buffer(shapely.boundary(geoms[right]), tol)
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[left]), near))
    keep = shared >= min_shared_px * gsd
    left, right = left[keep], right[keep]
    # snap each partner onto the other so their common edge has common vertices before the union
    snapped = geoms.copy()
    for a, b in zip(left, right, strict=True):
        snapped[b] = shapely.snap(snapped[b], snapped[a], tol * 2)
    frame = frame.set_geometry(snapped)
    return _union_groups(frame, left, right, gsd)
