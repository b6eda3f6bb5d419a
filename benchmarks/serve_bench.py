"""The tile server under load, on loopback: cold and cached tile latencies, errors, and a bare rio-tiler read.

``run``: a synthetic catalog (2 x 2 scenes of 256 px) is served by the real app (Ray Serve, the bundled
model on CPU, the region tests' small tiling). Cold: the first request of each z18 tile over the catalog
(its grid tiles computed by the model). Cached: ``requests`` requests (2,000 by default) at concurrency 32
over those tiles, PNG and GeoJSON alike. Baseline: rio-tiler's mosaic read of the same tiles' imagery in
this process (what any tile server pays at least), 200 times; the ratio is cached p95 / bare p95.

``run_layer`` (section ``layer``): a finished layer's /layer tiles at z10..z16, in this process through
LayerService (what the route awaits). The layer: ~34,000 fields (150 x 100 m, 12 vertices, a tenth trees
or ponds) over 24 x 24 km in UTM, written by write_partitioned. Cold: a fresh service, the first request of
each tile, PNG and MVT (parts loaded on first use, overview rasters below z12). Cached: repeated requests
of those tiles. Baseline: a stock TiTiler COG tile read of the same tiles (rio-tiler Reader.tile of a
3-band 10 m COG of the area with overviews, rendered to PNG). Ratios: layer p95 / COG p95.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import tempfile
import time
from pathlib import Path

import httpx
import morecantile
import numpy as np
import rasterio
import shapely

from magseg.serve.render import imagery_png
from magseg.stac import item_footprint, open_catalog
from magseg.synth import write_dataset

__all__ = ["run", "run_layer"]

TMS = morecantile.tms.get("WebMercatorQuad")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values) * 1000.0
    return {f"p{q}_ms": round(float(np.percentile(arr, q)), 1) for q in (50, 95, 99)}


async def _load(base: str, paths: list[str], n: int, concurrency: int) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    rng = random.Random(0)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:

        async def one(path: str) -> None:
            async with gate:
                t0 = time.perf_counter()
                answer = await client.get(path)
                latencies.append(time.perf_counter() - t0)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

        await asyncio.gather(*(one(rng.choice(paths)) for _ in range(n)))
    return latencies, statuses


def run(quick: bool = False) -> list[dict[str, object]]:
    import ray
    from ray import serve

    from magseg.serve.app import build_app

    work = Path(tempfile.mkdtemp(prefix="servebench"))
    requests = 200 if quick else 2000
    try:
        data = write_dataset(work / "synth", 4, 256, 0.5, seed=5)
        items = open_catalog(data).search()
        w, s, e, n = shapely.union_all([item_footprint(it) for it in items]).bounds
        tiles = list(TMS.tiles(w, s, e, n, [18]))
        os.environ.setdefault("RAY_ENABLE_AUTO_CONNECT", "0")
        ray.init(address="local", include_dashboard=False, configure_logging=False, log_to_driver=False)
        port = _free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(
            build_app({"stac": str(data), "tile_px": 128, "margin_px": 64}), name="bench", route_prefix="/"
        )
        base = f"http://127.0.0.1:{port}"
        cold: list[float] = []
        with httpx.Client(base_url=base, timeout=600) as client:
            for t in tiles:  # one at a time: each is a first request
                t0 = time.perf_counter()
                client.get(f"/tiles/{t.z}/{t.x}/{t.y}.png").raise_for_status()
                cold.append(time.perf_counter() - t0)
            for t in tiles:
                client.get(f"/tiles/{t.z}/{t.x}/{t.y}.geojson").raise_for_status()
        paths = [f"/tiles/{t.z}/{t.x}/{t.y}.{ext}" for t in tiles for ext in ("png", "geojson")]
        t0 = time.perf_counter()
        cached, statuses = asyncio.run(_load(base, paths, requests, 32))
        wall = time.perf_counter() - t0
        bare: list[float] = []
        for i in range(200):
            t = tiles[i % len(tiles)]
            hits = [it for it in items if item_footprint(it).intersects(shapely.box(*TMS.bounds(t)))]
            t1 = time.perf_counter()
            imagery_png(hits, t)
            bare.append(time.perf_counter() - t1)
        serve.shutdown()
        ray.shutdown()
        errors = sum(v for k, v in statuses.items() if k >= 500)
        return [
            {"bench": "cold tiles (model)", "requests": len(cold), **_pct(cold)},
            {
                "bench": "cached tiles, concurrency 32",
                "requests": requests,
                "server_errors": errors,
                "other_non_200": sum(v for k, v in statuses.items() if k != 200 and k < 500),
                "req_per_s": round(requests / wall, 1),
                **_pct(cached),
            },
            {"bench": "bare rio-tiler mosaic read + PNG", "requests": len(bare), **_pct(bare)},
            {
                "bench": "ratio cached p95 / bare p95",
                "ratio": round(float(np.percentile(cached, 95) / np.percentile(bare, 95)), 2),
            },
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


LAYER_CENTRE = (76.9, 29.7)  # lon, lat: UTM zone 43N
LAYER_SIDE_M = 24_000.0
LAYER_EPSG = 32643


def _bench_layer(root: Path, seed: int = 3) -> tuple[float, float, float, float]:
    """Write the bench layer under ``root``; returns its UTM bounds."""
    import geopandas as gpd
    from pyproj import Transformer

    from magseg.mapping.layer import write_partitioned

    rng = np.random.default_rng(seed)
    cx, cy = Transformer.from_crs(4326, LAYER_EPSG, always_xy=True).transform(*LAYER_CENTRE)
    x0, y0 = cx - LAYER_SIDE_M / 2, cy - LAYER_SIDE_M / 2
    xs, ys = np.meshgrid(
        np.arange(x0, x0 + LAYER_SIDE_M - 150, 158), np.arange(y0, y0 + LAYER_SIDE_M - 100, 108)
    )
    xs, ys = xs.ravel(), ys.ravel()
    # a 150 x 100 m rectangle with a jittered midpoint on every side and at the thirds: 12 vertices
    u = np.array([0, 50, 100, 150, 150, 150, 150, 100, 50, 0, 0, 0], dtype=float)
    v = np.array([0, 0, 0, 0, 33, 66, 100, 100, 100, 100, 66, 33], dtype=float)
    jitter = rng.uniform(-4, 4, size=(len(xs), 2, 12))
    rings = np.stack([xs[:, None] + u + jitter[:, 0], ys[:, None] + v + jitter[:, 1]], axis=-1)
    geoms = shapely.make_valid(shapely.polygons(rings))
    classes = rng.choice(np.array(["field", "tree", "pond"]), size=len(xs), p=[0.9, 0.07, 0.03])
    ids = np.array([f"bench-{i:06d}" for i in range(len(xs))])
    frame = gpd.GeoDataFrame(
        {
            "id": ids,
            "class": classes,
            "instance": np.arange(1, len(xs) + 1),
            "metrics:area": shapely.area(geoms),
            "metrics:perimeter": shapely.length(geoms),
        },
        geometry=geoms,
        crs=f"EPSG:{LAYER_EPSG}",
    )
    write_partitioned(frame, root, determination_datetime="2024-05-01")
    return (x0, y0, x0 + LAYER_SIDE_M, y0 + LAYER_SIDE_M)


def _bench_cog(path: Path, bounds: tuple[float, float, float, float], gsd: float = 10.0) -> None:
    """A 3-band uint8 COG of the area (noise over class stripes), with overviews, as TiTiler serves."""
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin
    from rio_cogeo.cogeo import cog_translate
    from rio_cogeo.profiles import cog_profiles

    side = int((bounds[2] - bounds[0]) / gsd)
    rng = np.random.default_rng(1)
    base = (np.arange(side)[None, :] // 15 % 3 * 60 + 60).astype(np.uint8)
    data = np.stack([np.clip(base + rng.integers(0, 40, (side, side)), 0, 255).astype(np.uint8)] * 3)
    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 3,
        "dtype": "uint8",
        "crs": f"EPSG:{LAYER_EPSG}",
        "transform": from_origin(bounds[0], bounds[3], gsd, gsd),
    }
    with MemoryFile() as mem, mem.open(**profile) as src:
        src.write(data)
        with rasterio.Env(GDAL_NUM_THREADS="1"):
            cog_translate(src, str(path), cog_profiles.get("deflate"), quiet=True, in_memory=True)


def _layer_tiles(n_per_zoom: int, seed: int = 0) -> list[morecantile.Tile]:
    """Up to ``n_per_zoom`` random tiles at each of z10..z16 inside the bench layer."""
    from pyproj import Transformer

    half = LAYER_SIDE_M / 2 * 0.9
    to_lonlat = Transformer.from_crs(LAYER_EPSG, 4326, always_xy=True)
    cx, cy = Transformer.from_crs(4326, LAYER_EPSG, always_xy=True).transform(*LAYER_CENTRE)
    w, s = to_lonlat.transform(cx - half, cy - half)
    e, n = to_lonlat.transform(cx + half, cy + half)
    rng = random.Random(seed)
    tiles: list[morecantile.Tile] = []
    for z in range(10, 17):
        inside = list(TMS.tiles(w, s, e, n, [z]))
        tiles += rng.sample(inside, min(n_per_zoom, len(inside)))
    return tiles


def run_layer(quick: bool = False) -> list[dict[str, object]]:
    """Layer tile latency at z10..z16 (cold and cached) against a rio-tiler COG tile, in one process."""
    from rio_tiler.io import Reader

    from magseg.serve.service import LayerService

    work = Path(tempfile.mkdtemp(prefix="layerbench"))
    try:
        t0 = time.perf_counter()
        bounds = _bench_layer(work / "fields")
        _bench_cog(work / "image.tif", bounds)
        setup_s = time.perf_counter() - t0
        tiles = _layer_tiles(6 if quick else 12)
        order = [(kind, t) for t in tiles for kind in ("png", "mvt")]
        random.Random(1).shuffle(order)
        service = LayerService(work / "fields")
        cold: dict[tuple[str, int], list[float]] = {}
        sizes: dict[str, list[int]] = {"png": [], "mvt": []}

        async def timed(kind: str, t: morecantile.Tile) -> tuple[float, int]:
            t1 = time.perf_counter()
            body = await service.tile(kind, t.z, t.x, t.y)
            return time.perf_counter() - t1, len(body)

        async def cold_pass() -> None:
            for kind, t in order:
                seconds, size = await timed(kind, t)
                cold.setdefault((kind, t.z), []).append(seconds)
                sizes[kind].append(size)

        async def cached_pass(n: int) -> list[float]:
            rng = random.Random(2)
            return [(await timed(*rng.choice(order)))[0] for _ in range(n)]

        asyncio.run(cold_pass())
        cached = asyncio.run(cached_pass(500 if quick else 2000))
        cog: list[float] = []
        with rasterio.Env(GDAL_CACHEMAX=64):
            for i in range(3 * len(tiles)):
                t = tiles[i % len(tiles)]
                t1 = time.perf_counter()
                with Reader(str(work / "image.tif")) as src:
                    src.tile(t.x, t.y, t.z).render(img_format="PNG")
                cog.append(time.perf_counter() - t1)
        cog_p95 = float(np.percentile(cog, 95))
        rows: list[dict[str, object]] = [
            {
                "bench": "layer setup (write ~34k fields + COG)",
                "seconds": round(setup_s, 1),
                "parts": len(service.layer.parts),
            }
        ]
        for z in range(10, 17):
            png, mvt = cold[("png", z)], cold[("mvt", z)]
            rows.append(
                {
                    "bench": f"layer z{z} cold (png | mvt)",
                    "requests": len(png) + len(mvt),
                    "p50_ms": f"{_pct(png)['p50_ms']} | {_pct(mvt)['p50_ms']}",
                    "p95_ms": f"{_pct(png)['p95_ms']} | {_pct(mvt)['p95_ms']}",
                }
            )
        every_cold = [v for values in cold.values() for v in values]
        rows += [
            {"bench": "layer cold, z10-z16, png+mvt", "requests": len(every_cold), **_pct(every_cold)},
            {"bench": "layer cached, z10-z16, png+mvt", "requests": len(cached), **_pct(cached)},
            {"bench": "COG tile, rio-tiler Reader.tile + PNG", "requests": len(cog), **_pct(cog)},
            {
                "bench": "ratio layer p95 / COG p95",
                "cold": round(float(np.percentile(every_cold, 95)) / cog_p95, 3),
                "cached": round(float(np.percentile(cached, 95)) / cog_p95, 3),
                "mvt_kb_max": round(max(sizes["mvt"]) / 1024, 1),
            },
        ]
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
