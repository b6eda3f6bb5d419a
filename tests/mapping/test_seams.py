"""Seams: one big tile and four small tiles over the same ground give the same polygons, none cut in two."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import shapely

from magseg.codec import grid_to_mask, mask_to_grid
from magseg.mapping.plan import Tile
from magseg.mapping.read import read_tile
from magseg.mapping.seams import merge_seams
from magseg.mapping.tile import RefineSettings, tile_pieces
from magseg.patches import PatchLayout, crop_patch
from magseg.refine.boundary import OrientedBoundary
from magseg.synth import write_dataset

GSD = 0.5
SMALL_M = 96.0  # 192 px cores: 3 patches of 64 px
MARGIN_M = 32.0  # 64 px: one patch, so every window keeps the global patch grid
PATCH, GRID = 64, 8


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[pystac.Item, Path]:
    root = write_dataset(tmp_path_factory.mktemp("seams") / "ds", 1, 1024, GSD, seed=11, cloud_fraction=0.0)
    item = pystac.Item.from_file(str(next((root / "stac" / "items").glob("*.json"))))
    return item, root / "labels" / f"{item.id}.tif"


def oracle_semantic(labels: Path, bounds: tuple[float, float, float, float]) -> np.ndarray:
    """The truth read on a window, written at the RRLE grid patch by patch: a perfect model's output."""
    with rasterio.open(labels) as src:
        window = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        sem = src.read(2, window=window.round_offsets().round_lengths())  # band 2: class ids
    layout = PatchLayout(*sem.shape, PATCH)
    out = np.zeros_like(sem)
    for x0, y0 in layout.origins():
        out[y0 : y0 + PATCH, x0 : x0 + PATCH] = grid_to_mask(
            mask_to_grid(crop_patch(sem, x0, y0, PATCH), GRID), PATCH
        )
    return out


def map_tiles(
    tiles: list[Tile], item: pystac.Item, labels: Path, settings: RefineSettings
) -> gpd.GeoDataFrame:
    frames = []
    for tile in tiles:
        img = read_tile(tile, [item], GSD)
        sem = oracle_semantic(labels, tile.read_bounds)
        got = tile_pieces(
            tile, sem, img.image, img.mask, img.transform, img.crs, GSD,
            settings=settings, snap_px=PATCH // GRID,
        )  # fmt: skip
        frames.append(got.frame)
    pieces = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)
    return pieces


def grid_tiles(item: pystac.Item) -> tuple[Tile, list[Tile]]:
    """A 2x2 block of small tiles and the big tile over the same core, all inside the scene."""
    x0, y0, x1, y1 = item.properties["proj:bbox"]
    epsg = int(str(item.properties["proj:code"]).split(":")[1])
    big_m = 2 * SMALL_M
    col = math.floor(((x0 + x1) / 2) / big_m)
    row = math.floor(((y0 + y1) / 2) / big_m)
    big = Tile(epsg, col, row, big_m, MARGIN_M)
    small = [Tile(epsg, 2 * col + dc, 2 * row + dr, SMALL_M, MARGIN_M) for dr in (0, 1) for dc in (0, 1)]
    rb = big.read_bounds
    assert x0 <= rb[0] and rb[2] <= x1 and y0 <= rb[1] and rb[3] <= y1
    return big, small


def match_iou(a: gpd.GeoSeries, b: gpd.GeoSeries) -> np.ndarray:
    """For each polygon of ``a``, its best IoU with a polygon of ``b``."""
    tree = shapely.STRtree(b.to_numpy())
    best = np.zeros(len(a))
    for i, geom in enumerate(a.to_numpy()):
        for j in tree.query(geom, predicate="intersects"):
            other = b.iloc[j]
            inter = geom.intersection(other).area
            best[i] = max(best[i], inter / (geom.area + other.area - inter))
    return best


def test_four_tiles_give_the_polygons_of_one(scene: tuple[pystac.Item, Path]) -> None:
    item, labels = scene
    big, small = grid_tiles(item)
    # one boundary scale for the region, as the region job estimates it: then a pixel's boundary
    # probability does not depend on the window it was computed in
    scale = OrientedBoundary(gsd=GSD).image_scale(read_tile(big, [item], GSD).image)
    settings = RefineSettings(boundary_scale=scale)
    whole = merge_seams(map_tiles([big], item, labels, settings), GSD)
    pieces = map_tiles(small, item, labels, settings)
    cut = pieces["seams"].str.len() > 0
    # the seams cut fields: without joining, objects on the inner seams come out in pieces
    inner = shapely.union(
        shapely.LineString([(small[0].bounds[2], big.bounds[1]), (small[0].bounds[2], big.bounds[3])]),
        shapely.LineString([(big.bounds[0], small[0].bounds[3]), (big.bounds[2], small[0].bounds[3])]),
    )
    on_inner = pieces[pieces.geometry.distance(inner) < GSD / 2]
    assert len(on_inner) >= 8 and cut.sum() >= len(on_inner)
    joined = merge_seams(pieces, GSD)
    assert len(joined) < len(pieces)
    fields_whole = whole[whole["class"] == "field"].geometry
    fields_joined = joined[joined["class"] == "field"].geometry
    # the same fields, in the same places: nearly every polygon of one has a near-identical twin in the other
    assert abs(len(fields_joined) - len(fields_whole)) <= max(2, 0.05 * len(fields_whole))
    for a, b in ((fields_whole, fields_joined), (fields_joined, fields_whole)):
        iou = match_iou(a, b)
        assert np.mean(iou >= 0.9) >= 0.9, np.sort(iou)[:10]
    # nothing duplicated: joined polygons do not overlap each other
    geoms = joined.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="overlaps")
    overlap = shapely.area(shapely.intersection(geoms[left], geoms[right])).sum()
    assert overlap < 1.0  # m²
    assert joined["id"].is_unique
    # every polygon lying across an inner seam is one polygon whose area is the sum of its pieces
    across = joined[joined.geometry.crosses(inner) | joined.geometry.intersects(inner)]
    assert len(across) >= 4
    np.testing.assert_allclose(joined["metrics:area"], joined.geometry.area)


def test_pieces_touching_at_a_corner_or_briefly_stay_apart() -> None:
    # two tiles side by side at x = 10: a field cut by the seam, and two fields meeting the seam from
    # either side over 1 m only (a corner contact): the first is joined, the second kept as two
    rows = [
        ("t1-field-1", "field", 1, "E", shapely.box(0, 0, 10, 10)),
        ("t2-field-1", "field", 1, "W", shapely.box(10, 0, 20, 10)),
        ("t1-field-2", "field", 2, "E", shapely.box(0, 20, 10, 30)),
        ("t2-field-2", "field", 2, "W", shapely.box(10, 29, 20, 40)),
        ("t2-tree-3", "tree", 3, "W", shapely.box(10, 10.5, 20, 19.5)),
        ("t1-field-4", "field", 4, "", shapely.box(2, 12, 8, 18)),
    ]
    frame = gpd.GeoDataFrame(
        {
            "id": [r[0] for r in rows],
            "class": [r[1] for r in rows],
            "instance": [r[2] for r in rows],
            "seams": [r[3] for r in rows],
            "metrics:area": [r[4].area for r in rows],
            "metrics:perimeter": [r[4].length for r in rows],
        },
        geometry=[r[4] for r in rows],
        crs="EPSG:32643",
    )
    out = merge_seams(frame, gsd=0.5)  # 4 px at 0.5 m: 2 m of shared edge needed
    assert sorted(out["id"]) == ["t1-field-1", "t1-field-2", "t1-field-4", "t2-field-2", "t2-tree-3"]
    joined = out.set_index("id").loc["t1-field-1"]
    assert joined.geometry.equals(shapely.box(0, 0, 20, 10))
    assert joined["metrics:area"] == pytest.approx(200.0)
    assert "seams" not in out.columns


def test_joined_confidence_is_the_area_weighted_mean() -> None:
    boxes = [shapely.box(0, 0, 10, 10), shapely.box(10, 0, 40, 10), shapely.box(50, 0, 60, 10)]
    frame = gpd.GeoDataFrame(
        {
            "id": ["t1-field-1", "t2-field-1", "t2-field-2"],
            "class": ["field"] * 3,
            "instance": [1, 1, 2],
            "seams": ["E", "W", ""],
            "magseg:confidence": np.array([0.2, 0.8, 0.5], dtype=np.float32),
        },
        geometry=boxes,
        crs="EPSG:32643",
    )
    out = merge_seams(frame, gsd=0.5).set_index("id")
    assert out.loc["t1-field-1", "magseg:confidence"] == pytest.approx((0.2 * 100 + 0.8 * 300) / 400)
    assert out.loc["t2-field-2", "magseg:confidence"] == pytest.approx(0.5)
