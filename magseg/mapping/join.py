"""The finish's Ray tasks: a block's tile pieces become layer parts; pieces on the block's border go up.

A level-0 task reads its block's finished tiles (records and pieces), writes the pieces that need no
join (not on a seam) straight into the layer's partitions, joins the seam pieces inside the block, and
writes the joined polygons that cannot reach beyond the block. What reaches the block's border (or a zone
line) is returned, and the task of the parent block joins its children's returns the same way, up to
each zone's root; the pieces cut on zone lines are joined across zones last (magseg.mapping.seams).
Every task also returns a small tally of its tiles' records, which the driver sums.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from magseg.mapping.blocks import Block, tiles_in
from magseg.mapping.layer import write_partitioned
from magseg.mapping.plan import RegionPlan
from magseg.mapping.seams import join_across_zones, join_touching
from magseg.mapping.store import RunStore
from magseg.mapping.tile import ZONE_SIDE

__all__ = ["Tally", "finish_leaf", "join_block", "join_zones"]

#: Tiles listed by name in run.json's ``empty_tiles`` (the count is always complete).
MAX_LISTED = 100

Tally = dict[str, Any]


def new_tally() -> Tally:
    return {
        "finished": 0,
        "statuses": Counter(),
        "patches": 0,
        "tokens": 0,
        "rereads": 0,
        "valid_patches": 0,
        "stage_seconds": Counter(),
        "scenes": set(),
        "warnings": set(),
        "empty_tiles": [],
        "n_empty": 0,
        "polygons_by_class": Counter(),
    }


def add_tally(total: Tally, part: Tally) -> Tally:
    """Fold ``part`` into ``total`` (in place) and return it."""
    for key in ("finished", "patches", "tokens", "rereads", "valid_patches", "n_empty"):
        total[key] += part[key]
    for key in ("statuses", "stage_seconds", "polygons_by_class"):
        total[key].update(part[key])
    total["scenes"] |= part["scenes"]
    total["warnings"] |= part["warnings"]
    total["empty_tiles"] = (total["empty_tiles"] + part["empty_tiles"])[:MAX_LISTED]
    return total


def _tally_records(records: list[dict[str, Any]]) -> Tally:
    tally = new_tally()
    for r in records:
        tally["finished"] += 1
        tally["statuses"][r["status"]] += 1
        tally["patches"] += r["patches"]
        tally["tokens"] += r["tokens"]
        tally["rereads"] += r.get("rereads", 0)  # records of runs before seam re-reads have none
        tally["valid_patches"] += r["valid_patches"]
        for key in ("read_s", "model_s", "refine_s"):
            tally["stage_seconds"][key] += r.get(key, 0.0)
        tally["scenes"].update(r["scenes"])
        tally["warnings"].update(r["warnings"])
        if r["status"] != "ok":
            tally["n_empty"] += 1
            if len(tally["empty_tiles"]) < MAX_LISTED:
                tally["empty_tiles"].append({"tile": r["tile"], "message": r["message"]})
    return tally


def _reaches(frame: gpd.GeoDataFrame, bounds: tuple[float, float, float, float], gsd: float) -> np.ndarray:
    """Which polygons reach the block's outline (a neighbouring block may hold the rest of them)."""
    eps = gsd / 1000.0
    b = frame.geometry.bounds.to_numpy()
    x0, y0, x1, y1 = bounds
    return (b[:, 0] <= x0 + eps) | (b[:, 1] <= y0 + eps) | (b[:, 2] >= x1 - eps) | (b[:, 3] >= y1 - eps)


def _settle(
    pieces: gpd.GeoDataFrame | None,
    bounds: tuple[float, float, float, float] | None,
    gsd: float,
    staging: str,
    collection: str,
) -> tuple[gpd.GeoDataFrame | None, Counter[str]]:
    """Join ``pieces`` inside a block, write what is final, return what must go up (and the class counts).

    ``bounds`` None: the zone's root, where only pieces cut on a zone line still have partners.
    """
    if pieces is None or len(pieces) == 0:
        return None, Counter()
    flags = pieces["seams"].astype(str)
    interior = pieces[flags.str.len().to_numpy() == 0]
    joined = join_touching(pieces[flags.str.len().to_numpy() > 0], gsd)
    up = np.array(joined["seams"].astype(str).str.contains(ZONE_SIDE), dtype=bool)
    if bounds is not None and len(joined):
        up = up | _reaches(joined, bounds, gsd)
    final = pd.concat([interior, joined[~up]], ignore_index=True).drop(columns="seams")
    final = gpd.GeoDataFrame(final, geometry="geometry", crs=pieces.crs)
    counts = _write(final, staging, collection)
    carry = joined[up].reset_index(drop=True)
    return (carry if len(carry) else None), counts


def _write(final: gpd.GeoDataFrame, staging: str, collection: str) -> Counter[str]:
    if len(final) == 0:
        return Counter()
    write_partitioned(final, staging, collection=collection, replace=False)
    return Counter(str(k) for k in final["class"])


def finish_leaf(
    part: RegionPlan, block: Block, out: str, staging: str, collection: str, root: bool
) -> tuple[gpd.GeoDataFrame | None, Tally]:
    """A level-0 block: its finished tiles' tally, its final polygons written, its border pieces returned."""
    store = RunStore(out)
    records, frames = [], []
    for tile in tiles_in(part, block):
        record = store.record(tile.id)
        if record is None:
            continue
        records.append(record)
        frame = store.tile_pieces(tile.id)
        if frame is not None and len(frame):
            frames.append(frame)
    tally = _tally_records(records)
    pieces = _concat(frames)
    bounds = None if root else block.bounds(part.tile_m)
    carry, tally["polygons_by_class"] = _settle(pieces, bounds, part.gsd, staging, collection)
    return carry, tally


def join_block(
    part: RegionPlan,
    block: Block,
    staging: str,
    collection: str,
    root: bool,
    *children: gpd.GeoDataFrame | None,
) -> tuple[gpd.GeoDataFrame | None, Tally]:
    """A block above level 0: its children's border pieces joined, the final ones written."""
    tally = new_tally()
    bounds = None if root else block.bounds(part.tile_m)
    carry, tally["polygons_by_class"] = _settle(_concat(children), bounds, part.gsd, staging, collection)
    return carry, tally


def join_zones(gsd: float, staging: str, collection: str, *zones: gpd.GeoDataFrame | None) -> Tally:
    """The zones' roots' leftovers (pieces cut on zone lines), joined across the lines and written."""
    tally = new_tally()
    frames = [z for z in zones if z is not None and len(z)]
    if frames:
        joined = join_across_zones(frames, gsd).drop(columns="seams")
        tally["polygons_by_class"] = _write(joined, staging, collection)
    return tally


def _concat(frames: Any) -> gpd.GeoDataFrame | None:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return None
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)
