"""Field layout of one scene: roads, a village, and smallholder fields cut from blocks along jittered lines.

Everything here is in pixel coordinates (x = column, y = row, origin at the scene's top-left corner); sizes
are drawn in metres and converted with the GSD, so a scene looks the same at any resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString, Polygon, box
from shapely.geometry.base import BaseGeometry

#: Area bounds of a smallholder field in hectares (fields cut by the scene edge may be smaller).
FIELD_MIN_HA = 0.05
FIELD_MAX_HA = 2.0


@dataclass
class Field:
    """One field: its geometry, its crop (index into the scene's crop palette) and whether the scene edge cut it."""

    geom: BaseGeometry
    crop: int
    edge: bool = False


@dataclass
class Layout:
    """The vector content of one scene, in pixel coordinates."""

    size: int
    gsd: float
    angle: float  # orientation of the cadastral grid, radians
    roads: list[tuple[BaseGeometry, int]] = field(default_factory=list)  # (polygon, 0 paved / 1 dirt)
    village: BaseGeometry | None = None
    buildings: list[tuple[BaseGeometry, int]] = field(default_factory=list)  # (polygon, roof kind)
    fields: list[Field] = field(default_factory=list)
    bunds: list[BaseGeometry] = field(default_factory=list)  # strips between fields (background)
    bund_lines: list[BaseGeometry] = field(default_factory=list)  # their centre lines (tree lines grow there)
    road_lines: list[tuple[BaseGeometry, float]] = field(default_factory=list)  # (centre line, half width)
    trees: list[BaseGeometry] = field(default_factory=list)
    crowns: list[np.ndarray] = field(default_factory=list)  # (k, 3) x, y, radius of each tree's crowns
    ponds: list[BaseGeometry] = field(default_factory=list)
    wells: list[BaseGeometry] = field(default_factory=list)

    def px(self, metres: float) -> float:
        """A length in metres as pixels."""
        return metres / self.gsd

    def px2(self, hectares: float) -> float:
        """An area in hectares as square pixels."""
        return hectares * 1e4 / self.gsd**2

    @property
    def scene_box(self) -> Polygon:
        return box(0, 0, self.size, self.size)


@dataclass
class _Style:
    """Scene-wide choices that make one landscape differ from the next."""

    regular: bool  # grid-aligned cadastre (Haryana) vs. irregular plots (Deccan, east India)
    p_bund: float  # chance that a cut between two fields carries a bund
    bund_m: float  # bund width in metres
    p_same_crop: float  # chance that a piece keeps its parent's crop (neighbours sharing colour)
    crop_weights: np.ndarray


def _unit(angle: float) -> np.ndarray:
    return np.array([math.cos(angle), math.sin(angle)])


def blob(rng: np.random.Generator, centre: np.ndarray, radius: float, roughness: float = 0.15) -> Polygon:
    """A smooth irregular closed shape: a circle whose radius varies with a few low harmonics."""
    phi = np.linspace(0, 2 * math.pi, 48, endpoint=False)
    r = np.ones_like(phi)
    for k in range(2, 6):
        r += rng.uniform(0, roughness / math.sqrt(k)) * np.cos(k * phi + rng.uniform(0, 2 * math.pi))
    pts = centre + radius * r[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)
    return Polygon(pts)


def _roads(rng: np.random.Generator, lay: Layout, domain: Polygon, style: _Style) -> None:
    extent_m = lay.size * lay.gsd
    n = int(rng.integers(0, 2)) + int(extent_m // 250)
    reach = 2.0 * lay.size + 4 * lay.px(60)
    for _ in range(n):
        along = lay.angle + (math.pi / 2) * int(rng.integers(0, 2))
        along += rng.normal(0, math.radians(1.5 if style.regular else 12))
        v, u = _unit(along), _unit(along + math.pi / 2)
        centre = rng.uniform(0.15, 0.85, 2) * lay.size
        # a gently winding centre line: a few knots with perpendicular offsets (straight if regular)
        ts = np.linspace(-reach / 2, reach / 2, 7)
        wiggle = 0.0 if style.regular else lay.px(6)
        offsets = rng.normal(0, wiggle, ts.size) if wiggle else np.zeros(ts.size)
        pts = centre + ts[:, None] * v + offsets[:, None] * u
        paved = rng.random() < 0.35
        width = lay.px(rng.uniform(4.5, 7.0) if paved else rng.uniform(2.5, 4.0))
        line = LineString(pts)
        lay.roads.append((line.buffer(width / 2, cap_style="flat", quad_segs=2), 0 if paved else 1))
        # side trees are planted along road edges: remember the centre line with the half width
        lay.road_lines.append((line.intersection(domain), width / 2))


def _village(rng: np.random.Generator, lay: Layout) -> None:
    extent_m = lay.size * lay.gsd
    if extent_m < 180 or rng.random() > 0.35:
        return
    centre = rng.uniform(0.2, 0.8, 2) * lay.size
    # a few overlapping irregular hamlet cores: villages grow in lumps around lanes, ponds and wells
    k = int(rng.integers(1, 4))
    pts = centre + rng.normal(0, lay.px(18), (k, 2))
    village = shapely.union_all([blob(rng, p, lay.px(rng.uniform(22, 45)), roughness=0.35) for p in pts])
    lay.village = village
    # houses in back-to-back rows along lanes, of uneven frontage, packed wall to wall
    v, u = _unit(lay.angle), _unit(lay.angle + math.pi / 2)
    minx, miny, maxx, maxy = village.bounds
    half = max(maxx - minx, maxy - miny)
    depth = lay.px(rng.uniform(7, 11))
    lane = lay.px(rng.uniform(2.5, 4.5))
    shapely.prepare(village)
    y = -half
    row = 0
    while y < half:
        x = -half + rng.uniform(0, depth)
        while x < half:
            w = depth * rng.uniform(0.5, 1.5)
            h = depth * rng.uniform(0.85, 1.0)
            y0 = y if row % 2 == 0 else y + depth - h  # each pair of rows backs onto a shared wall
            if rng.random() > 0.06:  # else an open plot or courtyard
                corners = np.array([[0, 0], [w, 0], [w, h], [0, h]]) + [x, y0]
                poly = Polygon(centre + corners[:, :1] * v + corners[:, 1:] * u)
                inside = poly.intersection(village) if village.intersects(poly) else Polygon()
                if inside.area > 0.7 * poly.area:  # houses at the edge follow the village's outline
                    lay.buildings.append((inside, int(rng.choice(5, p=[0.42, 0.13, 0.3, 0.02, 0.13]))))
            x += w + (lay.px(rng.uniform(2, 4)) if rng.random() < 0.08 else lay.px(rng.uniform(0, 0.4)))
        y += depth + (lane if row % 2 else 0.0)
        row += 1


def _try_cut(
    rng: np.random.Generator, poly: BaseGeometry, lay: Layout, style: _Style
) -> tuple[list[BaseGeometry], LineString, BaseGeometry | None] | None:
    """Cut ``poly`` in two along a jittered line; None when a piece would be too small or too thin."""
    rect = np.asarray(shapely.oriented_envelope(poly).exterior.coords)[:4]
    e1, e2 = rect[1] - rect[0], rect[2] - rect[1]
    l1, l2 = float(np.hypot(*e1)), float(np.hypot(*e2))
    if l1 < l2:
        e1, e2, l1, l2 = e2, e1, l2, l1
    long_angle = math.atan2(e1[1], e1[0])
    if style.regular:  # snap to the cadastral grid
        k = round((long_angle - lay.angle) / (math.pi / 2))
        long_angle = lay.angle + k * math.pi / 2 + rng.normal(0, math.radians(0.7))
    else:
        long_angle += rng.normal(0, math.radians(8))
    # mostly across the long axis (squarer pieces); sometimes along it, which makes the long strips of
    # inherited land divided between heirs
    across = l1 / max(l2, 1e-6) > 3.0 or rng.random() < 0.7
    axis = _unit(long_angle) if across else _unit(long_angle + math.pi / 2)
    length = l1 if across else l2
    v = np.array([-axis[1], axis[0]])  # direction of the cut line
    p = rect.mean(axis=0) + axis * (rng.uniform(0.3, 0.7) - 0.5) * length
    half = (l2 if across else l1) / 2 + 2
    far = 4.0 * (l1 + l2)
    kink = 0.0 if style.regular else rng.normal(0, 0.06) * length
    knot = p + v * rng.uniform(-0.5, 0.5) * half + axis * kink
    line = LineString([p - v * far, p - v * half, knot, p + v * half, p + v * far])
    side = Polygon([*line.coords, tuple(p + v * far + axis * far), tuple(p - v * far + axis * far)])
    pieces = [poly.intersection(side), poly.difference(side)]
    strip = None
    if rng.random() < style.p_bund:
        width = lay.px(style.bund_m * rng.uniform(0.8, 1.25))
        strip = line.buffer(width / 2, cap_style="flat", quad_segs=1).intersection(poly)
        pieces = [piece.difference(strip) for piece in pieces]
    parts = [g for piece in pieces for g in shapely.get_parts(piece) if g.area > 1.0]
    min_area, min_thick = lay.px2(FIELD_MIN_HA), lay.px(4.0)
    # thickness ~ area / half-perimeter: the width of a strip, half the side of a square
    if len(parts) < 2 or any(g.area < min_area or 2 * g.area / g.length < min_thick for g in parts):
        return None
    return parts, line.intersection(poly), strip


def _split_block(rng: np.random.Generator, block: BaseGeometry, lay: Layout, style: _Style) -> None:
    """Recursively cut a block into fields whose target size is drawn per block (heterogeneous sizes)."""
    n_crops = style.crop_weights.size
    target = lay.px2(math.exp(rng.uniform(math.log(0.08), math.log(1.2))))
    max_area, min_area = lay.px2(FIELD_MAX_HA), lay.px2(FIELD_MIN_HA)
    stack = [(block, int(rng.choice(n_crops, p=style.crop_weights)))]
    while stack:
        poly, crop = stack.pop()
        area = poly.area
        if area < 2.2 * min_area or (area <= max_area and area <= target * rng.uniform(0.6, 1.6)):
            lay.fields.append(Field(poly, crop))
            continue
        cut = None
        for _ in range(8):
            cut = _try_cut(rng, poly, lay, style)
            if cut is not None:
                break
        if cut is None:
            lay.fields.append(Field(poly, crop))
            continue
        parts, line, strip = cut
        if strip is not None:
            lay.bunds.append(strip)
            lay.bund_lines.append(line)
        for part in parts:
            same = rng.random() < style.p_same_crop
            stack.append((part, crop if same else int(rng.choice(n_crops, p=style.crop_weights))))


def lay_out_fields(rng: np.random.Generator, size: int, gsd: float, crop_weights: np.ndarray) -> Layout:
    """Roads, an optional village and the fields between them, over the scene and a margin around it."""
    regular = rng.random() < 0.5
    angle = rng.normal(0, math.radians(4)) if regular else rng.uniform(0, math.pi)
    lay = Layout(size=size, gsd=gsd, angle=float(angle))
    style = _Style(
        regular=regular,
        p_bund=float(rng.uniform(0.35, 0.9)),
        bund_m=float(rng.uniform(0.6, 1.4)),
        p_same_crop=float(rng.uniform(0.2, 0.45)),
        crop_weights=crop_weights,
    )
    margin = lay.px(50)
    domain = box(-margin, -margin, size + margin, size + margin)
    _roads(rng, lay, domain, style)
    _village(rng, lay)
    blocked = [poly.buffer(lay.px(1.0), quad_segs=2) for poly, _ in lay.roads]  # verges beside the roads
    if lay.village is not None:
        blocked.append(lay.village)
    free = domain.difference(shapely.union_all(blocked)) if blocked else domain
    for block in shapely.get_parts(free):
        if block.area >= lay.px2(FIELD_MIN_HA):
            _split_block(rng, block, lay, style)
    return lay
