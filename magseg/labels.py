"""Label rasters: GeoTIFFs with band 1 = instance id (0 = none) and band 2 = class id."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from magseg.atomic import atomic_path
from magseg.classes import CLASSES, class_id
from magseg.errors import CRSError, EmptyInputError, InputError

if TYPE_CHECKING:  # geopandas is slow to import; only callers that have a layer need it
    import geopandas as gpd


@dataclass
class LabelRaster:
    """Instance and class ids on one georeferenced grid."""

    instance: np.ndarray  # (H, W) int32, 0 = no instance
    semantic: np.ndarray  # (H, W) uint8 class ids, see magseg.classes
    transform: Affine
    crs: CRS | None

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.instance.shape[0]), int(self.instance.shape[1]))

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in CRS units squared."""
        return abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d)


def read_label_raster(path: str | os.PathLike[str]) -> LabelRaster:
    """Read a label raster; a one-band file is taken as an instance mask of fields."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file; give the path of a label GeoTIFF")
    try:
        with rasterio.open(path) as src:
            if src.width == 0 or src.height == 0:
                raise EmptyInputError(f"{path}: the raster is empty (0 pixels)")
            instance = src.read(1).astype(np.int32)
            if src.count >= 2:
                semantic = src.read(2).astype(np.uint8)
            else:
                semantic = np.where(instance > 0, 1, 0).astype(np.uint8)
            transform, crs = src.transform, src.crs
    except RasterioIOError as exc:
        raise InputError(f"{path}: not a readable raster ({exc}); give a GeoTIFF label raster") from exc
    if semantic.max(initial=0) >= len(CLASSES):
        raise InputError(
            f"{path}: band 2 holds class id {int(semantic.max())}, but classes are 0..{len(CLASSES) - 1}"
        )
    return LabelRaster(instance, semantic, transform, crs)


def require_projected(labels: LabelRaster, path: str | os.PathLike[str]) -> None:
    """Refuse rasters whose CRS is missing or geographic: areas in m² need a metric grid."""
    if labels.crs is None:
        raise CRSError(f"{path}: the raster has no CRS; assign one (e.g. gdal_edit.py -a_srs) and retry")
    if labels.crs.is_geographic:
        raise CRSError(
            f"{path}: CRS {labels.crs.to_string()} is geographic; reproject to a metric CRS (e.g. UTM) first"
        )


def write_label_raster(path: str | os.PathLike[str], labels: LabelRaster) -> None:
    """Write a two-band label raster (deflate-compressed, tiled), atomically."""
    h, w = labels.shape
    profile = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": 2,
        "dtype": "int32",
        "crs": labels.crs,
        "transform": labels.transform,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    if w < 256 or h < 256:
        profile.pop("tiled"), profile.pop("blockxsize"), profile.pop("blockysize")
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(labels.instance.astype(np.int32), 1)
        dst.write(labels.semantic.astype(np.int32), 2)
        dst.set_band_description(1, "instance")
        dst.set_band_description(2, "class")


def ground_sample_distance(transform: Affine, crs: CRS | None) -> float:
    """Metres per pixel of a raster grid (geographic grids: measured at the equator-scaled latitude of y0)."""
    size = (abs(transform.a) * abs(transform.e)) ** 0.5
    if crs is None or not crs.is_geographic:
        return float(size)  # projected CRSs used here are metric (UTM and the like)
    import math

    lat = math.radians(transform.f + transform.e / 2)
    # one degree of latitude ~111.32 km; longitude shrinks with cos(lat): use the geometric mean
    return float(111_320.0 * size * math.sqrt(max(math.cos(lat), 1e-6)))


def rasterize_layer(
    layer: gpd.GeoDataFrame, shape: tuple[int, int], transform: Affine, crs: CRS
) -> LabelRaster:
    """Burn a polygon layer with a ``class`` column onto a grid: instance id i + 1 is the layer's row i,
    with its class id.

    Larger polygons are drawn first, so small ones inside them (a well in a field) stay on top.
    """
    from rasterio.features import rasterize

    if len(layer) == 0:
        return LabelRaster(np.zeros(shape, np.int32), np.zeros(shape, np.uint8), transform, crs)
    feats = layer.to_crs(crs)
    order = np.argsort(-feats.geometry.area.to_numpy(), kind="stable")
    ids = np.arange(1, len(feats) + 1, dtype=np.int32)
    classes = np.array([0] + [class_id(c) for c in feats["class"]], dtype=np.uint8)
    instance = rasterize(
        zip(feats.geometry.to_numpy()[order], ids[order], strict=True),
        out_shape=shape,
        transform=transform,
        dtype="int32",
    )
    return LabelRaster(instance, classes[instance], transform, crs)
