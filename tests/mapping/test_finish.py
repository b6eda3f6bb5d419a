"""The distributed finish: block tasks up the quadtree give the layer one join over every piece gives."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from magseg.mapping import read_partitioned
from magseg.mapping.blocks import Block, has_tiles, leaf_at, leaf_count, tiles_in, top_block
from magseg.mapping.finalize import finish_layer
from magseg.mapping.seams import merge_seams
from magseg.mapping.store import RunStore
from magseg.mapping.zones import plan_zones
from tests.conftest import REGION_TILING


def one_join(store: RunStore, ids: list[str]) -> gpd.GeoDataFrame:
    """Today's finish: every tile's pieces in one frame, seams joined in one pass."""
    frames = store.pieces(ids)
    pieces = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)
    return merge_seams(pieces, REGION_TILING_GSD).to_crs(4326)


REGION_TILING_GSD = 0.5


def same_layer(got: gpd.GeoDataFrame, want: gpd.GeoDataFrame) -> None:
    got = got.sort_values("id").reset_index(drop=True)
    want = want.sort_values("id").reset_index(drop=True)
    assert list(got["id"]) == list(want["id"]) and list(got["class"]) == list(want["class"])
    a, b = got.geometry.to_numpy(), want.geometry.to_numpy()
    # equal up to the snapping of a join (a hundredth of a pixel), checked in square metres
    diff = gpd.GeoSeries(shapely.symmetric_difference(a, b), crs=4326).to_crs(got.estimate_utm_crs()).area
    assert diff.max() < 0.01


@pytest.mark.parametrize("base", [0, 1])
def test_block_tasks_give_the_one_join_layer(
    region_run: Path, region: tuple[Path, list[float]], tmp_path: Path, base: int
) -> None:
    run = tmp_path / "run"
    shutil.copytree(region_run, run)
    store = RunStore(run)
    plan = plan_zones(region[1], gsd=REGION_TILING_GSD, tile_px=REGION_TILING["tile_px"], margin_px=64)
    assert len(plan.parts) == 1 and top_block(plan.parts[0], base).level >= 2  # a quadtree, not one block
    before = read_partitioned(run / "fields")
    tally = finish_layer(store, plan, "magseg", window=3, base=base)
    after = read_partitioned(run / "fields")
    want = one_join(store, [t.id for t in plan.tiles])
    same_layer(after, want)
    same_layer(before, want)  # the run's own layer (default blocks) too
    assert tally["finished"] == plan.n_tiles and sum(tally["polygons_by_class"].values()) == len(want)
    assert not list(run.glob(".fields*"))  # the staging folder is gone


def test_blocks_cover_the_plan_once() -> None:
    plan = plan_zones((71.9, 20.0, 72.1, 20.05), tile_px=128)
    assert len(plan.parts) == 2
    seen: list[str] = []
    for i in range(leaf_count(plan)):
        part, block = leaf_at(plan, i)
        tiles = list(tiles_in(part, block))
        assert bool(tiles) == has_tiles(part, block)
        seen += [t.id for t in tiles]
    assert sorted(seen) == sorted(t.id for t in plan.tiles) and len(set(seen)) == len(seen)
    part = plan.parts[0]
    root = top_block(part, 2)
    assert all(root.tile_range[0] <= t.col <= root.tile_range[1] for t in part.tiles)
    child = Block(part.epsg, 0, 3, 5, 2)
    assert child.parent.parent == Block(part.epsg, 2, 0, 1, 2) and child in child.parent.children()
