"""Finish a region run: join seam pieces, write the partitioned layer, the export, pictures and run.json."""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import geopandas as gpd
import pandas as pd

from magseg.atomic import atomic_dir
from magseg.mapping.config import MapConfig
from magseg.mapping.layer import export_layer, write_partitioned
from magseg.mapping.plan import RegionPlan
from magseg.mapping.quicklook import mosaic_thumbnails, write_html_map, write_quicklook
from magseg.mapping.seams import merge_seams
from magseg.mapping.store import RunStore
from magseg.vector import COLUMNS

__all__ = ["finalize_run", "region_layer", "versions"]

LAYER_DIR = "fields"
PACKAGES = ("magseg", "ray", "torch", "transformers", "trl", "rio-tiler", "rasterio", "shapely", "geopandas")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def region_layer(store: RunStore, plan: RegionPlan, tile_ids: list[str]) -> gpd.GeoDataFrame:
    """The run's polygons in the plan's UTM CRS: the given finished tiles' pieces, seams joined.

    Each polygon carries the acquisition time of the imagery its tile was read from (a joined polygon,
    that of its piece with the smallest id).
    """
    frames = store.pieces(tile_ids)
    if not frames:
        return gpd.GeoDataFrame({c: [] for c in COLUMNS[:-1]}, geometry=[], crs=plan.crs)
    pieces = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)
    layer = merge_seams(pieces, plan.gsd)
    return layer.sort_values("id", kind="stable").reset_index(drop=True)


def finalize_run(
    store: RunStore, plan: RegionPlan, config: MapConfig, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Write the layer (replacing any earlier one whole), the export, quick look and HTML map; summarise."""
    records = [r for r in store.records() if r["tile"] in plan]
    layer = region_layer(store, plan, [r["tile"] for r in records])
    root = store.root / LAYER_DIR
    with atomic_dir(root) as tmp:
        write_partitioned(layer, tmp, collection=config.collection_id)
    if config.export:
        if len(layer):
            export_layer(root, config.export, collection=config.collection_id)
        else:
            log(f"nothing to export to {config.export}: the run found no polygons")
    pictures = mosaic_thumbnails(store, plan)
    if pictures is not None:
        image, semantic, bounds = pictures
        write_quicklook(store.root / "quicklook.png", image, semantic)
        write_html_map(store.root / "map.html", layer, image, bounds, plan.epsg)
    statuses = Counter(r["status"] for r in records)
    patches = sum(r["patches"] for r in records)
    model_s = sum(r["model_s"] for r in records)
    summary: dict[str, Any] = {
        "bbox": list(plan.bbox),
        "crs": plan.crs,
        "tiles": {"planned": plan.n_tiles, "finished": len(records), **dict(statuses)},
        "area_km2": plan.area_km2,
        "polygons": len(layer),
        "polygons_by_class": {str(k): int(v) for k, v in layer["class"].value_counts().sort_index().items()},
        "layer": str(root),
        "export": config.export,
        "scenes": sorted({s for r in records for s in r["scenes"]}),
        "warnings": sorted({w for r in records for w in r["warnings"]}),
        "empty_tiles": [{"tile": r["tile"], "message": r["message"]} for r in records if r["status"] != "ok"],
        "patches": patches,
        "tokens_per_patch": sum(r["tokens"] for r in records) / max(patches, 1),
        "decode_valid_rate": sum(r["valid_patches"] for r in records) / max(patches, 1),
        "model_patches_per_s": patches / model_s if model_s > 0 else None,
        "stage_seconds": {k: sum(r.get(k, 0.0) for r in records) for k in ("read_s", "model_s", "refine_s")},
        "config": config.to_dict(),
        "versions": versions(),
    }
    return summary
