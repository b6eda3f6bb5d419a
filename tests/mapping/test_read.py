"""read_tile: tiles mosaicked from synthetic COG scenes (2 scenes of 256 px at 0.5 m, side by side)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from magseg.errors import InputError
from magseg.mapping.plan import Tile
from magseg.mapping.read import read_tile
from magseg.synth import write_dataset

GSD = 0.5
SIZE_M = 16.0  # 32 px tiles: many fit in one 128 m scene
MARGIN_M = 4.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synth") / "ds", 2, 256, GSD, seed=3)


@pytest.fixture(scope="module")
def items(dataset: Path) -> list[pystac.Item]:
    return [pystac.Item.from_file(str(p)) for p in sorted((dataset / "stac" / "items").glob("*.json"))]


def scene_bounds(item: pystac.Item) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = item.properties["proj:bbox"]
    return (x0, y0, x1, y1)


def epsg(item: pystac.Item) -> int:
    return int(str(item.properties["proj:code"]).split(":")[1])


def tile_at(item: pystac.Item, x: float, y: float) -> Tile:
    """The grid tile whose core holds the point (x, y) of the item's CRS."""
    return Tile(epsg(item), math.floor(x / SIZE_M), math.floor(y / SIZE_M), SIZE_M, MARGIN_M)


def cog_window(item: pystac.Item, bounds: tuple[float, float, float, float]) -> np.ndarray:
    with rasterio.open(item.assets["image"].href) as src:
        window = rasterio.windows.from_bounds(*bounds, transform=src.transform)
        return src.read(window=window.round_offsets().round_lengths())


def test_tile_inside_one_scene_equals_cog_pixels(items: list[pystac.Item]) -> None:
    x0, y0, x1, y1 = scene_bounds(items[0])
    tile = tile_at(items[0], (x0 + x1) / 2, (y0 + y1) / 2)
    got = read_tile(tile, items, GSD)
    side = round((SIZE_M + 2 * MARGIN_M) / GSD)
    assert got.image.shape == (3, side, side) and got.image.dtype == np.uint8
    assert got.mask.shape == (side, side) and got.mask.all()
    assert got.crs.to_epsg() == epsg(items[0])
    assert (got.transform.c, got.transform.f) == (tile.read_bounds[0], tile.read_bounds[3])
    assert got.transform.a == GSD and got.transform.e == -GSD
    np.testing.assert_array_equal(got.image, cog_window(items[0], tile.read_bounds))
    assert got.scenes == [items[0].id]
    assert got.datetime == items[0].datetime
    assert got.warnings == []


def test_tile_straddling_two_scenes_is_filled_from_both(items: list[pystac.Item]) -> None:
    a, b = scene_bounds(items[0]), scene_bounds(items[1])
    assert a[2] == b[0]  # side by side along x
    seam = a[2]
    tile = tile_at(items[0], seam - 1.0, (a[1] + a[3]) / 2)
    rb = tile.read_bounds
    assert rb[0] < seam < rb[2]
    got = read_tile(tile, items, GSD)
    assert got.mask.all()
    assert sorted(got.scenes) == sorted(it.id for it in items)
    assert got.datetime == max(it.datetime for it in items if it.datetime is not None)
    # Each side of the seam holds its own scene's pixels.
    cut = round((seam - rb[0]) / GSD)
    np.testing.assert_array_equal(got.image[:, :, :cut], cog_window(items[0], (rb[0], rb[1], seam, rb[3])))
    np.testing.assert_array_equal(got.image[:, :, cut:], cog_window(items[1], (seam, rb[1], rb[2], rb[3])))


def test_order_decides_which_scene_fills_first(items: list[pystac.Item]) -> None:
    a = scene_bounds(items[0])
    tile = tile_at(items[0], (a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    # Scene 1 does not cover this tile: it is skipped, scene 0 fills it whatever the order.
    got = read_tile(tile, [items[1], items[0]], GSD)
    assert got.scenes == [items[0].id] and got.mask.all()


def test_tile_partly_outside_is_masked_there(items: list[pystac.Item]) -> None:
    a = scene_bounds(items[0])
    tile = tile_at(items[0], (a[0] + a[2]) / 2, a[3] - 1.0)  # core just under the top edge
    rb = tile.read_bounds
    assert rb[3] > a[3]
    got = read_tile(tile, items, GSD)
    outside_rows = round((rb[3] - a[3]) / GSD)
    assert outside_rows > 0
    assert not got.mask[:outside_rows].any()
    assert got.mask[outside_rows:].all()
    assert (got.image[:, :outside_rows] == 0).all()
    np.testing.assert_array_equal(
        got.image[:, outside_rows:], cog_window(items[0], (rb[0], rb[1], rb[2], a[3]))
    )


def test_corrupt_and_missing_assets_are_skipped_with_warnings(
    items: list[pystac.Item], tmp_path: Path
) -> None:
    bad_file = tmp_path / "bad.tif"
    bad_file.write_bytes(b"II*\x00 this is not a tiff" * 50)
    corrupt = items[0].clone()
    corrupt.id = "corrupt"
    corrupt.assets["image"].href = str(bad_file)
    gone = items[0].clone()
    gone.id = "gone"
    del gone.assets["image"]
    a = scene_bounds(items[0])
    tile = tile_at(items[0], (a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    got = read_tile(tile, [corrupt, gone, items[0]], GSD)
    assert got.scenes == [items[0].id] and got.mask.all()
    np.testing.assert_array_equal(got.image, cog_window(items[0], tile.read_bounds))
    assert len(got.warnings) == 2
    assert any("corrupt" in w and "cannot read" in w for w in got.warnings)
    assert any("gone" in w and "no asset" in w for w in got.warnings)
    with pytest.raises(InputError, match=r"tile .*: no imagery") as err:
        read_tile(tile, [corrupt, gone], GSD)
    assert "\n" not in str(err.value)


def test_no_coverage_raises_input_error(items: list[pystac.Item]) -> None:
    a = scene_bounds(items[0])
    far = tile_at(items[0], a[0] - 10_000.0, a[1])
    with pytest.raises(InputError, match=rf"tile {far.id}: no imagery") as err:
        read_tile(far, items, GSD)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="no imagery"):
        read_tile(far, [], GSD)


def test_scene_in_another_crs_is_reprojected(items: list[pystac.Item], tmp_path: Path) -> None:
    src_item = items[0]
    other = 32644 if epsg(src_item) != 32644 else 32643  # the neighbouring UTM zone
    with rasterio.open(src_item.assets["image"].href) as src:
        transform, w, h = calculate_default_transform(
            src.crs, f"EPSG:{other}", src.width, src.height, *src.bounds
        )
        profile = {**src.profile, "driver": "GTiff", "crs": f"EPSG:{other}", "transform": transform}
        profile.update(width=w, height=h)
        out = tmp_path / "warped.tif"
        with rasterio.open(out, "w", **profile) as dst:
            for band in (1, 2, 3):
                reproject(rasterio.band(src, band), rasterio.band(dst, band), resampling=Resampling.nearest)
    warped = src_item.clone()
    warped.id = "warped"
    warped.assets["image"].href = str(out)
    a = scene_bounds(src_item)
    tile = tile_at(src_item, (a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    got = read_tile(tile, [warped], GSD)
    ref = cog_window(src_item, tile.read_bounds)
    assert got.scenes == ["warped"] and got.mask.mean() > 0.99
    # Two nearest-neighbour warps move pixels by at most ~1 px: colours agree on average.
    diff = np.abs(got.image.astype(int) - ref.astype(int))[:, got.mask]
    assert diff.mean() < np.abs(ref.astype(int) - ref.mean()).mean()
