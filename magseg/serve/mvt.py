"""Mapbox Vector Tiles of a layer (mapbox-vector-tile): fields with id and class, or class coverage.

One MVT layer, ``fields``, extent 4096, y down. Fields are clipped to the tile plus a 64-unit buffer and
simplified to a quarter of a 256 px tile's pixel (4 units); ``id`` and ``class`` are properties (fiboa
ids are strings, MVT feature ids integers). A coverage tile holds one polygon per connected patch of a
class raster coarsened to 64 x 64 cells (simplified by half a cell), with ``class`` only. A tile with no feature is an empty body (a valid empty MVT).
"""

from __future__ import annotations

from typing import Any

import mapbox_vector_tile
import morecantile
import numpy as np
import shapely
from affine import Affine
from mapbox_vector_tile.encoder import on_invalid_geometry_make_valid
from rasterio.features import shapes
from shapely.geometry import shape

from magseg.classes import CLASS_NAMES
from magseg.serve.layer import BUFFER, EXTENT, Polygons
from magseg.serve.xyz import tile_bounds
from magseg.vector import CONFIDENCE

__all__ = ["COVERAGE_CELL", "LAYER_NAME", "SIMPLIFY", "coarsen", "coverage_mvt", "fields_mvt"]

LAYER_NAME = "fields"
SIMPLIFY = 4.0  # MVT units: a quarter pixel of a 256 px tile
COVERAGE_CELL = 4  # coverage cells of 4 x 4 pixels of a 256 px tile (64 units)
_OPTIONS: dict[str, Any] = {
    "quantize_bounds": None,  # coordinates come in tile units already
    "y_coord_down": True,
    "extents": EXTENT,
    "on_invalid_geometry": on_invalid_geometry_make_valid,
}


def _encode(features: list[dict[str, Any]]) -> bytes:
    if not features:
        return b""
    body: bytes = mapbox_vector_tile.encode(
        [{"name": LAYER_NAME, "features": features}], default_options=_OPTIONS
    )
    return body


def fields_mvt(polys: Polygons, tile: morecantile.Tile) -> bytes:
    """The polygons (Web Mercator) in tile units, clipped, simplified, with their id, class and confidence."""
    if not len(polys):
        return b""
    minx, miny, maxx, maxy = tile_bounds(tile)
    scale = EXTENT / (maxx - minx)

    def to_tile(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([(xy[:, 0] - minx) * scale, (maxy - xy[:, 1]) * scale])

    geoms = shapely.transform(polys.geoms, to_tile)
    geoms = shapely.clip_by_rect(geoms, -BUFFER, -BUFFER, EXTENT + BUFFER, EXTENT + BUFFER)
    geoms = shapely.simplify(geoms, SIMPLIFY, preserve_topology=True)
    keep = ~shapely.is_empty(geoms) & np.isin(shapely.get_type_id(geoms), (3, 6))  # (multi)polygons
    features = [
        {"geometry": g, "properties": _properties(i, c, f)}
        for g, i, c, f in zip(
            geoms[keep],
            polys.ids[keep],
            polys.classes[keep].tolist(),
            polys.confidence[keep].tolist(),
            strict=True,
        )
    ]
    return _encode(features)


def _properties(field_id: object, cls: int, confidence: float) -> dict[str, object]:
    """A feature's id and class, and its confidence where the layer carries one."""
    props: dict[str, object] = {"id": str(field_id), "class": CLASS_NAMES[cls]}
    if confidence == confidence:  # not NaN
        props[CONFIDENCE] = round(float(confidence), 3)
    return props


def coarsen(raster: np.ndarray, factor: int = COVERAGE_CELL) -> np.ndarray:
    """(n, n) class ids -> (n/f, n/f): each cell the commonest class of its f x f pixels when a quarter or
    more of them hold one, else 0 (a coverage without speckle: far fewer, simpler polygons to encode)."""
    n = raster.shape[0] // factor
    tiles = raster[: n * factor, : n * factor].reshape(n, factor, n, factor).transpose(0, 2, 1, 3)
    blocks = tiles.reshape(n, n, factor * factor)
    counts = np.stack([(blocks == c).sum(axis=-1) for c in range(1, len(CLASS_NAMES))], axis=-1)
    out = (counts.argmax(axis=-1) + 1).astype(np.uint8)
    out[counts.sum(axis=-1) * 4 < factor * factor] = 0
    return out


def coverage_mvt(raster: np.ndarray | None) -> bytes:
    """A class raster (0 = none), coarsened, as one polygon per connected patch of a class."""
    if raster is None or not raster.any():
        return b""
    raster = coarsen(raster)
    transform = Affine.scale(EXTENT / raster.shape[1], EXTENT / raster.shape[0])
    found = list(shapes(raster, mask=raster > 0, transform=transform))
    # the raster's staircase simplified away (half a pixel): a fraction of the vertices to encode
    geoms = shapely.simplify(np.array([shape(g) for g, _ in found]), EXTENT / raster.shape[1] / 2)
    features = [
        {"geometry": g, "properties": {"class": CLASS_NAMES[int(v)]}}
        for g, (_, v) in zip(geoms, found, strict=True)
        if not g.is_empty
    ]
    return _encode(features)
