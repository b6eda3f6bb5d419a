"""Country-scale shape of the region job: driver memory and wall time against area, and the finish at 1M pieces.

1. Scale drill: `magseg map` with the stand-in engine (``engine: truth``, the scenes' own labels as RRLE)
   and the image-fallback boundary, no pictures (they embed the whole layer by design), over 1x and 16x the area of synthetic 1 m scenes (1 -> 16 km²).
   Reported: wall time, the driver's peak RSS and every Ray process's peak RSS (by process title), and
   the ratios 16x / 1x (goals: driver RSS <= 1.2x, wall <= 17x).
2. The finish on ~1M synthetic seam pieces (generated into a run folder, not mapped): magseg's Ray
   finish (block tasks up the quadtree) against one join of every piece in one process (today's finish
   before issue 10), each in its own process: time and peak RSS of the process that holds the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import geopandas as gpd
import psutil
import shapely
from shapely.geometry import shape

from magseg.mapping.store import RunStore
from magseg.mapping.zones import plan_zones
from magseg.stac import open_catalog
from magseg.synth import write_dataset

GSD = 1.0
SCENE_PX = 1024  # 1 km² scenes at 1 m
MAGSEG = str(Path(sys.executable).parent / "magseg")


class _Peaks:
    """Peak RSS of a process and of each of its descendants, grouped by process title (Ray's ``ray::...``)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.driver = 0
        self.by_kind: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    @staticmethod
    def kind(proc: psutil.Process) -> str:
        cmd = proc.cmdline()
        if cmd and cmd[0].startswith("ray::"):
            return cmd[0].split(" ")[0]
        names = [os.path.basename(c) for c in cmd[:3]]
        for name in ("raylet", "gcs_server", "dashboard", "log_monitor", "monitor", "runtime_env"):
            if any(name in n for n in names):
                return name
        return names[1] if len(names) > 1 and names[0].startswith("python") else (names[0] if names else "?")

    def _poll(self) -> None:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.pid)
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.driver = max(self.driver, root.memory_info().rss)
                for child in root.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        key = self.kind(child)
                        self.by_kind[key] = max(self.by_kind[key], child.memory_info().rss)
            time.sleep(0.1)

    def __enter__(self) -> _Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _scenes(root: Path, n: int) -> tuple[Path, tuple[float, float, float, float]]:
    data = write_dataset(root / f"synth{n}", n, SCENE_PX, GSD, seed=5, overwrite=True)
    items = open_catalog(data).search()
    return data, shapely.union_all([shape(it.geometry) for it in items]).bounds


def drill(data: Path, bbox: tuple[float, float, float, float], out: Path, label: str) -> dict[str, object]:
    """One `magseg map` run with the stand-in engine, its driver and Ray processes watched."""
    config = out.parent / f"{out.name}.yaml"
    config.write_text(f"gsd: {GSD}\nengine: truth\nboundary: none\nprogress: false\npictures: false\n")
    argv = [MAGSEG, "map", "--bbox", *map(str, bbox), "--stac", str(data), "--out", str(out)]
    argv += ["--config", str(config), "--json", "--yes"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    with _Peaks(proc.pid) as peaks:
        stdout, _ = proc.communicate(timeout=3600)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"magseg map failed ({proc.returncode}) for {label}")
    summary = json.loads(stdout)
    ray_mb = {k: round(v / 1e6) for k, v in sorted(peaks.by_kind.items(), key=lambda kv: -kv[1])}
    return {
        "bench": f"map drill {label}",
        "km2": round(float(summary["area_km2"]), 2),
        "tiles": summary["tiles"]["planned"],
        "polygons": summary["polygons"],
        "wall_s": round(wall, 1),
        "driver_peak_mb": round(peaks.driver / 1e6),
        "ray_peak_mb": ray_mb,
    }


def write_pieces(out: Path, tiles_side: int) -> tuple[int, list[float]]:
    """A run folder whose tiles hold only seam pieces: squares along each core edge, meeting their
    neighbours' across the seams (1.5 m squares every 2 m, so a tile's own squares never touch)."""
    size = 128.0
    lon0, lat0 = 10.0, 45.0
    probe = plan_zones((lon0, lat0, lon0 + 0.001, lat0 + 0.001), gsd=0.25, tile_px=512, margin_px=0)
    first = next(probe.tiles)
    c0, r0 = first.col, first.row
    store = RunStore(out)
    store.open({"bench": "finish"})
    record = {"status": "ok", "message": "", "scenes": [], "warnings": []}
    record |= {"patches": 0, "tokens": 0, "valid_patches": 0}
    n = 0
    for dr in range(tiles_side):
        for dc in range(tiles_side):
            col, row = c0 + dc, r0 + dr
            x0, y0 = col * size, row * size
            x1, y1 = x0 + size, y0 + size
            geoms, flags = [], []
            for k in range(64):
                a = 2 * k + 0.25
                geoms += [shapely.box(x0, y0 + a, x0 + 1.5, y0 + a + 1.5)]
                geoms += [shapely.box(x1 - 1.5, y0 + a, x1, y0 + a + 1.5)]
                flags += ["W", "E"]
                if 0 < k < 63:
                    geoms += [shapely.box(x0 + a, y0, x0 + a + 1.5, y0 + 1.5)]
                    geoms += [shapely.box(x0 + a, y1 - 1.5, x0 + a + 1.5, y1)]
                    flags += ["S", "N"]
            tile_id = f"{first.epsg}_{col}_{row}"
            frame = gpd.GeoDataFrame(
                {
                    "id": [f"{tile_id}-field-{i + 1}" for i in range(len(geoms))],
                    "class": "field",
                    "instance": list(range(1, len(geoms) + 1)),
                    "metrics:area": 2.25,
                    "metrics:perimeter": 6.0,
                    "seams": flags,
                },
                geometry=geoms,
                crs=first.epsg,
            )
            store.save(tile_id, frame, {}, {**record, "tile": tile_id})
            n += len(frame)
    x0, y0, x1, y1 = c0 * size, r0 * size, (c0 + tiles_side) * size, (r0 + tiles_side) * size
    inner = gpd.GeoSeries([shapely.box(x0 + 1, y0 + 1, x1 - 1, y1 - 1)], crs=first.epsg).to_crs(4326)
    return n, list(inner.total_bounds)


_FINISH = """
import json, sys, time, resource
import ray
from magseg.mapping.store import RunStore
from magseg.mapping.zones import plan_zones
out, bbox, mode = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
plan = plan_zones(bbox, gsd=0.25, tile_px=512, margin_px=0)
t0 = time.perf_counter()
if mode == "ray":
    from magseg.mapping.finalize import finish_layer
    ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
    tally = finish_layer(RunStore(out), plan, "bench")
    polygons = sum(tally["polygons_by_class"].values())
else:
    import geopandas as gpd, pandas as pd
    from magseg.mapping.layer import write_partitioned
    from magseg.mapping.seams import merge_seams
    frames = RunStore(out).pieces([t.id for t in plan.tiles])
    pieces = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)
    layer = merge_seams(pieces, 0.25)
    write_partitioned(layer, out + "/fields-one-pass", collection="bench")
    polygons = len(layer)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"s": time.perf_counter() - t0, "peak": peak, "polygons": polygons, "tiles": plan.n_tiles}))
"""


def finish(work: Path, tiles_side: int, one_pass: bool) -> list[dict[str, object]]:
    t0 = time.perf_counter()
    n, bbox = write_pieces(work / "pieces", tiles_side)
    made = time.perf_counter() - t0
    rows: list[dict[str, object]] = []
    for mode in ("ray", "one-pass") if one_pass else ("ray",):
        res = subprocess.run(
            [sys.executable, "-c", _FINISH, str(work / "pieces"), json.dumps(bbox), mode],
            capture_output=True,
            text=True,
            timeout=7200,
        )
        if res.returncode:
            raise RuntimeError(f"finish {mode} failed: {res.stderr[-2000:]}")
        got = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(
            {
                "bench": f"finish {mode}",
                "pieces": n,
                "tiles": got["tiles"],
                "polygons": got["polygons"],
                "s": round(got["s"], 1),
                "driver_peak_mb": round(got["peak"] / 1e6),
                "pieces_written_s": round(made, 1),
            }
        )
    return rows


def run(quick: bool = False) -> list[dict[str, object]]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(tempfile.mkdtemp(prefix="scalebench"))
    try:
        big = 4 if quick else 16
        small_run = drill(*_scenes(work, 1), work / "x1", "1x")
        large_run = drill(*_scenes(work, big), work / f"x{big}", f"{big}x")
        rows = [small_run, large_run]
        rows.append(
            {
                "bench": f"map drill {big}x / 1x",
                "km2": round(float(large_run["km2"]) / float(small_run["km2"]), 1),  # type: ignore[arg-type]
                "driver_rss_ratio": round(large_run["driver_peak_mb"] / small_run["driver_peak_mb"], 2),  # type: ignore[operator]
                "wall_ratio": round(large_run["wall_s"] / small_run["wall_s"], 2),  # type: ignore[operator]
            }
        )
        rows += finish(work, 16 if quick else 64, one_pass=True)
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
