"""The region job: its non-model path per km² against the bare primitives, and the whole Ray run at 1x and 4x area.

1. Non-model path, one process: for every tile, magseg's read (rio-tiler mosaic), decode + stitch of the
   oracle's RRLE, refine + polygonize (tile_pieces) and the tile record, then the seam join and the
   partitioned write -- against the sum of the bare primitives doing the same work on the same tiles:
   a rasterio window read, a numpy repeat of the grids, one skimage watershed on a Sobel map, one
   rasterio shapes pass and one pyarrow write.
2. The Ray Data run (`magseg map`, the bundled model on CPU) at 1x and 4x area: wall time, peak memory of
   the driver and every Ray process (sampled RSS), and the model stage's patches/s -- against the same
   1x run with the model stage as it was before the engine work (engine hf-generate: transformers'
   generate in batches of 16, no shared prefix; the same tokens), measured in the same run. These runs
   predict independent patches (rereads 0, as the job ran then); one more 1x run as the job runs by
   default, with the card's seam re-reads, gives their cost (``rereads_model_time``: grid patches/s
   without them over with them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pystac
import rasterio
import shapely
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import shape
from skimage.filters import sobel
from skimage.segmentation import watershed

from magseg.bundled import BUNDLED_MODEL
from magseg.codec import decode, encode, grid_to_mask, mask_to_grid
from magseg.inference.predict import stitch_grids
from magseg.inference.requests import patch_origins
from magseg.mapping import plan_region, write_partitioned
from magseg.mapping.config import MapConfig
from magseg.mapping.pipeline import run_region
from magseg.mapping.read import read_tile
from magseg.mapping.seams import merge_seams
from magseg.mapping.source import tile_items
from magseg.mapping.store import RunStore
from magseg.mapping.tile import RefineSettings, tile_pieces
from magseg.stac import open_catalog
from magseg.synth import write_dataset

GSD, PATCH, GRID = 0.5, 64, 8


def _region(root: Path, scenes: int, size: int) -> tuple[Path, tuple[float, float, float, float]]:
    data = write_dataset(root / f"synth{scenes}", scenes, size, GSD, seed=5, overwrite=True)
    items = open_catalog(data).search()
    bbox = shapely.union_all([shape(it.geometry) for it in items]).bounds
    return data, bbox


def _oracle(
    labels: dict[str, Path], item: pystac.Item, bounds: tuple[float, float, float, float]
) -> np.ndarray:
    with rasterio.open(labels[item.id]) as src:
        window = (
            rasterio.windows.from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
        )
        return src.read(2, window=window, boundless=True, fill_value=0)


def non_model_path(data: Path, bbox: tuple[float, float, float, float], work: Path) -> dict[str, object]:
    items = open_catalog(data).search()
    labels = {it.id: data / "labels" / f"{it.id}.tif" for it in items}
    plan = plan_region(bbox, gsd=GSD)
    store = RunStore(work / "run")
    store.open({"bench": True})
    magseg_s = bare_s = 0.0
    tiles = 0
    frames = []
    settings = RefineSettings(boundary_scale=20.0)
    for tile, hits in tile_items(plan.tiles, items):
        if not hits:
            continue
        truth = _oracle(labels, hits[0], tile.read_bounds)
        h, w = truth.shape
        origins = patch_origins(h, w, PATCH)
        texts = [encode(mask_to_grid(truth[y : y + PATCH, x : x + PATCH], GRID)) for x, y in origins]
        t0 = time.perf_counter()
        img = read_tile(tile, hits, GSD)
        grids = [decode(t, (GRID, GRID))[0] for t in texts]
        semantic = stitch_grids(grids, origins, (h, w), PATCH)
        got = tile_pieces(
            tile,
            semantic,
            img.image,
            img.mask,
            img.transform,
            img.crs,
            GSD,
            settings=settings,
            snap_px=PATCH // GRID,
        )
        store.save(tile.id, got.frame, {"semantic": got.semantic[::4, ::4]}, {"datetime": None})
        frames.append(got.frame)
        t1 = time.perf_counter()
        # the bare primitives on the same tile
        with rasterio.open(hits[0].assets["image"].href) as src:
            window = (
                rasterio.windows.from_bounds(*tile.read_bounds, transform=src.transform)
                .round_offsets()
                .round_lengths()
            )
            rgb = src.read((1, 2, 3), window=window, boundless=True)
        canvas = np.zeros((h, w), np.uint8)
        for grid, (x, y) in zip(grids, origins, strict=True):
            canvas[y : y + PATCH, x : x + PATCH] = grid_to_mask(grid, PATCH)
        edges = sobel(rgb.mean(axis=0))
        markers, _ = ndimage.label(edges < np.percentile(edges, 50))
        lab = watershed(edges, markers, mask=canvas > 0).astype(np.int32)
        polys = [(shape(g), v) for g, v in shapes(lab, mask=lab > 0, transform=img.transform)]
        table = pa.table({"v": [v for _, v in polys], "wkb": [shapely.to_wkb(g) for g, _ in polys]})
        pq.write_table(table, work / "bare.parquet")
        t2 = time.perf_counter()
        magseg_s += t1 - t0
        bare_s += t2 - t1
        tiles += 1
    t3 = time.perf_counter()
    pieces = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    layer = merge_seams(pieces, GSD)
    write_partitioned(layer, work / "fields")
    magseg_s += time.perf_counter() - t3
    km2 = plan.area_km2
    return {
        "bench": "non-model path",
        "tiles": tiles,
        "km2": round(km2, 3),
        "magseg_s_per_km2": round(magseg_s / km2, 1),
        "bare_s_per_km2": round(bare_s / km2, 1),
        "ratio": round(magseg_s / bare_s, 2),
    }


class _PeakRSS:
    """Peak summed RSS of this process and all its descendants (Ray's GCS, raylet and workers)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def ray_run(
    data: Path, bbox: tuple[float, float, float, float], out: Path, label: str, **settings: Any
) -> dict[str, object]:
    config = MapConfig(
        bbox=bbox, stac=str(data), out=str(out), model=str(BUNDLED_MODEL), progress=False, **settings
    )
    t0 = time.perf_counter()
    with _PeakRSS() as rss:
        summary = run_region(config, log=lambda _: None)
    wall = time.perf_counter() - t0
    return {
        "bench": f"ray run {label}",
        "tiles": summary["tiles"]["planned"],
        "km2": round(float(summary["area_km2"]), 3),
        "wall_s": round(wall, 1),
        "s_per_km2": round(wall / float(summary["area_km2"]), 1),
        "peak_rss_gb": round(rss.peak / 1e9, 2),
        "model_patches_per_s": round(float(summary["model_patches_per_s"] or 0), 1),
    }


def run(quick: bool = False) -> list[dict[str, object]]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    size = 256 if quick else 512
    work = Path(tempfile.mkdtemp(prefix="regionbench"))
    try:
        small = _region(work, 4, size)  # 1x: 2 x 2 scenes
        large = _region(work, 16, size)  # 4x: 4 x 4 scenes
        rows = [non_model_path(*small, work / "nm1"), non_model_path(*large, work / "nm4")]
        # the model stage as the job ran it before the engine work (issue 11's "today"): transformers'
        # generate in batches of 16, no shared prefix, independent patches -- the same tokens, this run
        plain = {"rereads": 0.0}
        before = ray_run(*small, work / "ray0", "1x before", engine="hf-generate", batch_size=16, **plain)
        now = ray_run(*small, work / "ray1", "1x", **plain)
        larger = ray_run(*large, work / "ray4", "4x", **plain)
        # as the job runs by default: the bundle's card asks for seam re-reads (more patches, same grid)
        again = ray_run(*small, work / "ray1r", "1x seam re-reads")
        rows += [before, now, larger, again]
        base = float(before["model_patches_per_s"])  # type: ignore[arg-type]
        rate = float(now["model_patches_per_s"])  # type: ignore[arg-type]
        rows.append(
            {
                "bench": "ratios",
                "model_stage_1x_vs_before": round(rate / base, 2),
                "model_stage_4x_vs_before": round(float(larger["model_patches_per_s"]) / base, 2),  # type: ignore[arg-type]
                "rereads_model_time": round(rate / float(again["model_patches_per_s"]), 2),  # type: ignore[arg-type]
            }
        )
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
