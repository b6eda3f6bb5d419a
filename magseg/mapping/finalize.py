"""Finish a region run on Ray: the layer's partitions written by tasks up each zone's block quadtree, run.json.

Only pieces on block borders move between tasks (magseg.mapping.join); the driver holds object refs and
a running tally, never the polygons, so its memory does not grow with the region. The layer is written
into a staging folder that replaces ``fields/`` whole at the end, so a killed finish leaves the old layer.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from magseg.mapping.blocks import BLOCK_SHIFT, Block, has_tiles, top_block
from magseg.mapping.config import MapConfig
from magseg.mapping.join import Tally, add_tally, finish_leaf, join_block, join_zones, new_tally
from magseg.mapping.layer import export_layer, read_partitioned
from magseg.mapping.plan import RegionPlan
from magseg.mapping.quicklook import MAX_HTML_POLYGONS, mosaic_thumbnails, write_html_map, write_quicklook
from magseg.mapping.store import RunStore
from magseg.mapping.zones import ZonedPlan

__all__ = ["finalize_run", "finish_layer", "versions"]

LAYER_DIR = "fields"
PACKAGES = ("magseg", "ray", "torch", "transformers", "trl", "rio-tiler", "rasterio", "shapely", "geopandas")
#: Pictures (quick look, HTML map) are drawn for runs up to this many tiles.
MAX_PICTURE_TILES = 4096


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


class _Finisher:
    """Submits the block tasks of one run with a bounded number in flight and folds their tallies."""

    def __init__(self, store: RunStore, staging: str, collection: str, window: int, base: int) -> None:
        import ray

        self.out, self.staging, self.collection = str(store.root), staging, collection
        self.window, self.base = window, base
        self.inflight: list[Any] = []
        self.tally = new_tally()
        self.leaf = ray.remote(num_returns=2, num_cpus=0.5, max_retries=3)(finish_leaf)
        self.join = ray.remote(num_returns=2, num_cpus=0.5, max_retries=3)(join_block)
        self.zones = ray.remote(num_cpus=0.5, max_retries=3)(join_zones)

    def _track(self, tally_ref: Any) -> None:
        import ray

        self.inflight.append(tally_ref)
        while len(self.inflight) >= self.window:
            done, self.inflight = ray.wait(self.inflight, num_returns=1)
            add_tally(self.tally, ray.get(done[0]))

    def reduce(self, part: RegionPlan, block: Block, root: bool) -> Any:
        """Submit the tasks of ``block``'s subtree (children first); returns the ref of its border pieces."""
        if block.level == 0:
            carry, tally = self.leaf.remote(part, block, self.out, self.staging, self.collection, root)  # type: ignore[misc]
        else:
            kids = [self.reduce(part, c, False) for c in block.children() if has_tiles(part, c)]
            carry, tally = self.join.remote(part, block, self.staging, self.collection, root, *kids)  # type: ignore[misc]
        self._track(tally)
        return carry

    def run(self, plan: ZonedPlan) -> Tally:
        import ray

        roots = [self.reduce(part, top_block(part, self.base), True) for part in plan.parts]
        self._track(self.zones.remote(plan.gsd, self.staging, self.collection, *roots))
        for tally in ray.get(self.inflight):
            add_tally(self.tally, tally)
        self.inflight = []
        return self.tally


def finish_layer(
    store: RunStore, plan: ZonedPlan, collection: str, window: int = 8, base: int = BLOCK_SHIFT
) -> Tally:
    """Write the run's layer to ``fields/`` (replacing any earlier one whole) with Ray tasks; the tally.

    ``window`` tasks at most are in flight; level-0 blocks are 2**``base`` tiles a side.
    """
    staging = store.root / f".{LAYER_DIR}.staging"
    shutil.rmtree(staging, ignore_errors=True)  # a killed finish's leftovers
    staging.mkdir(parents=True)
    try:
        tally = _Finisher(store, str(staging), collection, window, base).run(plan)
        final = store.root / LAYER_DIR
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tally


def finalize_run(
    store: RunStore, plan: ZonedPlan, config: MapConfig, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Write the layer, the export, quick look and HTML map (small runs); summarise the run."""
    tally = finish_layer(store, plan, config.collection_id)
    root = store.root / LAYER_DIR
    n_polygons = sum(tally["polygons_by_class"].values())
    if config.export:
        if n_polygons:
            export_layer(root, config.export, collection=config.collection_id)
        else:
            log(f"nothing to export to {config.export}: the run found no polygons")
    if config.pictures:
        _pictures(store, plan, n_polygons, log)
    patches = tally["patches"]
    model_s = tally["stage_seconds"]["model_s"]
    return {
        "bbox": list(plan.bbox),
        "crs": plan.crs,
        "zones": [{"epsg": p.epsg, "bbox": list(p.bbox), "tiles": p.n_tiles} for p in plan.parts],
        "tiles": {"planned": plan.n_tiles, "finished": tally["finished"], **dict(tally["statuses"])},
        "area_km2": plan.area_km2,
        "polygons": n_polygons,
        "polygons_by_class": {k: int(v) for k, v in sorted(tally["polygons_by_class"].items())},
        "layer": str(root),
        "export": config.export,
        "scenes": sorted(tally["scenes"]),
        "warnings": sorted(tally["warnings"]),
        "empty_tiles": tally["empty_tiles"],
        "n_empty_tiles": tally["n_empty"],
        "patches": patches,
        "tokens_per_patch": tally["tokens"] / max(patches, 1),  # the seam re-reads' tokens included
        "rereads": tally["rereads"],  # offset patches generated over disagreeing seams
        "decode_valid_rate": tally["valid_patches"] / max(patches, 1),
        "model_patches_per_s": patches / model_s if model_s > 0 else None,
        "stage_seconds": {k: tally["stage_seconds"][k] for k in ("read_s", "model_s", "refine_s")},
        "config": config.to_dict(),
        "versions": versions(),
    }


def _pictures(store: RunStore, plan: ZonedPlan, n_polygons: int, log: Callable[[str], None]) -> None:
    """The quick look and the HTML map, for runs in one zone small enough to draw whole."""
    if len(plan.parts) > 1 or plan.n_tiles > MAX_PICTURE_TILES:
        log(f"no quick look or HTML map: drawn for one-zone runs up to {MAX_PICTURE_TILES} tiles")
        return
    pictures = mosaic_thumbnails(store, plan.parts[0])
    if pictures is None:
        return
    image, semantic, bounds = pictures
    write_quicklook(store.root / "quicklook.png", image, semantic)
    layer = read_partitioned(store.root / LAYER_DIR) if 0 < n_polygons <= MAX_HTML_POLYGONS else None
    write_html_map(store.root / "map.html", layer, image, bounds, plan.parts[0].epsg, total=n_polygons)
