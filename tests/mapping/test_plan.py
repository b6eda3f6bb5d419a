"""Region plans: deterministic UTM tiles that cover the bbox, analytic counts, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import box

from magseg.cli.plan import command
from magseg.errors import InputError
from magseg.mapping import RegionPlan, plan_region, read_model_rates, utm_epsg
from magseg.mapping.plan import bbox_outline

SMALL = (10.0, 45.0, 10.05, 45.03)  # ~4 km x 3 km in northern Italy (UTM 32N)
SOUTH = (-47.52, -15.81, -47.47, -15.77)  # Brasilia (UTM 23S)


def ids(plan: RegionPlan) -> list[str]:
    return [t.id for t in plan.tiles]


def test_same_bbox_gives_same_ids() -> None:
    a, b = plan_region(SMALL), plan_region(SMALL)
    assert ids(a) == ids(b)
    assert len(set(ids(a))) == a.n_tiles > 1
    assert a.crs == "EPSG:32632" and all(i.startswith("32632_") for i in ids(a))


def test_sub_bbox_gives_subset_of_tiles() -> None:
    w, s, e, n = SMALL
    sub = plan_region((w + 0.011, s + 0.007, e - 0.013, n - 0.009))
    whole = plan_region(SMALL)
    assert sub.epsg == whole.epsg
    assert 0 < sub.n_tiles < whole.n_tiles
    assert set(ids(sub)) <= set(ids(whole))
    assert all(i in whole for i in ids(sub)) and "1_2_3" not in whole


def test_tiles_are_on_the_global_grid_with_margins() -> None:
    plan = plan_region(SOUTH, gsd=0.3, tile_px=512, margin_px=32)
    assert plan.crs == "EPSG:32723"
    step = 512 * 0.3
    for tile in plan.tiles:
        x0, y0, x1, y1 = tile.bounds
        assert math.isclose(x0 / step, round(x0 / step)) and math.isclose(y0 / step, round(y0 / step))
        assert math.isclose(x1 - x0, step) and math.isclose(y1 - y0, step)
        assert tile.id == f"32723_{round(x0 / step)}_{round(y0 / step)}"
        r0, s0, r1, s1 = tile.read_bounds
        assert np.allclose([x0 - r0, y0 - s0, r1 - x1, s1 - y1], 32 * 0.3)


def test_tiles_cover_the_bbox() -> None:
    plan = plan_region(SMALL)
    cores = shapely.union_all([box(*t.bounds) for t in plan.tiles])
    outline = bbox_outline(plan.bbox, plan.epsg)
    assert cores.buffer(1e-6).contains(outline)
    # and in WGS 84: the tiles' footprints hold the bbox's corners and centre
    footprints = shapely.union_all([t.footprint for t in plan.tiles])
    w, s, e, n = SMALL
    for lon, lat in [(w, s), (w, n), (e, s), (e, n), ((w + e) / 2, (s + n) / 2)]:
        assert footprints.buffer(1e-9).contains(shapely.Point(lon, lat))


def test_counts_match_brute_force() -> None:
    bbox = (30.0, 50.0, 30.12, 50.05)  # wide enough that the UTM outline is visibly curved
    plan = plan_region(bbox, tile_px=2048)
    outline = bbox_outline(plan.bbox, plan.epsg)
    step = plan.tile_m
    minx, miny, maxx, maxy = outline.bounds
    expected = set()
    for col in range(math.floor(minx / step) - 1, math.ceil(maxx / step) + 1):
        for row in range(math.floor(miny / step) - 1, math.ceil(maxy / step) + 1):
            cell = box(col * step, row * step, (col + 1) * step, (row + 1) * step)
            if cell.intersection(outline).area > 0:
                expected.add(f"{plan.epsg}_{col}_{row}")
    assert set(ids(plan)) == expected
    assert plan.n_tiles == len(expected)
    assert plan.n_patches == len(expected) * (2048 // 64) ** 2
    assert math.isclose(plan.area_km2, len(expected) * step**2 / 1e6)


def test_estimate_scales_with_throughput() -> None:
    plan = plan_region(SMALL)
    slow, fast = plan.estimate(37.0, 10.0), plan.estimate(37.0, 20.0)
    assert slow["tokens"] == pytest.approx(plan.n_patches * 37.0)
    assert slow["gpu_hours"] == pytest.approx(2 * fast["gpu_hours"])
    assert slow["gpu_hours"] == pytest.approx(slow["patches_with_margin"] / 10.0 / 3600)
    assert slow["patches_with_margin"] > slow["patches"]
    with pytest.raises(InputError):
        plan.estimate(37.0, 0.0)


def test_india_scale_plan_is_analytic() -> None:
    plan = plan_region((68.0, 8.0, 97.0, 37.0), tile_px=1024)
    assert plan.crs == f"EPSG:{utm_epsg(82.5, 22.5)}" == "EPSG:32644"
    assert plan.n_tiles > 10**7
    assert len(plan.runs) < 10**4  # stored per row, not per tile
    first = next(plan.tiles)
    assert first.id in plan


@pytest.mark.parametrize(
    "bbox, words",
    [
        ((10, 45, 10.1), "four numbers"),
        ((10, 45, float("nan"), 46), "NaN"),
        ((10, 45, 200, 46), "outside"),
        ((170, -20, -170, -10), "antimeridian"),
        ((10, 46, 11, 45), "inverted"),
        ((10, 45, 10, 46), "no area"),
        ((10, 80, 11, 85), "84N"),
        ((0, 10, 50, 20), "split"),
    ],
)
def test_bad_bboxes_raise_one_line_errors(bbox: tuple[float, ...], words: str) -> None:
    with pytest.raises(InputError) as info:
        plan_region(bbox)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_bad_grid_settings_raise() -> None:
    with pytest.raises(InputError, match="multiple"):
        plan_region(SMALL, tile_px=1000)
    with pytest.raises(InputError, match="gsd"):
        plan_region(SMALL, gsd=0)


def test_cli_json_uses_the_bundled_model_rates() -> None:
    rates = read_model_rates()
    assert rates.patch == 64 and rates.tokens_per_patch and rates.patches_per_s
    result = CliRunner().invoke(command, ["--bbox", *map(str, SMALL), "--json", "--patches-per-s", "50"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    plan = plan_region(SMALL)
    assert out["tiles"] == plan.n_tiles and out["patches"] == plan.n_patches
    assert out["tokens"] == pytest.approx(plan.n_patches * rates.tokens_per_patch)
    # the bundle re-reads seams: up to a quarter more patches generated, the GPU-hours count them
    assert 0.1 < rates.rereads_per_patch <= 0.25 and out["rereads_per_patch"] == rates.rereads_per_patch
    calls = 1 + rates.rereads_per_patch
    assert out["gpu_hours"] == pytest.approx(out["patches_with_margin"] * calls / 50 / 3600)
    assert out["gpu_rate_assumed"] is False
    assert out["measured_hours"] == pytest.approx(out["patches_with_margin"] / rates.patches_per_s / 3600)


def test_cli_text_states_the_assumption(tmp_path: Path) -> None:
    result = CliRunner().invoke(command, ["--bbox", *map(str, SMALL)])
    assert result.exit_code == 0, result.output
    assert "ASSUMED" in result.output and "GPU-hours" in result.output and "CPU-hours" in result.output
    # a model folder without eval.json: tokens and CPU rate are unknown, not invented
    result = CliRunner().invoke(command, ["--bbox", *map(str, SMALL), "--model", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "tokens     unknown" in result.output


def test_cli_bad_bbox_is_an_input_error() -> None:
    result = CliRunner().invoke(command, ["--bbox", "170", "0", "-170", "1"])
    assert isinstance(result.exception, InputError)


def test_model_eval_json_sets_patch_and_rates(tmp_path: Path) -> None:
    (tmp_path / "eval.json").write_text(
        json.dumps({"tokens_per_patch": 10.0, "patches_per_s": 4.0, "config": {"patch": 32}})
    )
    rates = read_model_rates(tmp_path)
    assert (rates.patch, rates.tokens_per_patch, rates.patches_per_s) == (32, 10.0, 4.0)
    result = CliRunner().invoke(command, ["--bbox", *map(str, SMALL), "--json", "--model", str(tmp_path)])
    out = json.loads(result.output)
    assert out["patch_px"] == 32
    assert out["patches"] == plan_region(SMALL, patch=32).n_patches == 4 * plan_region(SMALL).n_patches
    assert out["tokens"] == pytest.approx(out["patches"] * 10.0)
