"""Plans across UTM zones: one grid per zone, tiles cut on the zone lines, fields joined across them."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from pyproj import Geod

from magseg.cli.plan import command
from magseg.errors import InputError
from magseg.mapping import read_partitioned
from magseg.mapping.finalize import finish_layer
from magseg.mapping.plan import plan_region
from magseg.mapping.store import RunStore
from magseg.mapping.tile import SIDES, cut_to_zone, zone_strip
from magseg.mapping.zones import plan_zones, zone_parts

LINE = 72.0  # the line between UTM zones 42 and 43


def test_zone_parts_split_on_zone_lines() -> None:
    parts = zone_parts((68.0, 8.0, 97.0, 37.0))
    assert [epsg for _, epsg, _ in parts] == list(range(32642, 32648))
    assert parts[0][0] == (68.0, 8.0, 72.0, 37.0) and parts[0][2] == (None, 72.0)
    assert parts[1][2] == (72.0, 78.0) and parts[-1][2] == (96.0, None)
    assert zone_parts((10.0, -5.0, 11.0, -4.0)) == [((10.0, -5.0, 11.0, -4.0), 32732, (None, None))]


def test_india_plan_by_zone_is_analytic() -> None:
    plan = plan_zones((68.0, 8.0, 97.0, 37.0))
    assert len(plan.parts) == 6 and plan.n_tiles == sum(p.n_tiles for p in plan.parts) > 10**8
    assert sum(len(p.runs) for p in plan.parts) < 10**6  # per row, not per tile
    last = plan.tile_at(plan.n_tiles - 1)
    assert last.epsg == 32647 and last.cut_w == 96.0 and last.id in plan
    with pytest.raises(InputError, match="split"):
        plan_region((68.0, 8.0, 97.0 + 20, 37.0))  # one zone still refuses a continent


def test_one_zone_plan_is_the_region_plan() -> None:
    box = (10.0, 45.0, 10.02, 45.01)
    assert [t.id for t in plan_zones(box).tiles] == [t.id for t in plan_region(box).tiles]


def test_cli_reports_each_zone() -> None:
    result = CliRunner().invoke(command, ["--bbox", "68", "8", "97", "37", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert [z["epsg"] for z in out["zones"]] == list(range(32642, 32648))
    assert sum(z["tiles"] for z in out["zones"]) == out["tiles"]
    assert sum(z["gpu_hours"] for z in out["zones"]) == pytest.approx(out["gpu_hours"])


def _pieces(tile, field: shapely.Polygon) -> gpd.GeoDataFrame:  # type: ignore[no-untyped-def]
    """The tile's piece of a WGS 84 field, cut on its core like magseg.mapping.tile, with its seam flags."""
    local = gpd.GeoSeries([field], crs=4326).to_crs(tile.epsg).iloc[0]
    core = shapely.box(*tile.bounds)
    piece = shapely.intersection(local, core)
    if piece.is_empty:
        return gpd.GeoDataFrame({"id": [], "class": [], "seams": []}, geometry=[], crs=tile.epsg)
    x0, y0, x1, y1 = tile.bounds
    bx0, by0, bx1, by1 = piece.bounds
    reach = {"W": bx0 <= x0 + 1e-6, "S": by0 <= y0 + 1e-6, "E": bx1 >= x1 - 1e-6, "N": by1 >= y1 - 1e-6}
    frame = gpd.GeoDataFrame(
        {
            "id": [f"{tile.id}-field-1"],
            "class": ["field"],
            "instance": [1],
            "metrics:area": [piece.area],
            "metrics:perimeter": [piece.length],
            "seams": [",".join(s for s in SIDES if reach[s])],
        },
        geometry=[piece],
        crs=tile.epsg,
    )
    return cut_to_zone(frame, tile)


def test_a_field_across_a_zone_line_comes_out_whole(tmp_path: Path) -> None:
    plan = plan_zones((LINE - 0.002, 20.0, LINE + 0.002, 20.0015), gsd=0.5, tile_px=128)
    assert [p.epsg for p in plan.parts] == [32642, 32643]
    across = shapely.box(LINE - 0.0008, 20.0003, LINE + 0.0006, 20.0010)  # ~150 m x 80 m, over the line
    west = shapely.box(LINE - 0.0018, 20.0003, LINE - 0.0012, 20.0010)  # inside zone 42 only
    store = RunStore(tmp_path / "run")
    store.open({"test": "zones"})
    record = {"status": "ok", "message": "", "scenes": [], "warnings": []}
    record |= {"patches": 0, "tokens": 0, "valid_patches": 0}
    for tile in plan.tiles:
        strip = zone_strip(tile)
        assert strip is not None and (tile.cut_e == LINE) == (tile.epsg == 32642)
        frames = [_pieces(tile, f) for f in (across, west)]
        frames = [f.assign(id=f["id"] + f"-{i}") for i, f in enumerate(frames) if len(f)]
        if frames:
            pieces = gpd.GeoDataFrame(
                pd.concat(frames, ignore_index=True), geometry="geometry", crs=tile.epsg
            )
            store.save(tile.id, pieces, {}, record)
        else:
            store.save(tile.id, None, {}, record)
    tally = finish_layer(store, plan, "magseg", base=0)
    layer = read_partitioned(tmp_path / "run" / "fields")
    geod = Geod(ellps="WGS84")
    areas = sorted(abs(geod.geometry_area_perimeter(g)[0]) for g in layer.geometry)
    want = sorted(abs(geod.geometry_area_perimeter(g)[0]) for g in (across, west))
    assert len(layer) == 2 == sum(tally["polygons_by_class"].values()), layer[["id"]]
    assert layer.geometry.geom_type.isin(["Polygon"]).all()
    assert np.allclose(areas, want, rtol=1e-3)
