"""`magseg refine`: semantic mask (+ image) -> label raster of instances (EPOC boundaries + watershed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import rasterio
from rasterio.errors import RasterioIOError

from magseg.classes import CLASS_NAMES, CLASSES
from magseg.errors import InputError
from magseg.labels import LabelRaster, ground_sample_distance, write_label_raster


def read_semantic(path: Path) -> tuple[np.ndarray, rasterio.Affine, rasterio.crs.CRS | None]:
    """Class ids from band 1 of a one-band mask, or band 2 (the class band) of a label raster."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; give a semantic mask GeoTIFF (band 1 = class ids)")
    try:
        with rasterio.open(path) as src:
            band = 2 if src.count >= 2 else 1
            sem = src.read(band)
            transform, crs = src.transform, src.crs
    except RasterioIOError as exc:
        raise InputError(f"{path}: not a readable raster ({exc}); give a GeoTIFF semantic mask") from exc
    if not np.issubdtype(sem.dtype, np.integer) or sem.min() < 0 or sem.max() >= len(CLASSES):
        raise InputError(
            f"{path}: band {band} must hold class ids 0..{len(CLASSES) - 1}; is it a class mask?"
        )
    return sem.astype(np.uint8), transform, crs


def read_image(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Bands 1-3 as uint8 RGB; other dtypes are stretched per band between their 2nd and 98th percentiles."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; give the RGB image the mask was made from")
    try:
        with rasterio.open(path) as src:
            if src.count < 3:
                raise InputError(
                    f"{path}: {src.count} band(s); the boundary map needs an RGB image (3 bands)"
                )
            image = src.read([1, 2, 3])
    except RasterioIOError as exc:
        raise InputError(f"{path}: not a readable raster ({exc}); give an RGB GeoTIFF") from exc
    if image.shape[1:] != shape:
        raise InputError(
            f"{path}: image {image.shape[1:]} and mask {shape} differ in size; resample to one grid"
        )
    if image.dtype == np.uint8:
        return image
    out = np.empty(image.shape, dtype=np.uint8)
    for i, band in enumerate(image.astype(np.float32)):
        lo, hi = np.percentile(band, (2, 98))
        out[i] = np.clip((band - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    return out


@click.command(name="refine")
@click.option(
    "--semantic",
    "semantic_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Semantic mask: band 1 = class ids, or a label raster (its band 2 is used).",
)
@click.option(
    "--image",
    "image_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="RGB image on the same grid; without it every class gets connected components only.",
)
@click.option(
    "--boundary",
    "model_dir",
    default=None,
    help="Trained boundary model folder (default: the bundled one; 'none': the image fallback).",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output label raster."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Boundary probability above which a pixel is boundary (default: refine's, 0.3).",
)
@click.option(
    "--min-area-m2",
    type=click.FloatRange(min=0),
    default=None,
    help="Merge field fragments smaller than this (m²; default: refine's).",
)
@click.option(
    "--gap-m",
    type=click.FloatRange(min=0),
    default=None,
    help="Background strip left between touching fields (m; default: refine's).",
)
@click.option(
    "--gap-per-m",
    type=click.FloatRange(min=0),
    default=None,
    help="Widen the gap around large fields by this x sqrt(field area in m²) metres (0: off; "
    "default: refine's).",
)
@click.option(
    "--max-gap-m",
    type=click.FloatRange(min=0),
    default=None,
    help="The widest gap a large field keeps (m; default: refine's).",
)
@click.option(
    "--merge-below",
    type=click.FloatRange(0, 1),
    default=None,
    help="Merge touching fields whose shared border averages a boundary probability under this (0: off; "
    "default: the boundary model's own, the bundled one's 0.6; the image fallback's: off).",
)
@click.option(
    "--gsd",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Metres per pixel (default: from the mask's grid and CRS).",
)
@click.option(
    "--snap-px",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Move class edges onto image boundaries within this many pixels.",
)
@click.option(
    "--colour-px",
    type=click.IntRange(min=0),
    default=None,
    help="Re-decide tree/cloud/pond/well edges within this many pixels by the scene's colours "
    "(default: --snap-px; 0: off).",
)
def command(
    semantic_path: Path,
    image_path: Path | None,
    model_dir: str | None,
    out: Path,
    threshold: float | None,
    min_area_m2: float | None,
    gap_m: float | None,
    gap_per_m: float | None,
    max_gap_m: float | None,
    merge_below: float | None,
    gsd: float | None,
    snap_px: int,
    colour_px: int | None,
) -> None:
    """Cut a semantic mask into instances along image boundaries and write a label raster."""
    from magseg.bundled import boundary_choice
    from magseg.refine import choose_boundary_model, refine, scene_boundary

    semantic, transform, crs = read_semantic(semantic_path)
    if model_dir is not None and boundary_choice(model_dir) is not None and image_path is None:
        raise InputError("--boundary needs --image: the boundary model reads the image")
    image = read_image(image_path, semantic.shape) if image_path is not None else None
    if image is None:
        click.echo("note: no --image, so instances are connected components of the mask", err=True)
    gsd = gsd if gsd is not None else ground_sample_distance(transform, crs)
    model = scene_boundary(choose_boundary_model(model_dir), gsd) if image is not None else None
    # only the knobs the user set are passed: refine's own defaults are the tuned ones
    knobs: dict[str, Any] = {
        k: v
        for k, v in (
            ("threshold", threshold),
            ("min_area_m2", min_area_m2),
            ("gap_m", gap_m),
            ("gap_per_m", gap_per_m),
            ("max_gap_m", max_gap_m),
            ("merge_below", merge_below),
        )
        if v is not None
    }
    t0 = time.perf_counter()
    result = refine(semantic, image, model=model, gsd=gsd, snap_px=snap_px, colour_px=colour_px, **knobs)
    seconds = time.perf_counter() - t0
    write_label_raster(out, LabelRaster(result.instance, result.semantic, transform, crs))
    counts = []
    for cls in range(1, len(CLASS_NAMES)):
        n = np.unique(result.instance[result.semantic == cls]).size
        if n:
            counts.append(f"{n} {CLASS_NAMES[cls]}")
    click.echo(f"wrote {out}: {', '.join(counts) or 'no instances'} ({seconds:.1f} s)")
