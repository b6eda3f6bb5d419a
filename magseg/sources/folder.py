"""Find labelled scenes in a folder and load them: images + raster masks, or images + a vector label layer.

Layouts recognised (by sub-folder names):
- `magseg synth` output: scenes/<id>.tif + labels/<id>.tif (label rasters);
- images/<id>.(tif|jpg|png) + masks/<id>.tif: a one-band instance mask (class field where > 0, as in
  naip-fields, where 0 means "not annotated") or a two-band label raster (band 1 instance, band 2 class);
- images/<id>.tif + semantic/<id>.tif: one band of class ids (instances = connected components);
- images/<id>.tif + one vector layer labels.(gpkg|parquet|geojson|fgb) with a `class` column, rasterised
  onto each image's grid (each feature one instance).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from scipy import ndimage

from magseg.classes import CLASS_NAMES
from magseg.errors import InputError
from magseg.labels import LabelRaster, rasterize_layer, read_label_raster
from magseg.sources.scene import LabelledScene, SceneRef

IMAGE_SUFFIXES = (".tif", ".tiff", ".jpg", ".jpeg", ".png")
VECTOR_NAMES = ("labels.gpkg", "labels.parquet", "labels.geoparquet", "labels.geojson", "labels.fgb")


def _read_rgb(path: Path) -> tuple[np.ndarray, rasterio.Affine, rasterio.crs.CRS | None]:
    try:
        with rasterio.open(path) as src:
            if src.count < 3:
                raise InputError(f"{path}: has {src.count} band(s); magseg needs RGB images (3 bands)")
            image = src.read([1, 2, 3])
            transform, crs = src.transform, src.crs
    except RasterioIOError as exc:
        raise InputError(f"{path}: not a readable image ({exc})") from exc
    if image.dtype != np.uint8:
        # scale other dtypes to 8 bits by a robust per-band stretch, as a viewer would
        lo, hi = np.percentile(image, (1, 99), axis=(1, 2), keepdims=True)
        image = np.clip((image - lo) / np.maximum(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    return image, transform, crs


def _components(semantic: np.ndarray) -> np.ndarray:
    """Instances of a semantic mask: connected components per class, ids unique across classes."""
    instance = np.zeros(semantic.shape, dtype=np.int32)
    offset = 0
    for cls in np.unique(semantic):
        if cls == 0:
            continue
        comp, n = ndimage.label(semantic == cls)
        instance[comp > 0] = comp[comp > 0] + offset
        offset += n
    return instance


def _load_raster_labels(
    scene_id: str, image_path: Path, mask_path: Path, semantic_only: bool
) -> LabelledScene:
    image, transform, crs = _read_rgb(image_path)
    if semantic_only:
        with rasterio.open(mask_path) as src:
            semantic = src.read(1).astype(np.uint8)
        labels = LabelRaster(_components(semantic), semantic, transform, crs)
    else:
        labels = read_label_raster(mask_path)
        labels = LabelRaster(labels.instance, labels.semantic, transform, crs)
    if labels.shape != image.shape[1:]:
        raise InputError(
            f"{mask_path}: labels are {labels.shape} but the image is {image.shape[1:]}; align them"
        )
    return LabelledScene(scene_id, image, labels)


def _load_vector_labels(scene_id: str, image_path: Path, layer: gpd.GeoDataFrame) -> LabelledScene:
    image, transform, crs = _read_rgb(image_path)
    shape = image.shape[1:]
    if crs is None:
        raise InputError(
            f"{image_path}: has no CRS, so vector labels cannot be placed on it; georeference it"
        )
    return LabelledScene(scene_id, image, rasterize_layer(layer, shape, transform, crs))


def _stems(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def list_scenes(root: str | os.PathLike[str]) -> list[SceneRef]:
    """List the labelled scenes under ``root`` (layouts in the module docstring), sorted by id."""
    base = Path(root)
    if not base.is_dir():
        raise InputError(
            f"{base}: no such folder; give a folder of labelled scenes (see `magseg samples --help`)"
        )
    if (base / "scenes").is_dir() and (base / "labels").is_dir():
        images, masks, semantic_only = _stems(base / "scenes"), _stems(base / "labels"), False
    elif (base / "images").is_dir():
        images = _stems(base / "images")
        vector = next((base / n for n in VECTOR_NAMES if (base / n).exists()), None)
        if vector is not None:
            layer = (
                gpd.read_parquet(vector)
                if vector.suffix in (".parquet", ".geoparquet")
                else gpd.read_file(vector)
            )
            if "class" not in layer.columns:
                layer["class"] = CLASS_NAMES[1]  # a layer without classes is taken as fields
            return [
                SceneRef(sid, path, partial(_load_vector_labels, sid, path, layer))
                for sid, path in images.items()
            ]
        if (base / "masks").is_dir():
            masks, semantic_only = _stems(base / "masks"), False
        elif (base / "semantic").is_dir():
            masks, semantic_only = _stems(base / "semantic"), True
        else:
            raise InputError(
                f"{base}: has images/ but no masks/, semantic/ or labels.* layer; add the labels"
            )
    else:
        raise InputError(
            f"{base}: not a labelled-scene folder; expected scenes/+labels/ (magseg synth) or images/+masks/"
        )
    refs = [
        SceneRef(sid, path, partial(_load_raster_labels, sid, path, masks[sid], semantic_only))
        for sid, path in images.items()
        if sid in masks
    ]
    if not refs:
        raise InputError(f"{base}: no image has a label file of the same name; check the file names")
    return refs
