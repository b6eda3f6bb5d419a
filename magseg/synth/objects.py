"""Small objects placed on a field layout: tree clumps and tree lines, ponds and wells; then the final cut.

Objects of different instances never overlap: a candidate that touches one already placed is dropped, so
every instance is a separate object in the label raster.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry

from magseg.synth.layout import FIELD_MIN_HA, Layout, blob


def _crowns(centres: np.ndarray, radii: np.ndarray) -> BaseGeometry:
    crowns = shapely.buffer(shapely.points(centres), radii, quad_segs=4)
    return shapely.union_all(crowns)


class _Placer:
    """Keeps the union of what is placed so far and refuses candidates that would touch it."""

    def __init__(self, lay: Layout, blockers: list[BaseGeometry]) -> None:
        self.lay = lay
        self.taken = shapely.union_all(blockers) if blockers else Polygon()
        self.inside = lay.scene_box.buffer(-lay.px(1.0))

    def fits(self, geom: BaseGeometry, gap: float) -> bool:
        if geom.is_empty or not geom.intersects(self.inside):
            return False
        return not geom.buffer(gap, quad_segs=2).intersects(self.taken)

    def take(self, geom: BaseGeometry) -> None:
        self.taken = self.taken.union(geom)


def _tree_line(rng: np.random.Generator, line: BaseGeometry, lay: Layout, place: _Placer) -> None:
    """Crowns planted along ``line`` in runs broken by gaps; each run is one tree instance."""
    if line.is_empty or line.geom_type != "LineString" or line.length < lay.px(10):
        return
    radius = lay.px(rng.uniform(1.8, 3.5))
    spacing = radius * rng.uniform(1.1, 1.7)
    d = rng.uniform(0, spacing * 4)
    while d < line.length:
        n = int(rng.integers(2, 10))
        ds = d + spacing * np.arange(n) + rng.normal(0, spacing * 0.1, n)
        ds = ds[(ds >= 0) & (ds <= line.length)]
        if ds.size:
            pts = np.array([line.interpolate(x).coords[0] for x in ds])
            pts += rng.normal(0, radius * 0.08, pts.shape)
            radii = radius * rng.uniform(0.85, 1.15, ds.size)
            run = _crowns(pts, radii)
            if place.fits(run, lay.px(0.8)):
                lay.trees.append(run)
                lay.crowns.append(np.column_stack([pts, radii]))
                place.take(run)
        d += spacing * (n + rng.integers(2, 8))


def _clump(rng: np.random.Generator, centre: np.ndarray, lay: Layout) -> np.ndarray:
    """Crowns grown as a random walk, each overlapping an earlier one, so a clump is one connected object."""
    k = int(rng.integers(1, 9))
    radii = rng.uniform(1.8, 5.5, k) / lay.gsd
    pts = np.empty((k, 2))
    pts[0] = centre
    for i in range(1, k):
        j = int(rng.integers(0, i))
        a = rng.uniform(0, 2 * math.pi)
        pts[i] = pts[j] + (radii[j] + radii[i]) * rng.uniform(0.35, 0.8) * np.array(
            [math.cos(a), math.sin(a)]
        )
    return np.column_stack([pts, radii])


def place_objects(rng: np.random.Generator, lay: Layout) -> None:
    """Trees along roads and bunds, tree clumps, ponds and wells (in that order of priority)."""
    area_ha = (lay.size * lay.gsd) ** 2 / 1e4
    roads = [poly for poly, _ in lay.roads]
    place = _Placer(lay, roads + [b for b, _ in lay.buildings])
    # ponds first: they are large and trees ring them
    n_ponds = rng.poisson(area_ha / 6)
    for _ in range(n_ponds):
        near_village = lay.village is not None and rng.random() < 0.6
        if near_village and lay.village is not None:
            # the village may be several blobs (a MultiPolygon): take points of its outline either way
            c = shapely.get_coordinates(lay.village.boundary)[int(rng.integers(0, 8))]
        else:
            c = rng.uniform(0.05, 0.95, 2) * lay.size
        pond = blob(rng, c, lay.px(rng.uniform(7, 22)), roughness=0.25)
        if place.fits(pond, lay.px(3)):
            lay.ponds.append(pond)
            place.take(pond.buffer(lay.px(2.0), quad_segs=2))  # a shore ring stays free
    for line, half_width in lay.road_lines:
        if rng.random() < 0.5:
            side = float(rng.choice([-1.0, 1.0]))
            offset = side * (half_width + lay.px(rng.uniform(2.5, 4.5)))
            shifted = line.offset_curve(offset) if not line.is_empty else line
            _tree_line(rng, shifted, lay, place)
    for line in lay.bund_lines:
        if rng.random() < 0.12:
            _tree_line(rng, line, lay, place)
    n_clumps = rng.poisson(area_ha * 0.6) + (int(rng.integers(2, 6)) if lay.village is not None else 0)
    for i in range(n_clumps):
        if lay.village is not None and i < 3:
            c = np.asarray(lay.village.representative_point().coords[0]) + rng.normal(0, lay.px(25), 2)
        elif lay.ponds and rng.random() < 0.3:
            ring = lay.ponds[int(rng.integers(0, len(lay.ponds)))].exterior.buffer(lay.px(5))
            c = np.asarray(ring.exterior.interpolate(rng.random(), normalized=True).coords[0])
        else:
            c = rng.uniform(0, lay.size, 2)
        crowns = _clump(rng, c, lay)
        clump = _crowns(crowns[:, :2], crowns[:, 2])
        if place.fits(clump, lay.px(1.0)):
            lay.trees.append(clump)
            lay.crowns.append(crowns)
            place.take(clump)
    n_wells = rng.poisson(area_ha * 0.4)
    for _ in range(n_wells):
        if not lay.fields:
            break
        f = lay.fields[int(rng.integers(0, len(lay.fields)))].geom
        edge = shapely.get_parts(f)[0].exterior
        p = np.asarray(edge.interpolate(rng.random(), normalized=True).coords[0])
        c = np.asarray(f.centroid.coords[0])
        r = lay.px(rng.uniform(1.0, 1.8))
        step = (c - p) / max(float(np.hypot(*(c - p))), 1e-6)
        well = Point(p + step * (r + lay.px(2.0))).buffer(r, quad_segs=6)
        if place.fits(well, lay.px(1.5)):
            lay.wells.append(well)
            place.take(well)


def finalize(lay: Layout) -> None:
    """Cut objects out of the fields, clip everything to the scene, drop what became too small."""
    scene = lay.scene_box
    occluders = [t for t in lay.trees] + [p.buffer(lay.px(1.5), quad_segs=2) for p in lay.ponds]
    occluders += [w.buffer(lay.px(0.6), quad_segs=2) for w in lay.wells]
    cover = shapely.union_all(occluders) if occluders else Polygon()
    shapely.prepare(cover)
    min_area, sliver = lay.px2(FIELD_MIN_HA), lay.px2(0.0025)  # 25 m²: what is left of a field at the edge
    kept = []
    for f in lay.fields:
        if not f.geom.intersects(scene):
            continue
        geom = f.geom.difference(cover) if cover.intersects(f.geom) else f.geom
        if geom.area < min_area:  # a field eaten by a pond: its rest is grass
            continue
        f.edge = not f.geom.within(scene)
        f.geom = geom.intersection(scene) if f.edge else geom
        if f.geom.area >= sliver:
            kept.append(f)
    lay.fields = kept
    clip = [g.intersection(scene) for g in lay.trees]
    lay.trees = [g for g in clip if g.area >= lay.px2(0.0004)]
    lay.ponds = [g.intersection(scene) for g in lay.ponds]
    lay.ponds = [g for g in lay.ponds if g.area >= lay.px2(0.001)]
    lay.wells = [g for g in lay.wells if g.within(scene)]
    lay.bunds = [g.intersection(scene) for g in lay.bunds]
