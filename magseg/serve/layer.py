"""A finished field layer (the region job's partitioned fiboa GeoParquet) as tiles at any zoom.

The layer folder holds ``quadkey=<qk>/part-*.parquet`` (magseg.mapping.layer.write_partitioned). An index of
the parts (path, mtime, GeoParquet bbox, rows) is rescanned every ``refresh_s`` seconds; a tile reads only
the parts whose bbox meets it. A part's polygons are loaded once (Web Mercator, an STRtree) into an LRU
keyed by path and mtime, so a rewritten part is read again. Every cached result carries the tile's
*signature* (the (path, mtime) of the parts meeting it) and is recomputed when that changes.

From ``detail_zoom`` on, a tile is drawn from its polygons (each field with its id). Below it, a field
smaller than 2 pixels is drawn as the pixel of its bbox centre (kept per part, a few bytes a field, so a
country zoom needs no polygon) and a larger one with every pixel it touches: fields stay
visible when zoomed out, and an overview tile costs a few numpy operations per part.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import morecantile
import numpy as np
import pyarrow.parquet as pq
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.transform import from_bounds

from magseg.classes import class_id
from magseg.errors import EmptyInputError, InputError
from magseg.mapping.layer import geo_bbox, partition_files
from magseg.serve.xyz import tile_bounds, tile_lonlat_bounds
from magseg.vector import CONFIDENCE

__all__ = [
    "BUFFER",
    "EXTENT",
    "SIZE",
    "FieldLayer",
    "Part",
    "Points",
    "Polygons",
    "Signature",
    "geojson_polygons",
    "part_meta",
]

SIZE = 256  # raster tile side, px
EXTENT = 4096  # MVT tile side, units
BUFFER = 64  # MVT units read (and kept) around a tile, so renderers draw no seams at tile edges
_MAX_LAT = 85.0511287798  # Web Mercator's edge
_TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)

#: The parts meeting a tile, as (path, mtime_ns): a cached tile is valid while its signature holds.
Signature = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Part:
    """One part file: where, when written, and what it covers (WGS 84 bbox from its GeoParquet metadata)."""

    path: str
    mtime_ns: int
    bbox: tuple[float, float, float, float]
    rows: int


@dataclass(frozen=True)
class Polygons:
    """Polygons in Web Mercator with their ids, class ids (magseg.classes) and confidence (float32, NaN where
    the layer has none), one row each."""

    geoms: np.ndarray
    ids: np.ndarray
    classes: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.geoms)

    def take(self, idx: np.ndarray) -> Polygons:
        return Polygons(self.geoms[idx], self.ids[idx], self.classes[idx], self.confidence[idx])


@dataclass(frozen=True)
class Points:
    """A part's overview: per polygon its bbox centre (Web Mercator), class id and largest bbox side."""

    x: np.ndarray
    y: np.ndarray
    classes: np.ndarray
    size: np.ndarray
    confidence: np.ndarray


def part_meta(path: Path) -> Part:
    """A part's index entry from its footer alone (the geometry is read only when no bbox is recorded)."""
    mtime = path.stat().st_mtime_ns
    meta = pq.read_metadata(path)
    bbox = geo_bbox(meta.metadata)
    if bbox is None:
        wkb = pq.read_table(path, columns=["geometry"]).column("geometry").to_pylist()
        w, s, e, n = (float(v) for v in shapely.total_bounds(shapely.from_wkb(np.asarray(wkb, dtype=object))))
        bbox = (w, s, e, n)
    return Part(str(path), mtime, bbox, meta.num_rows)


def _to_mercator(geoms: np.ndarray) -> np.ndarray:
    def project(xy: np.ndarray) -> np.ndarray:
        x, y = _TO_MERCATOR.transform(xy[:, 0], np.clip(xy[:, 1], -_MAX_LAT, _MAX_LAT))
        return np.column_stack([x, y])

    out: np.ndarray = shapely.transform(geoms, project)
    return out


def geojson_polygons(geoms: np.ndarray) -> tuple[list[dict[str, Any]], np.ndarray]:
    """(Multi)polygons as GeoJSON Polygon dicts, one per part, and the index of each part's geometry.

    Built from shapely's vectorised coordinate arrays: rasterio reads these an order of magnitude faster
    than it walks shapely's ``__geo_interface__`` (same pixels).
    """
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords = shapely.get_coordinates(rings).tolist()
    ends = np.cumsum(shapely.get_num_coordinates(rings)).tolist()
    polygons: list[list[list[list[float]]]] = [[] for _ in range(len(parts))]
    start = 0
    for end, owner in zip(ends, ring_of.tolist(), strict=True):
        polygons[owner].append(coords[start:end])
        start = end
    return [{"type": "Polygon", "coordinates": c} for c in polygons], part_of


class FieldLayer:
    """Reads a partitioned layer for tiles; not thread-safe: one thread renders (see LayerService)."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        detail_zoom: int = 12,
        cache_parts: int = 32,
        cache_points: int = 1024,
        cache_rasters: int = 2048,
        refresh_s: float = 10.0,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(
                f"{root}: no such layer folder; give the fields/ folder of a finished `magseg map` run"
            )
        self.detail_zoom, self.cache_parts, self.cache_rasters = detail_zoom, cache_parts, cache_rasters
        self.cache_points = cache_points
        self.refresh_s = refresh_s
        self._index: tuple[list[Part], np.ndarray] = ([], np.empty((0, 4)))
        self._scanned = -math.inf
        self.refresh()
        if not self._index[0]:
            raise EmptyInputError(f"{root}: the layer folder holds no quadkey=*/part-*.parquet files")
        self._loaded: OrderedDict[tuple[str, int], tuple[Polygons, shapely.STRtree]] = OrderedDict()
        self._points: OrderedDict[tuple[str, int], Points] = OrderedDict()
        self._rasters: OrderedDict[
            tuple[int, int, int], tuple[Signature, tuple[np.ndarray, np.ndarray | None] | None]
        ] = OrderedDict()
        self.parts_read = 0  # part files loaded (not served from memory), for tests and stats

    # -- the index of parts -------------------------------------------------------------------------
    @property
    def stale(self) -> bool:
        return time.monotonic() - self._scanned >= self.refresh_s

    def refresh(self) -> None:
        """Rescan the folder: new or rewritten parts get their footer read, removed ones drop out."""
        known = {p.path: p for p in self._index[0]}
        parts: list[Part] = []
        for path in partition_files(self.root):
            try:
                old = known.get(str(path))
                fresh = (
                    old if old is not None and old.mtime_ns == path.stat().st_mtime_ns else part_meta(path)
                )
            except FileNotFoundError:  # replaced by a rerun between the listing and the read
                continue
            parts.append(fresh)
        bboxes = np.array([p.bbox for p in parts], dtype=np.float64).reshape(-1, 4)
        self._index = (parts, bboxes)  # one assignment: readers on other threads see old or new, never mixed
        self._scanned = time.monotonic()

    @property
    def parts(self) -> list[Part]:
        return self._index[0]

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of every part, degrees."""
        b = self._index[1]
        if not len(b):
            return (0.0, 0.0, 0.0, 0.0)
        return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))

    def covers(self, tile: morecantile.Tile) -> bool:
        """Whether the tile meets the layer's bounds."""
        w, s, e, n = tile_lonlat_bounds(tile)
        bw, bs, be, bn = self.bounds
        return w <= be and e >= bw and s <= bn and n >= bs

    def meeting(self, tile: morecantile.Tile) -> list[Part]:
        """The parts whose bbox meets the tile and its buffer, newest first."""
        parts, b = self._index
        w, s, e, n = tile_lonlat_bounds(tile)
        dx, dy = (e - w) * BUFFER / EXTENT, (n - s) * BUFFER / EXTENT
        hit = (b[:, 0] <= e + dx) & (b[:, 2] >= w - dx) & (b[:, 1] <= n + dy) & (b[:, 3] >= s - dy)
        return sorted((parts[i] for i in np.flatnonzero(hit)), key=lambda p: -p.mtime_ns)

    def signature(self, tile: morecantile.Tile) -> Signature:
        return tuple(sorted((p.path, p.mtime_ns) for p in self.meeting(tile)))

    # -- polygons -----------------------------------------------------------------------------------
    def _load(self, part: Part) -> tuple[Polygons, shapely.STRtree]:
        key = (part.path, part.mtime_ns)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        file = pq.ParquetFile(part.path)  # one open for the schema and the columns
        has_conf = CONFIDENCE in file.schema_arrow.names
        table = file.read(columns=["id", "class", "geometry"] + ([CONFIDENCE] if has_conf else []))
        wkb = np.asarray(table.column("geometry").to_pylist(), dtype=object)
        geoms = _to_mercator(shapely.from_wkb(wkb))
        names = np.asarray(table.column("class").to_pylist(), dtype=object)
        unique, inverse = np.unique(names.astype(str), return_inverse=True)
        try:
            table_ids = np.array([class_id(c) for c in unique], dtype=np.uint8)
        except ValueError as exc:
            raise InputError(f"{part.path}: {exc}") from None
        ids = np.asarray(table.column("id").to_pylist(), dtype=object)
        classes = table_ids[inverse].reshape(-1)
        conf = (
            np.asarray(table.column(CONFIDENCE).to_pylist(), dtype=np.float32)
            if has_conf
            else np.full(len(ids), np.nan, np.float32)
        )
        loaded = (Polygons(geoms, ids, classes, conf), shapely.STRtree(geoms))
        self._loaded[key] = loaded
        self.parts_read += 1
        while len(self._loaded) > self.cache_parts:
            self._loaded.popitem(last=False)
        # overview points: only fields under 2 pixels are drawn as one, so the bbox centre is close enough
        b = shapely.bounds(geoms)
        size = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        self._remember(key, Points((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, classes, size, conf))
        return loaded

    def _remember(self, key: tuple[str, int], points: Points) -> None:
        self._points[key] = points
        while len(self._points) > self.cache_points:
            self._points.popitem(last=False)

    def points(self, part: Part) -> Points:
        """A part's overview points: from memory, else the part is loaded."""
        key = (part.path, part.mtime_ns)
        if key not in self._points:
            self._load(part)
        self._points.move_to_end(key)
        return self._points[key]

    def polygons(
        self, tile: morecantile.Tile, buffer: int = BUFFER, parts: list[Part] | None = None
    ) -> Polygons:
        """The polygons meeting the tile (and ``buffer`` MVT units around it), unclipped, one per id.

        A rerun may leave a field's old copy in another partition: the copy in the newest part wins.
        """
        minx, miny, maxx, maxy = tile_bounds(tile)
        pad = (maxx - minx) * buffer / EXTENT
        box = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
        found: list[Polygons] = []
        for part in self.meeting(tile) if parts is None else parts:
            polys, tree = self._load(part)
            found.append(polys.take(tree.query(box, predicate="intersects")))
        if not found:
            empty = np.empty(0, dtype=object)
            return Polygons(empty, empty, np.empty(0, dtype=np.uint8), np.empty(0, dtype=np.float32))
        ids = np.concatenate([f.ids for f in found])
        _, first = np.unique(ids.astype(str), return_index=True)
        keep = np.sort(first)
        return Polygons(
            np.concatenate([f.geoms for f in found])[keep],
            ids[keep],
            np.concatenate([f.classes for f in found])[keep],
            np.concatenate([f.confidence for f in found])[keep],
        )

    # -- class rasters ------------------------------------------------------------------------------
    def rasterize(
        self, tile: morecantile.Tile, polys: Polygons, all_touched: bool = False, confidence: bool = False
    ) -> np.ndarray:
        """The polygons' class ids on the tile's 256 px grid (pixel centres inside a polygon), 0 elsewhere;
        with ``confidence``, their confidence instead (float32, 1 where none is known or no polygon lies)."""
        if not len(polys):
            return np.ones((SIZE, SIZE), np.float32) if confidence else np.zeros((SIZE, SIZE), np.uint8)
        transform = from_bounds(*tile_bounds(tile), SIZE, SIZE)
        rings, part_of = geojson_polygons(polys.geoms)
        if confidence:
            values = np.nan_to_num(polys.confidence[part_of], nan=1.0).tolist()
            kw: dict[str, Any] = {"dtype": "float32", "fill": 1.0}
        else:
            values, kw = polys.classes[part_of].tolist(), {"dtype": "uint8"}
        out: np.ndarray = rasterize(
            zip(rings, values, strict=True),
            out_shape=(SIZE, SIZE),
            transform=transform,
            all_touched=all_touched,
            **kw,
        )
        return out

    def overview(self, tile: morecantile.Tile) -> tuple[np.ndarray, np.ndarray | None]:
        """Fields under 2 pixels as their bbox centre's pixel, larger ones as every pixel they touch: the
        class raster and the confidence raster (float32, 1 where none is known; None when no field has one)."""
        minx, miny, maxx, maxy = tile_bounds(tile)
        px = (maxx - minx) / SIZE
        out = np.zeros((SIZE, SIZE), np.uint8)
        conf = np.ones((SIZE, SIZE), np.float32)
        known = False  # any confidence drawn
        large: list[Part] = []
        for part in reversed(self.meeting(tile)):  # oldest first: a newer part's copy of a field wins
            pts = self.points(part)
            small = pts.size < 2 * px
            inside = small & (pts.x >= minx) & (pts.x < maxx) & (pts.y > miny) & (pts.y <= maxy)
            cols = ((pts.x[inside] - minx) / px).astype(np.intp).clip(0, SIZE - 1)
            rows = ((maxy - pts.y[inside]) / px).astype(np.intp).clip(0, SIZE - 1)
            out[rows, cols] = pts.classes[inside]
            conf[rows, cols] = np.nan_to_num(pts.confidence[inside], nan=1.0)
            known |= bool(np.isfinite(pts.confidence[inside]).any())
            if not small.all():
                large.append(part)
        if large:
            polys = self.polygons(tile, buffer=0, parts=large)
            b = shapely.bounds(polys.geoms)
            big = polys.take(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) >= 2 * px)
            drawn = self.rasterize(tile, big, all_touched=True)
            out = np.where(drawn > 0, drawn, out)
            if np.isfinite(big.confidence).any():
                conf = np.where(drawn > 0, self.rasterize(tile, big, all_touched=True, confidence=True), conf)
                known = True
        return out, conf if known else None

    def tile_rasters(self, tile: morecantile.Tile) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The tile's class raster and its confidence raster (uint8, 255 = 1; None when the layer carries no
        ``magseg:confidence``), or None where nothing is drawn; cached while the tile's signature holds."""
        signature = self.signature(tile)
        if not signature:
            return None
        key = (tile.z, tile.x, tile.y)
        hit = self._rasters.get(key)
        if hit is not None and hit[0] == signature:
            self._rasters.move_to_end(key)
            return hit[1]
        if tile.z >= self.detail_zoom:
            polys = self.polygons(tile, buffer=0)
            raster = self.rasterize(tile, polys)
            known = bool(np.isfinite(polys.confidence).any())  # no second pass for a layer without the column
            conf = self.rasterize(tile, polys, confidence=True) if known else None
        else:
            raster, conf = self.overview(tile)
        drawn: tuple[np.ndarray, np.ndarray | None] | None = None
        if raster.any():  # nothing drawn: keep no 64 kB of zeros
            drawn = (raster, None if conf is None else np.round(conf * 255).astype(np.uint8))
        self._rasters[key] = (signature, drawn)
        while len(self._rasters) > self.cache_rasters:
            self._rasters.popitem(last=False)
        return drawn

    def class_raster(self, tile: morecantile.Tile) -> np.ndarray | None:
        """The tile's class raster (None: nothing drawn), cached while the tile's signature holds."""
        drawn = self.tile_rasters(tile)
        return None if drawn is None else drawn[0]
