"""The tile server under load, on loopback: cold and cached tile latencies, errors, and a bare rio-tiler read.

A synthetic catalog (2 x 2 scenes of 256 px) is served by the real app (Ray Serve, the bundled model on
CPU, the region tests' small tiling). Cold: the first request of each z18 tile over the catalog (its grid
tiles computed by the model). Cached: ``requests`` requests (2,000 by default) at concurrency 32 over
those tiles, PNG and GeoJSON alike. Baseline: rio-tiler's mosaic read of the same tiles' imagery in this
process (what any tile server pays at least), 200 times; the ratio is cached p95 / bare p95.
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
import shapely

from magseg.serve.render import imagery_png
from magseg.stac import item_footprint, open_catalog
from magseg.synth import write_dataset

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
