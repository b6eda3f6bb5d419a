"""Partitioned field layer: quadkey partitions, idempotent rewrites, bbox reads, merged exports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import morecantile
import pyarrow.parquet as pq
import pytest
from shapely.geometry import Polygon, box

from magseg.errors import CRSError, EmptyInputError, InputError
from magseg.mapping.layer import export_layer, partition_key, read_partitioned, write_partitioned

VALIDATOR = Path(__file__).parents[1] / "vector" / "fiboa_offline" / "fiboa_validate.py"
TMS = morecantile.tms.get("WebMercatorQuad")
D = 0.002  # square side, degrees: far smaller than a zoom-10 tile (~0.35 degrees)


def _layer(centres: list[tuple[float, float]], prefix: str = "field") -> gpd.GeoDataFrame:
    """Small squares around (lon, lat) centres, as polygonize would give them, in UTM 31N."""
    geoms = [box(x - D / 2, y - D / 2, x + D / 2, y + D / 2) for x, y in centres]
    wgs = gpd.GeoDataFrame(
        {
            "id": [f"{prefix}-{i + 1}" for i in range(len(geoms))],
            "class": "field",
            "instance": range(1, len(geoms) + 1),
            "confidence": [0.5 + i / 100 for i in range(len(geoms))],
        },
        geometry=geoms,
        crs="EPSG:4326",
    )
    utm = wgs.to_crs("EPSG:32631")
    utm["metrics:area"] = utm.area
    utm["metrics:perimeter"] = utm.length
    return utm[["id", "class", "instance", "metrics:area", "metrics:perimeter", "confidence", "geometry"]]


def _tile_centre(tile: morecantile.Tile, fx: float = 0.5, fy: float = 0.5) -> tuple[float, float]:
    b = TMS.bounds(tile)
    return (b.left + fx * (b.right - b.left), b.bottom + fy * (b.top - b.bottom))


@pytest.fixture
def centres() -> list[tuple[float, float]]:
    """Three polygons in each of four neighbouring zoom-10 tiles near Paris, away from tile edges."""
    base = TMS.tile(2.35, 48.85, 10)
    tiles = [morecantile.Tile(base.x + dx, base.y + dy, 10) for dx in (0, 1) for dy in (0, 1)]
    return [_tile_centre(t, fx, fy) for t in tiles for fx, fy in ((0.2, 0.2), (0.5, 0.6), (0.8, 0.3))]


def test_partition_key_uses_a_point_inside() -> None:
    # a thin U spanning two tiles whose centroid lies in its empty middle: the key must come from a point inside
    b = TMS.bounds(TMS.tile(2.35, 48.85, 10))
    w, h = b.right - b.left, b.top - b.bottom
    u = Polygon(
        [(b.left + 0.1 * w, b.bottom + 0.05 * h), (b.left + 1.9 * w, b.bottom + 0.05 * h),
         (b.left + 1.9 * w, b.bottom + 0.9 * h), (b.left + 1.85 * w, b.bottom + 0.9 * h),
         (b.left + 1.85 * w, b.bottom + 0.1 * h), (b.left + 0.15 * w, b.bottom + 0.1 * h),
         (b.left + 0.15 * w, b.bottom + 0.9 * h), (b.left + 0.1 * w, b.bottom + 0.9 * h)]
    )  # fmt: skip
    assert not u.contains(u.centroid)
    key = partition_key(u)
    point = u.representative_point()
    assert u.contains(point)
    assert key == TMS.quadkey(TMS.tile(point.x, point.y, 10))
    assert len(key) == 10 and partition_key(u, zoom=8) == key[:8]
    with pytest.raises(InputError):
        partition_key(Polygon())


def test_polygons_land_once_in_their_partition(centres: list[tuple[float, float]], tmp_path: Path) -> None:
    layer = _layer(centres)
    paths = write_partitioned(
        layer, tmp_path / "layer", collection="run1", determination_datetime="2024-05-01"
    )
    assert len(paths) == 4 and all(p.exists() for p in paths)
    seen: list[str] = []
    for path in paths:
        qk = path.parent.name.removeprefix("quadkey=")
        ids = pq.read_table(path, columns=["id"]).column("id").to_pylist()
        seen += ids
        for i in ids:
            x, y = centres[int(i.split("-")[1]) - 1]
            assert TMS.quadkey(TMS.tile(x, y, 10)) == qk
        table = pq.read_table(path)
        assert set(table.column("determination:method").to_pylist()) == {"auto-imagery"}
        assert set(table.column("collection").to_pylist()) == {"run1"}
    assert sorted(seen) == sorted(layer["id"])  # every polygon exactly once


def test_rerun_is_idempotent_and_replaces_stale_parts(
    centres: list[tuple[float, float]], tmp_path: Path
) -> None:
    root = tmp_path / "layer"
    layer = _layer(centres)
    first = write_partitioned(layer, root, collection="c")
    snapshot = {p: p.read_bytes() for p in root.rglob("*.parquet")}
    second = write_partitioned(layer, root, collection="c")
    assert second == first
    assert {p: p.read_bytes() for p in root.rglob("*.parquet")} == snapshot

    # a rerun that drops one polygon of a partition replaces that partition's part; other batches stay
    other = _layer([(x + D * 2, y) for x, y in centres[:3]], prefix="other")
    write_partitioned(other, root, collection="c")
    rerun = layer.drop(index=1)
    write_partitioned(rerun, root, collection="c")
    back = read_partitioned(root)
    assert sorted(back["id"]) == sorted([*rerun["id"], *other["id"]])
    assert len(list(root.rglob("*.parquet"))) == 5  # 4 partitions + the other batch's part
    assert not list(root.rglob(".*"))  # no temporary file left


def test_read_all_and_by_bbox(centres: list[tuple[float, float]], tmp_path: Path) -> None:
    root = tmp_path / "layer"
    layer = _layer(centres)
    write_partitioned(layer, root, collection="c")
    back = read_partitioned(root)
    assert sorted(back["id"]) == sorted(layer["id"]) and len(back) == len(layer)
    assert back.crs.equals("OGC:CRS84") or back.crs.to_epsg() == 4326
    assert "confidence" in back.columns

    wgs = layer.to_crs("EPSG:4326").set_index("id").geometry
    x, y = centres[4]
    bbox = (x - D, y - D, x + 0.3, y + 0.001)
    want = sorted(wgs[wgs.intersects(box(*bbox))].index)
    assert 0 < len(want) < len(layer)
    assert sorted(read_partitioned(root, bbox=bbox)["id"]) == want
    empty = read_partitioned(root, bbox=(-60.0, -10.0, -59.0, -9.0))
    assert len(empty) == 0 and "id" in empty.columns


def test_export_parquet_validates_and_gpkg_opens(centres: list[tuple[float, float]], tmp_path: Path) -> None:
    root = tmp_path / "layer"
    layer = _layer(centres)
    write_partitioned(layer, root, collection="test-run", determination_datetime="2024-05-01")
    out = tmp_path / "fields.parquet"
    export_layer(root, out)
    run = subprocess.run(
        [sys.executable, str(VALIDATOR), str(out), "-n", "-1"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VALID" in run.stdout and "INVALID" not in run.stdout
    assert sorted(pq.read_table(out).column("id").to_pylist()) == sorted(layer["id"])

    gpkg = tmp_path / "fields.gpkg"
    export_layer(root, gpkg)
    back = gpd.read_file(gpkg)
    assert sorted(back["id"]) == sorted(layer["id"])
    assert set(back["collection"]) == {"test-run"}
    assert back.to_crs("EPSG:32631").area.sum() == pytest.approx(layer.area.sum(), rel=1e-6)


def test_errors(centres: list[tuple[float, float]], tmp_path: Path) -> None:
    layer = _layer(centres)
    with pytest.raises(CRSError):
        write_partitioned(layer.set_crs(None, allow_override=True), tmp_path / "a")
    with pytest.raises(InputError, match="repeats ids"):
        write_partitioned(layer.assign(id="same"), tmp_path / "a")
    assert write_partitioned(layer.iloc[:0], tmp_path / "a") == []
    with pytest.raises(InputError, match="no such layer folder"):
        read_partitioned(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyInputError):
        read_partitioned(tmp_path / "empty")
    write_partitioned(layer.iloc[:3], tmp_path / "mixed", collection="a")
    write_partitioned(_layer(centres[3:6], prefix="b"), tmp_path / "mixed", collection="b")
    with pytest.raises(InputError, match="collections"):
        export_layer(tmp_path / "mixed", tmp_path / "out.gpkg")
    export_layer(tmp_path / "mixed", tmp_path / "out.gpkg", collection="ab")
    assert set(gpd.read_file(tmp_path / "out.gpkg")["collection"]) == {"ab"}
