"""Plan a region: a WGS 84 bbox becomes a deterministic grid of UTM tiles, counted without listing them."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import Polygon

from magseg.bundled import BUNDLED_MODEL
from magseg.errors import InputError
from magseg.stac.query import parse_bbox

#: UTM is defined from 80 S to 84 N; beyond, a polar projection is needed (not supported here).
UTM_LAT_RANGE = (-80.0, 84.0)
#: Widest bbox (degrees of longitude) planned in one zone: at 20 degrees off the central meridian the
#: transverse Mercator scale error is already ~6 % at the equator, so wider boxes must be split.
MAX_LON_SPAN = 40.0
#: The bbox edges are densified every this many degrees before reprojection, so the curved UTM outline
#: is followed to well under a metre and tile membership does not depend on the bbox's size.
DENSIFY_DEG = 0.05

#: Default tiling: a 384 px core + 64 px margins makes 512 px windows, the scene size the bundled model
#: was trained on (a model sees the whole window as its scene); larger models take larger tiles.
DEFAULT_TILE_PX = 384
DEFAULT_MARGIN_PX = 64

Bbox = tuple[float, float, float, float]
Bounds = tuple[float, float, float, float]


def check_bbox(bbox: Sequence[float], max_lon_span: float | None = MAX_LON_SPAN) -> Bbox:
    """A (west, south, east, north) WGS 84 bbox checked for planning; InputError (one line) otherwise.

    ``max_lon_span`` bounds a bbox planned in one UTM zone; None for plans split by zone (magseg.mapping.zones).
    """
    # the checks every bbox gets (four finite numbers, in range, not inverted) live with the STAC search
    checked = parse_bbox(bbox)
    if checked is None:
        raise InputError("a bbox is required: give west south east north in degrees")
    w, s, e, n = checked
    if w == e or s == n:
        raise InputError(f"bbox {bbox!r} has no area: give a box with west < east and south < north")
    if s < UTM_LAT_RANGE[0] or n > UTM_LAT_RANGE[1]:
        raise InputError(f"bbox {bbox!r} leaves UTM's 80S..84N: clip it to that latitude range")
    if max_lon_span is not None and e - w > max_lon_span:
        raise InputError(
            f"bbox {bbox!r} spans {e - w:g} degrees of longitude (max {max_lon_span:g} in one UTM zone): "
            "split it into narrower boxes, or plan it by zone (magseg.mapping.zones.plan_zones)"
        )
    return (w, s, e, n)


def utm_epsg(lon: float, lat: float) -> int:
    """The EPSG code of the standard UTM zone holding (lon, lat): 326zz north, 327zz south.

    The Norway/Svalbard zone exceptions are ignored on purpose: any zone works for a plan, and the
    plain rule keeps the grid (and tile ids) a pure function of the bbox centre.
    """
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


@lru_cache(maxsize=16)
def transformer(src: int, dst: int) -> Transformer:
    """A cached (lon, lat)-ordered pyproj transformer between two EPSG codes."""
    return Transformer.from_crs(src, dst, always_xy=True)


def _ring(bounds: Bounds, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The closed outline of a rectangle with ``n`` points per edge (corners included once)."""
    x0, y0, x1, y1 = bounds
    t = np.linspace(0.0, 1.0, n, endpoint=False)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(n, x1), x1 - (x1 - x0) * t, np.full(n, x0)])
    ys = np.concatenate([np.full(n, y0), y0 + (y1 - y0) * t, np.full(n, y1), y1 - (y1 - y0) * t])
    return xs, ys


@dataclass(frozen=True)
class Tile:
    """One output tile: a cell of the fixed global grid of its UTM CRS (row counts northward)."""

    epsg: int
    col: int
    row: int
    size_m: float  # tile side in metres
    margin_m: float  # overlap margin read around the core, metres
    # Longitudes where the tile's zone part was cut from a neighbouring zone's (None: no cut on that side).
    # The tile writes only ground east of cut_w and west of cut_e; pieces cut there join across the zone line.
    cut_w: float | None = None
    cut_e: float | None = None

    @property
    def id(self) -> str:
        return f"{self.epsg}_{self.col}_{self.row}"

    @property
    def bounds(self) -> Bounds:
        """Core bounds (minx, miny, maxx, maxy) in the UTM CRS: what this tile writes."""
        x0, y0 = self.col * self.size_m, self.row * self.size_m
        return (x0, y0, x0 + self.size_m, y0 + self.size_m)

    @property
    def read_bounds(self) -> Bounds:
        """Core bounds grown by the margin: what this tile reads, so objects on the seams are seen whole."""
        x0, y0, x1, y1 = self.bounds
        m = self.margin_m
        return (x0 - m, y0 - m, x1 + m, y1 + m)

    @property
    def footprint(self) -> Polygon:
        """The core's outline in WGS 84 (lon, lat), densified so the curved edges are followed."""
        return self._lonlat(self.bounds)

    @property
    def read_footprint(self) -> Polygon:
        """The read window's outline (core + margin) in WGS 84: what a scene must meet to be read."""
        return self._lonlat(self.read_bounds)

    def _lonlat(self, bounds: Bounds) -> Polygon:
        xs, ys = _ring(bounds, 8)
        lon, lat = transformer(self.epsg, 4326).transform(xs, ys)
        return Polygon(np.column_stack([lon, lat]))


@dataclass(frozen=True)
class RegionPlan:
    """The tiles covering a bbox, stored as per-row column runs so huge plans cost O(rows) memory."""

    bbox: Bbox
    epsg: int
    gsd: float
    tile_px: int
    margin_px: int
    patch: int
    runs: tuple[tuple[int, int, int], ...]  # (row, first col, last col), rows ascending
    bbox_area_km2: float  # geodesic area of the bbox itself
    cuts: tuple[float | None, float | None] = (None, None)  # zone lines cutting the bbox west / east

    @property
    def crs(self) -> str:
        return f"EPSG:{self.epsg}"

    @property
    def tile_m(self) -> float:
        return self.tile_px * self.gsd

    @property
    def n_tiles(self) -> int:
        return sum(c1 - c0 + 1 for _, c0, c1 in self.runs)

    @property
    def area_km2(self) -> float:
        """The tiles' core area in UTM square kilometres (the area actually mapped, in grid metres)."""
        return self.n_tiles * self.tile_m**2 / 1e6

    @property
    def patches_per_tile(self) -> int:
        return (self.tile_px // self.patch) ** 2

    @property
    def n_patches(self) -> int:
        """Core area / patch area: the patches written (the margins are read, not written)."""
        return self.n_tiles * self.patches_per_tile

    @property
    def tiles(self) -> Iterator[Tile]:
        """Every tile, lazily, row by row (south to north) and west to east within a row."""
        size, margin = self.tile_m, self.margin_px * self.gsd
        for row, c0, c1 in self.runs:
            for col in range(c0, c1 + 1):
                yield Tile(self.epsg, col, row, size, margin, *self.cuts)

    def tile_at(self, index: int) -> Tile:
        """The ``index``-th tile of ``tiles`` in O(rows), without listing the ones before it."""
        if not 0 <= index < self.n_tiles:
            raise IndexError(f"tile index {index} outside 0..{self.n_tiles - 1}")
        for row, c0, c1 in self.runs:
            if index <= c1 - c0:
                return Tile(self.epsg, c0 + index, row, self.tile_m, self.margin_px * self.gsd, *self.cuts)
            index -= c1 - c0 + 1
        raise AssertionError("unreachable: index checked against n_tiles")

    def __contains__(self, tile_id: object) -> bool:
        """Whether a tile id ("<epsg>_<col>_<row>") is one of this plan's tiles."""
        try:
            epsg, col, row = (int(v) for v in str(tile_id).split("_"))
        except ValueError:
            return False
        return epsg == self.epsg and any(r == row and c0 <= col <= c1 for r, c0, c1 in self.runs)

    def estimate(self, tokens_per_patch: float, patches_per_s_per_gpu: float) -> dict[str, Any]:
        """Output tokens and GPU-hours at a throughput.

        The model writes every patch of a tile's read window (core + margins), so GPU-hours count
        ``patches_with_margin``; tokens count the core patches, the ones that end up in the layer.
        """
        if tokens_per_patch < 0 or not patches_per_s_per_gpu > 0:
            raise InputError("need tokens_per_patch >= 0 and patches_per_s_per_gpu > 0")
        read_side = math.ceil((self.tile_px + 2 * self.margin_px) / self.patch)
        return {
            "tiles": self.n_tiles,
            "patches": self.n_patches,
            "patches_with_margin": self.n_tiles * read_side**2,
            "tokens": self.n_patches * tokens_per_patch,
            "tokens_per_patch": tokens_per_patch,
            "patches_per_s_per_gpu": patches_per_s_per_gpu,
            "gpu_hours": self.n_tiles * read_side**2 / patches_per_s_per_gpu / 3600.0,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "bbox": list(self.bbox),
            "crs": self.crs,
            "gsd_m": self.gsd,
            "tile_px": self.tile_px,
            "margin_px": self.margin_px,
            "patch_px": self.patch,
            "tiles": self.n_tiles,
            "patches": self.n_patches,
            "area_km2": self.area_km2,
            "bbox_area_km2": self.bbox_area_km2,
        }


def bbox_outline(bbox: Bbox, epsg: int) -> Polygon:
    """The bbox's outline in the UTM CRS, densified every DENSIFY_DEG so its curved edges are followed."""
    w, s, e, n = bbox
    per_edge = int(min(max(math.ceil(max(e - w, n - s) / DENSIFY_DEG), 16), 4096))
    lon, lat = _ring(bbox, per_edge)
    xs, ys = transformer(4326, epsg).transform(lon, lat)
    return Polygon(np.column_stack([xs, ys]))


def _row_runs(outline: Polygon, tile_m: float) -> tuple[tuple[int, int, int], ...]:
    """Per grid row, the column runs of the tiles whose interior meets the outline.

    Each row band is intersected with the outline once (vectorised in GEOS); every connected piece of
    a band covers every column between its x-extremes, so the runs are exact and never list a tile.
    Rows that only touch the outline on a line are skipped (a shared edge is not coverage).
    """
    minx, miny, maxx, maxy = outline.bounds
    r0, r1 = math.floor(miny / tile_m), math.ceil(maxy / tile_m) - 1
    rows = np.arange(r0, r1 + 1)
    bands = shapely.box(minx - tile_m, rows * tile_m, maxx + tile_m, (rows + 1) * tile_m)
    shapely.prepare(outline)
    pieces, index = shapely.get_parts(shapely.intersection(outline, bands), return_index=True)
    keep = shapely.area(pieces) > 0
    bounds = shapely.bounds(pieces[keep])
    runs: list[tuple[int, int, int]] = []
    for row, (x0, _, x1, _) in zip(rows[index[keep]], bounds, strict=True):
        runs.append((int(row), math.floor(x0 / tile_m), math.ceil(x1 / tile_m) - 1))
    runs.sort()
    # Pieces of one row may share a column (a piece ending mid-tile, the next starting in it): merge.
    merged: list[tuple[int, int, int]] = []
    for row, c0, c1 in runs:
        if merged and merged[-1][0] == row and c0 <= merged[-1][2] + 1:
            merged[-1] = (row, merged[-1][1], max(merged[-1][2], c1))
        else:
            merged.append((row, c0, c1))
    return tuple(merged)


def plan_region(
    bbox: Sequence[float],
    *,
    gsd: float = 0.5,
    tile_px: int = DEFAULT_TILE_PX,
    margin_px: int = DEFAULT_MARGIN_PX,
    patch: int = 64,
    epsg: int | None = None,
) -> RegionPlan:
    """Plan the mapping of a WGS 84 (west, south, east, north) bbox.

    The tiles live in the UTM zone of the bbox centre (a bbox across several zones is planned in that
    one zone), on a global grid with origin (0, 0) and step tile_px * gsd metres, so the same ground
    always gets the same tile ids (``epsg`` fixes the zone instead, e.g. one zone for every request of
    a tile server). Only tiles whose core meets the reprojected bbox are kept. Planning
    costs O(rows), not O(tiles): all of India's cropland is planned in well under a second.
    """
    box = check_bbox(bbox)
    if not (math.isfinite(gsd) and gsd > 0):
        raise InputError(f"gsd {gsd!r} must be a positive number of metres per pixel")
    if patch < 1 or tile_px < patch or tile_px % patch:
        raise InputError(f"tile_px {tile_px} must be a positive multiple of the patch size {patch}")
    if margin_px < 0:
        raise InputError(f"margin_px {margin_px} must be >= 0")
    w, s, e, n = box
    epsg = epsg or utm_epsg((w + e) / 2.0, (s + n) / 2.0)
    runs = _row_runs(bbox_outline(box, epsg), tile_px * gsd)
    return RegionPlan(box, epsg, gsd, tile_px, margin_px, patch, runs, geodesic_area_km2(box))


def geodesic_area_km2(bbox: Bbox) -> float:
    """The area of a WGS 84 bbox on the ellipsoid, km² (its edges followed, 64 points each)."""
    lon, lat = _ring(bbox, 64)
    area_m2, _ = Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)
    return abs(area_m2) / 1e6


@dataclass(frozen=True)
class ModelRates:
    """What a model's evaluation measured: its patch size, output tokens per patch (seam re-reads'
    included), patches/s (re-reads' time included) and the seam re-reads it ran per patch."""

    patch: int
    tokens_per_patch: float | None
    patches_per_s: float | None
    source: str  # where the numbers came from
    rereads_per_patch: float = 0.0  # offset patches generated per patch (magseg.inference.rereads)


def _recorded_patch(folder: Path) -> int | None:
    """The patch size in the model's card; the reader is imported only when there is a card to read,
    because magseg.inference pulls in transformers (seconds) and planning should stay instant."""
    markers = ("magseg.json", "adapter_config.json", "train_config.yaml")
    if not (any((folder / m).is_file() for m in markers) or folder.name.startswith("checkpoint-")):
        return None
    from magseg.inference.meta import read_model_meta

    meta = read_model_meta(folder)
    return meta.patch if meta is not None else None


def read_model_rates(model_dir: str | os.PathLike[str] = BUNDLED_MODEL) -> ModelRates:
    """The patch size and the measured tokens/patch and patches/s of a model (from its eval.json).

    The patch size is the one eval.json's config was measured with, else the model card's, else 64.
    """
    folder = Path(model_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such model folder; give --model a model directory")
    card = folder / "eval.json"
    values: dict[str, Any] = {}
    if card.is_file():
        try:
            loaded = json.loads(card.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{card}: not valid JSON ({exc}); rerun `magseg eval` to rewrite it") from exc
        values = loaded if isinstance(loaded, dict) else {}
    config = values.get("config")
    patch = config.get("patch") if isinstance(config, dict) else None
    if not isinstance(patch, int):
        patch = _recorded_patch(folder) or 64
    tokens, rate = values.get("tokens_per_patch"), values.get("patches_per_s")
    rereads, patches = values.get("rereads"), values.get("n_patches")
    again = rereads.get("patches") if isinstance(rereads, dict) else None
    per_patch = again / patches if isinstance(again, int) and isinstance(patches, int) and patches else 0.0
    return ModelRates(
        patch,
        float(tokens) if isinstance(tokens, int | float) else None,
        float(rate) if isinstance(rate, int | float) else None,
        str(card) if card.is_file() else f"no eval.json in {folder}",
        float(per_patch),
    )
