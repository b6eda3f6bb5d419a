"""Join the pieces of an object cut by tile edges: same class, sharing a stretch of the seam, become one polygon."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["merge_seams"]


def merge_seams(pieces: gpd.GeoDataFrame, gsd: float, min_shared_px: float = 4.0) -> gpd.GeoDataFrame:
    """Union seam pieces of the same class whose outlines share at least ``min_shared_px`` pixels of edge.

    ``pieces`` are the per-tile polygons of magseg.mapping.tile (one projected CRS; ``seams`` says which
    core sides a piece reaches). Tile cores are disjoint and cut on one pixel grid, so two pieces of one
    field meet along the seam line exactly, while two fields that merely sit on either side of a seam are
    kept apart by the gap refinement leaves between instances (and touch, if at all, at a corner or for a
    pixel or two, under ``min_shared_px``). Groups are joined transitively (a field over a tile corner
    has four pieces). A joined polygon takes the smallest id of its pieces, so the result depends only on
    the pieces, never on the order tiles finished in. Areas and perimeters are recomputed.
    """
    frame = pieces.reset_index(drop=True)
    on_seam = np.flatnonzero(frame["seams"].astype(str).str.len().to_numpy() > 0)
    if len(on_seam) < 2:
        return frame.drop(columns="seams")
    geoms = frame.geometry.to_numpy()
    classes = frame["class"].to_numpy()
    tree = shapely.STRtree(geoms[on_seam])
    left, right = tree.query(geoms[on_seam], predicate="touches")
    keep = (left < right) & (classes[on_seam[left]] == classes[on_seam[right]])
    left, right = on_seam[left[keep]], on_seam[right[keep]]
    shared = shapely.length(shapely.intersection(geoms[left], geoms[right]))
    keep = shared >= min_shared_px * gsd
    left, right = left[keep], right[keep]
    n = len(frame)
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(n, n))
    _, group = connected_components(graph, directed=False)
    sizes = np.bincount(group)
    if (sizes == 1).all():
        return frame.drop(columns="seams")

    grouped = sizes[group] > 1
    single = frame[~grouped]
    joined: list[dict[str, object]] = []
    grid = gsd / 100.0  # snap to a hundredth of a pixel so the shared seam vertices coincide exactly
    # one pass over the grouped pieces (not one mask per group: regions have thousands of groups)
    multi = frame[grouped].assign(_group=group[grouped]).sort_values(["_group", "id"], kind="stable")
    for _, members in multi.drop(columns="_group").groupby(multi["_group"].to_numpy(), sort=False):
        first = members.iloc[0]
        geom = shapely.union_all(shapely.set_precision(members.geometry.to_numpy(), grid))
        joined.append({**first.to_dict(), "geometry": geom})
    merged = gpd.GeoDataFrame(joined, geometry="geometry", crs=frame.crs)
    merged["metrics:area"] = merged.geometry.area.to_numpy()
    merged["metrics:perimeter"] = merged.geometry.length.to_numpy()
    out = pd.concat([single, merged], ignore_index=True)
    out = gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs)
    return out.sort_values("id", kind="stable").drop(columns="seams").reset_index(drop=True)
