"""Ground truth of a scene: instance/class rasters and the polygons of every instance, always in agreement."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize, shapes
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from magseg.classes import CLASS_NAMES, CLOUD
from magseg.labels import LabelRaster

#: Pixel-space snapping grid: far coarser than float error at UTM magnitudes (~1e-10 m), far finer than a pixel.
SNAP_PX = 1.0 / 1024


def cloud_instances(mask: np.ndarray) -> list[BaseGeometry]:
    """Pixel-exact polygons of a cloud mask, one per connected component (pixel coordinates)."""
    comp, n = ndimage.label(mask)
    parts: list[list[BaseGeometry]] = [[] for _ in range(n)]
    for geom, value in shapes(comp.astype(np.int32), mask=mask, connectivity=4, transform=Affine.identity()):
        parts[int(value) - 1].append(shapely.geometry.shape(geom))
    return [shapely.union_all(p) for p in parts]


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """The polygons of a repaired geometry (make_valid may return a collection with lines and points)."""
    polys = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(polys) if polys else shapely.Polygon()


def to_crs(geoms: list[BaseGeometry], gsd: float, origin: tuple[float, float]) -> np.ndarray:
    """Pixel-space geometries as valid geometries in the scene CRS.

    Differences of polygons leave vertices a hair's breadth from edges; adding UTM offsets (~1e6) rounds them
    into self-intersections. Snapping to a fine grid first keeps every feature apart by more than that.
    """
    snapped = shapely.set_precision(np.array(geoms, dtype=object), SNAP_PX)
    out = shapely.transform(snapped, lambda xy: xy * [gsd, -gsd] + [origin[0], origin[1]])
    bad = ~shapely.is_valid(out)
    if bad.any():
        out[bad] = [_polygonal(shapely.make_valid(g)) for g in out[bad]]
    return out


def ground_truth(
    objects: list[tuple[BaseGeometry, int]],
    cloud_mask: np.ndarray,
    gsd: float,
    origin: tuple[float, float],
    crs: CRS,
    scene_id: str,
) -> tuple[LabelRaster, gpd.GeoDataFrame]:
    """Label raster and polygons of disjoint ``objects`` (pixel space, with class ids) under a cloud mask.

    Clouds cover what is under them: objects lose their hidden part (flagged ``occluded``), each cloud
    component becomes an instance. Instances left without a pixel are dropped; ids run 1..N.
    """
    size = cloud_mask.shape[0]
    clouds = cloud_instances(cloud_mask) if cloud_mask.any() else []
    hidden = [False] * len(objects)
    if clouds:
        cover = shapely.union_all(clouds)
        shapely.prepare(cover)
        hidden = [bool(cover.intersects(g)) for g, _ in objects]
        objects = [(g.difference(cover) if h else g, c) for (g, c), h in zip(objects, hidden, strict=True)]
    objects = objects + [(g, CLOUD) for g in clouds]
    hidden = hidden + [False] * len(clouds)
    transform = Affine(gsd, 0.0, origin[0], 0.0, -gsd, origin[1])
    geoms = to_crs([g for g, _ in objects], gsd, origin)
    # the raster is burnt from the very polygons that are published, so the two always agree
    pairs = [(g, i + 1) for i, g in enumerate(geoms) if not g.is_empty]
    instance = rasterize(pairs, out_shape=(size, size), transform=transform, dtype="int32") if pairs else None
    if instance is None:
        instance = np.zeros((size, size), np.int32)
    ids = np.flatnonzero(np.bincount(instance.ravel(), minlength=len(objects) + 1)[1:]) + 1
    renumber = np.zeros(len(objects) + 1, np.int32)
    renumber[ids] = np.arange(1, ids.size + 1)
    instance = renumber[instance]
    keep = ids - 1
    classes = np.array([0] + [objects[i][1] for i in keep], np.uint8)
    semantic = classes[instance]
    kept = geoms[keep]
    scene_edge = shapely.box(origin[0], origin[1] - size * gsd, origin[0] + size * gsd, origin[1]).exterior
    polygons = gpd.GeoDataFrame(
        {
            "id": [f"{scene_id}-{i}" for i in range(1, ids.size + 1)],
            "class": [CLASS_NAMES[c] for c in classes[1:]],
            "instance": np.arange(1, ids.size + 1, dtype=np.int32),
            "scene": scene_id,
            "edge": shapely.intersects(kept, scene_edge),  # cut by the scene border
            "occluded": [hidden[i] for i in keep],  # partly hidden under a cloud
            "area_m2": shapely.area(kept),
        },
        geometry=list(kept),
        crs=crs.to_string(),
    )
    return LabelRaster(instance, semantic, transform, crs), polygons
