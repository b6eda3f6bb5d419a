"""Render a tile: classes as a transparent PNG, fields as clipped GeoJSON, imagery through rio-tiler."""

from __future__ import annotations

import io
import json
from typing import Any

import geopandas as gpd
import morecantile
import numpy as np
import pandas as pd
import pystac
import rasterio
from PIL import Image
from rasterio.features import rasterize
from rasterio.transform import from_bounds
from rio_tiler.errors import RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from rio_tiler.mosaic import mosaic_reader
from rio_tiler.mosaic.methods import FirstMethod

from magseg.classes import class_id
from magseg.mapping.read import GDAL_ENV
from magseg.serve.compute import clip_lonlat
from magseg.serve.xyz import TileRequestError, tile_bounds, tile_lonlat_bounds
from magseg.stac.hrefs import asset_href
from magseg.vector import CONFIDENCE
from magseg.viz import colourise

__all__ = ["class_png", "fade", "fields_geojson", "imagery_png", "png_bytes"]

SIZE = 256
#: The opacity (share of the class colour's) of a polygon of confidence 0; confidence 1 is fully opaque.
MIN_OPACITY = 0.2


def png_bytes(array: np.ndarray) -> bytes:
    """An (H, W[, C]) uint8 array as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _burn(
    merc: gpd.GeoDataFrame, tile: morecantile.Tile, values: list[Any], size: int, **kw: Any
) -> np.ndarray:
    """One value per polygon (Web Mercator) burnt onto the tile's pixel grid."""
    transform = from_bounds(*tile_bounds(tile), size, size)
    return rasterize(
        zip(merc.geometry, values, strict=True), out_shape=(size, size), transform=transform, **kw
    )


def class_mask(layer: gpd.GeoDataFrame, tile: morecantile.Tile, size: int = SIZE) -> np.ndarray:
    """The layer's classes on the tile's pixel grid (Web Mercator), 0 where no polygon lies."""
    if len(layer) == 0:
        return np.zeros((size, size), np.uint8)
    merc = layer.to_crs(3857)
    return _burn(merc, tile, [class_id(c) for c in merc["class"]], size, dtype="uint8")


def class_png(layer: gpd.GeoDataFrame, tile: morecantile.Tile) -> bytes:
    """Classes coloured, background transparent, 256 x 256; with a confidence column, each polygon's
    opacity follows its confidence (faint: check first)."""
    if len(layer) == 0:
        return png_bytes(colourise(np.zeros((SIZE, SIZE), np.uint8)))
    merc = layer.to_crs(3857)  # once for both rasters
    rgba = colourise(_burn(merc, tile, [class_id(c) for c in merc["class"]], SIZE, dtype="uint8"))
    if CONFIDENCE in merc.columns:
        conf = np.nan_to_num(merc[CONFIDENCE].to_numpy(np.float32), nan=1.0).tolist()
        rgba = fade(rgba, _burn(merc, tile, conf, SIZE, fill=1.0, dtype="float32"))
    return png_bytes(rgba)


def fade(rgba: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Each pixel's opacity scaled by its polygon's confidence ((H, W) in [0, 1], 1 where none), in place: a
    field of confidence 0 keeps MIN_OPACITY of its colour's, one of confidence 1 all of it."""
    scale = MIN_OPACITY + (1 - MIN_OPACITY) * np.clip(confidence, 0.0, 1.0)
    rgba[..., 3] = np.round(rgba[..., 3] * scale).astype(np.uint8)
    return rgba


def fields_geojson(layer: gpd.GeoDataFrame, tile: morecantile.Tile) -> dict[str, Any]:
    """The polygons meeting the tile, clipped to it, as a GeoJSON FeatureCollection in WGS 84."""
    clipped = clip_lonlat(layer, tile_lonlat_bounds(tile))
    names = ("id", "class", "metrics:area", CONFIDENCE, "determination:datetime")
    keep = [c for c in names if c in clipped.columns]
    if len(clipped) == 0:
        return {"type": "FeatureCollection", "features": []}
    if "determination:datetime" in clipped.columns:  # ISO text: JSON has no timestamps
        when = clipped["determination:datetime"]
        clipped["determination:datetime"] = [t.isoformat() if pd.notna(t) else None for t in when]
    out: dict[str, Any] = json.loads(clipped[[*keep, "geometry"]].to_json(drop_id=True, to_wgs84=False))
    return out


def imagery_png(items: list[pystac.Item], tile: morecantile.Tile, asset: str = "image") -> bytes:
    """The imagery of the tile from the catalog's items (least cloudy first), rio-tiler's mosaic."""

    def read(item: pystac.Item, x: int, y: int, z: int) -> ImageData:
        with Reader(asset_href(item, asset)) as src:
            return src.tile(x, y, z, indexes=(1, 2, 3))

    if not items:
        raise TileRequestError(404, f"no imagery in tile {tile.z}/{tile.x}/{tile.y}")
    try:
        with rasterio.Env(**GDAL_ENV):
            img, _ = mosaic_reader(
                items, read, tile.x, tile.y, tile.z, pixel_selection=FirstMethod, threads=1
            )
    except (TileOutsideBounds, RioTilerError):
        raise TileRequestError(404, f"no imagery in tile {tile.z}/{tile.x}/{tile.y}") from None
    return img.render(img_format="PNG")
