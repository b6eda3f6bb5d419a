"""Write a synthetic dataset folder: scenes (COG), labels, polygons, STAC and synth.json, atomically.

Layout of ``out`` (other stages rely on it exactly)::

    scenes/<id>.tif       RGB uint8 COG (deflate, internal overviews), UTM CRS
    labels/<id>.tif       label raster: band 1 instance id, band 2 class id (magseg.labels)
    fields/<id>.parquet   GeoParquet: id, class, instance, scene, edge, occluded, area_m2, geometry (scene CRS)
    stac/collection.json  stac/items/<id>.json  stac/items.parquet (stac-geoparquet); absolute file hrefs
    synth.json            parameters (seed, size, gsd, location, scenes, version) and per-scene stats

Scene ids are ``synth-<seed>-<index:03d>``; the scenes tile a contiguous mosaic centred on the location.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from magseg import __version__
from magseg.atomic import atomic_dir
from magseg.classes import CLASS_NAMES
from magseg.errors import InputError
from magseg.labels import write_label_raster
from magseg.synth.catalog import collection_id, make_collection, scene_item, write_catalog
from magseg.synth.locations import Location, mosaic_origins, resolve_location
from magseg.synth.scene import SyntheticScene, check_params, generate_scene, scene_datetime

#: Bumped when the output changes for the same parameters (so a seed names one dataset per version).
FORMAT_VERSION = 1
MAX_SCENES = 10_000


def scene_seed(seed: int, index: int) -> int:
    """The seed of scene ``index`` of a run: an independent stream per scene, 63 bits (fits Arrow int64)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def write_cog(path: Path, scene: SyntheticScene) -> None:
    """An RGB COG with internal overviews down to one block (blocks of half the scene up to 256 px)."""
    _, h, w = scene.image.shape
    block = 256 if min(h, w) > 256 else max(16, (min(h, w) // 2) // 16 * 16)
    profile = {
        "driver": "COG",
        "width": w,
        "height": h,
        "count": 3,
        "dtype": "uint8",
        "crs": scene.labels.crs,
        "transform": scene.labels.transform,
        "compress": "deflate",
        "predictor": 2,
        "blocksize": block,
        "overview_resampling": "average",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(scene.image)
        dst.colorinterp = [
            rasterio.enums.ColorInterp.red,
            rasterio.enums.ColorInterp.green,
            rasterio.enums.ColorInterp.blue,
        ]


def scene_stats(scene: SyntheticScene, seed: int) -> dict[str, Any]:
    """What synth.json records about a scene."""
    fields = scene.polygons[scene.polygons["class"] == "field"]
    inner = fields[~fields["edge"] & ~fields["occluded"]]["area_m2"].to_numpy() / 1e4
    pixels = (
        np.bincount(scene.labels.semantic.ravel(), minlength=len(CLASS_NAMES)) / scene.labels.semantic.size
    )
    t = scene.labels.transform
    h, w = scene.labels.shape
    return {
        "id": scene.scene_id,
        "seed": seed,
        "datetime": scene.datetime.isoformat(),
        "bbox": [t.c, t.f + h * t.e, t.c + w * t.a, t.f],
        "cloud_cover": round(scene.cloud_cover, 3),
        "instances": scene.counts(),
        "pixel_fraction": {name: round(float(p), 5) for name, p in zip(CLASS_NAMES, pixels, strict=True)},
        "field_area_ha": {
            "interior_fields": int(inner.size),
            "min": round(float(inner.min()), 4) if inner.size else None,
            "median": round(float(np.median(inner)), 4) if inner.size else None,
            "max": round(float(inner.max()), 4) if inner.size else None,
        },
    }


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an output path that is a file, or a non-empty folder unless ``overwrite`` and it is a dataset."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; give a new folder for --out")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"{out}: folder exists and is not empty; pass --overwrite to replace it")
        if not (out / "synth.json").is_file():  # --overwrite deletes the folder: only ever a dataset of ours
            raise InputError(f"{out}: not a `magseg synth` folder (no synth.json); refusing to replace it")


def check_request(
    out: str | os.PathLike[str],
    scenes: int,
    size: int,
    gsd: float,
    seed: int,
    location: str,
    overwrite: bool,
    cloud_fraction: float,
) -> Location:
    """Check every argument of write_dataset (InputError on the first bad one); return the location."""
    check_params(size, gsd, cloud_fraction)
    if not 1 <= scenes <= MAX_SCENES:
        raise InputError(f"scenes {scenes}: must be between 1 and {MAX_SCENES}")
    if seed < 0:
        raise InputError(f"seed {seed}: must be a non-negative integer")
    loc = resolve_location(location)
    check_out(Path(out).expanduser().resolve(), overwrite)
    return loc


def write_dataset(
    out: str | os.PathLike[str],
    scenes: int,
    size: int,
    gsd: float,
    seed: int,
    location: str = "karnal",
    overwrite: bool = False,
    cloud_fraction: float = 0.3,
    progress: Callable[[SyntheticScene], None] | None = None,
) -> Path:
    """Generate ``scenes`` adjacent scenes at ``location`` and write the dataset folder; return its path.

    All arguments are checked before anything is written; the folder appears whole or not at all.
    """
    loc = check_request(out, scenes, size, gsd, seed, location, overwrite, cloud_fraction)
    root = Path(out).expanduser().resolve()
    origins = mosaic_origins(loc, scenes, size, gsd)
    when = scene_datetime(seed)  # one acquisition: the scenes of a run are shot seconds apart
    cid = collection_id(seed)
    items, stats = [], []
    with atomic_dir(root) as tmp:
        for sub in ("scenes", "labels", "fields"):
            (tmp / sub).mkdir()
        for i, origin in enumerate(origins):
            sid = f"synth-{seed}-{i:03d}"
            sseed = scene_seed(seed, i)
            scene = generate_scene(
                sseed,
                size,
                gsd,
                origin,
                loc.crs,
                cloud_fraction,
                scene_id=sid,
                when=when + timedelta(seconds=i),
            )
            write_cog(tmp / "scenes" / f"{sid}.tif", scene)
            write_label_raster(tmp / "labels" / f"{sid}.tif", scene.labels)
            scene.polygons.to_parquet(tmp / "fields" / f"{sid}.parquet", index=False)
            items.append(scene_item(scene, root, cid))
            stats.append(scene_stats(scene, sseed))
            if progress is not None:
                progress(scene)
        description = (
            f"Synthetic smallholder landscapes generated by `magseg synth` (seed {seed}, {scenes} scenes of "
            f"{size} px at {gsd} m near {loc.name})."
        )
        write_catalog(tmp / "stac", items, make_collection(items, root, cid, description))
        params = {
            "generator": "magseg synth",
            "version": __version__,
            "format_version": FORMAT_VERSION,
            "seed": seed,
            "size": size,
            "gsd": gsd,
            "scenes": scenes,
            "cloud_fraction": cloud_fraction,
            "location": {"name": loc.name, "lon": loc.lon, "lat": loc.lat},
            "crs": loc.crs,
            "collection": cid,
            "classes": list(CLASS_NAMES),
            "scene_stats": stats,
        }
        (tmp / "synth.json").write_text(json.dumps(params, indent=2) + "\n")
    return root
