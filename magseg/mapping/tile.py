"""One tile's work after the model: refine its read window, keep the core, polygonize, flag seam pieces."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon

from magseg.classes import BACKGROUND
from magseg.confidence import Calibrator, instance_confidence
from magseg.labels import LabelRaster
from magseg.mapping.plan import Tile, transformer
from magseg.refine import refine
from magseg.refine.boundary import BoundaryModel, OrientedBoundary
from magseg.vector import CONFIDENCE, polygonize

__all__ = ["RefineSettings", "TilePieces", "core_window", "tile_pieces"]

#: Sides of a tile core, in the order of the ``seams`` column ("W" = the piece reaches the west edge).
SIDES = ("W", "S", "E", "N")
#: The ``seams`` flag of a piece cut on a UTM zone line (joined across zones by magseg.mapping.seams).
ZONE_SIDE = "Z"
#: Points per degree of latitude along a zone line when it is drawn in a zone's coordinates (~1 per 110 m).
ZONE_LINE_DENSITY = 1000


@dataclass(frozen=True)
class RefineSettings:
    """How a tile's stitched mask becomes polygons (the knobs of magseg.refine and magseg.vector)."""

    threshold: float = 0.3  # boundary probability below which a pixel seeds a field
    snap_px: int | None = None  # None: one RRLE cell (patch // grid)
    min_area_m2: float = 10.0  # polygons smaller than this are dropped
    simplify_m: float = 0.0  # coverage simplification tolerance in metres (0: exact pixel outlines)
    # CIELAB step that maps to boundary probability 1 in the image fallback. One value for the whole
    # region keeps neighbouring tiles' boundary maps equal along seams; None: the job estimates it.
    boundary_scale: float | None = None


@dataclass
class TilePieces:
    """The polygons a tile owns (its core only), in the tile's UTM CRS, with the core sides each reaches."""

    frame: gpd.GeoDataFrame  # id, class, instance, metrics:*, [magseg:confidence,] seams, geometry
    semantic: np.ndarray  # the refined core mask (uint8), for quick looks


def core_window(tile: Tile, gsd: float) -> tuple[slice, slice]:
    """(rows, columns) of the tile's core inside its read window, in pixels."""
    margin, side = round(tile.margin_m / gsd), round(tile.size_m / gsd)
    return slice(margin, margin + side), slice(margin, margin + side)


def tile_pieces(
    tile: Tile,
    semantic: np.ndarray,
    image: np.ndarray,
    valid: np.ndarray,
    transform: Affine,
    crs: CRS,
    gsd: float,
    *,
    settings: RefineSettings,
    snap_px: int,
    boundary: BoundaryModel | None = None,
    token_conf: np.ndarray | None = None,
    calibrator: Calibrator | None = None,
) -> TilePieces:
    """Refine the whole read window (the margin gives objects on the seams their context), then keep the core.

    Instances are cut over core + margin so that the watershed sees a field that crosses the core edge
    whole; the core is then cut out exactly on the tile grid, so pieces of neighbouring tiles meet on a
    common line and magseg.mapping.seams can join them. Pixels without imagery are background. Ids are
    ``<tile id>-<class>-<instance>``: unique across a region, stable for a given tile result. With the
    model's per-pixel token probabilities (``token_conf``) and a ``calibrator``, each piece gets its
    instance's calibrated confidence (magseg.confidence), computed over the whole read window.
    """
    sem = np.where(valid, semantic, BACKGROUND).astype(np.uint8)
    if boundary is None:
        boundary = OrientedBoundary(gsd=gsd, scale=settings.boundary_scale)
    result = refine(
        sem,
        image,
        model=boundary,
        gsd=gsd,
        threshold=settings.threshold,
        snap_px=snap_px if settings.snap_px is None else settings.snap_px,
    )
    rows, cols = core_window(tile, gsd)
    instance, core_sem = result.instance[rows, cols], result.semantic[rows, cols]
    core_transform = transform @ Affine.translation(cols.start, rows.start)
    layer = polygonize(
        LabelRaster(instance, core_sem, core_transform, crs),
        min_area=settings.min_area_m2,
        simplify=settings.simplify_m,
    )
    layer["id"] = tile.id + "-" + layer["id"]
    layer["seams"] = _seams(instance, layer["instance"].to_numpy())
    if token_conf is not None and calibrator is not None:
        conf = instance_confidence(
            calibrator, result.instance, result.semantic, token_conf, result.boundary, gsd
        )
        layer[CONFIDENCE] = np.array([conf[int(i)] for i in layer["instance"]], dtype=np.float32)
    return TilePieces(cut_to_zone(layer, tile), core_sem)


def zone_strip(tile: Tile) -> Polygon | None:
    """The ground the tile may write, in its CRS: between its zone cuts (None: the tile is cut nowhere).

    The zone line is drawn through points on a fixed latitude lattice (ZONE_LINE_DENSITY), so the tiles
    on both sides of a line, each in its own zone's coordinates, cut along the very same points.
    """
    if tile.cut_w is None and tile.cut_e is None:
        return None
    w, s, e, n = tile.read_footprint.bounds
    lat0 = np.floor(s * ZONE_LINE_DENSITY - 1) / ZONE_LINE_DENSITY
    lat1 = np.ceil(n * ZONE_LINE_DENSITY + 1) / ZONE_LINE_DENSITY
    lats = np.arange(round(lat0 * ZONE_LINE_DENSITY), round(lat1 * ZONE_LINE_DENSITY) + 1) / ZONE_LINE_DENSITY
    west = tile.cut_w if tile.cut_w is not None else w - 1.0
    east = tile.cut_e if tile.cut_e is not None else e + 1.0
    if east <= w or west >= e:
        return Polygon()  # the whole tile lies beyond a cut (its core only touches the zone part)
    lon = np.concatenate([np.full(len(lats), west), np.full(len(lats), east)])
    lat = np.concatenate([lats, lats[::-1]])
    x, y = transformer(4326, tile.epsg).transform(lon, lat)
    return Polygon(np.column_stack([x, y]))


def cut_to_zone(layer: gpd.GeoDataFrame, tile: Tile) -> gpd.GeoDataFrame:
    """Clip a tile's pieces to its zone strip; a piece cut there gets the ``Z`` seam flag."""
    strip = zone_strip(tile)
    if strip is None or len(layer) == 0:
        return layer
    geoms = layer.geometry.to_numpy()
    shapely.prepare(strip)
    inside = shapely.contains(strip, geoms)
    if inside.all():
        return layer
    clipped = shapely.intersection(geoms, strip)
    polygonal = np.array([_polygonal(g) for g in clipped], dtype=object)
    area = shapely.area(polygonal)
    keep = area > 0
    out = layer.copy()
    out["geometry"] = polygonal
    cut = ~inside
    flags = out["seams"].to_numpy(dtype=object)
    out["seams"] = [(f + "," + ZONE_SIDE).strip(",") if c else f for f, c in zip(flags, cut, strict=True)]
    out["metrics:area"] = area
    out["metrics:perimeter"] = shapely.length(polygonal)
    return out[keep].reset_index(drop=True)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of an intersection (a clip can leave stray lines or points beside polygons)."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon | shapely.MultiPolygon)]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _seams(instance: np.ndarray, ids: np.ndarray) -> list[str]:
    """For each instance id, the core sides (W, S, E, N) its pixels reach, comma-joined."""
    edges = {
        "W": set(np.unique(instance[:, 0]).tolist()),
        "S": set(np.unique(instance[-1, :]).tolist()),
        "E": set(np.unique(instance[:, -1]).tolist()),
        "N": set(np.unique(instance[0, :]).tolist()),
    }
    return [",".join(side for side in SIDES if int(i) in edges[side]) for i in ids]
