"""Plan a bbox across UTM zones: split it on the zone lines (as MGRS / Sentinel-2 tiling does), one grid per zone.

Each part of the bbox between two zone lines is planned in its own zone's UTM CRS (magseg.mapping.plan),
so no tile is mapped more than 3 degrees from its central meridian. Tile ids carry the EPSG code and are
unique across zones. A tile whose core crosses a zone line keeps only the ground on its own side
(``Tile.cut_w`` / ``cut_e``); the pieces cut there are joined across the line by magseg.mapping.seams.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from magseg.errors import InputError
from magseg.mapping.plan import (
    DEFAULT_MARGIN_PX,
    DEFAULT_TILE_PX,
    Bbox,
    RegionPlan,
    Tile,
    check_bbox,
    geodesic_area_km2,
    plan_region,
    utm_epsg,
)

__all__ = ["ZonedPlan", "plan_zones", "zone_parts"]

ZONE_DEG = 6.0


def zone_parts(bbox: Bbox) -> list[tuple[Bbox, int, tuple[float | None, float | None]]]:
    """The bbox cut on the UTM zone lines: (part, its zone's EPSG, (west cut, east cut)) west to east.

    A cut is the longitude of a zone line that splits the bbox (None on a side that is the bbox's own
    edge). The hemisphere is the bbox centre's, so a part that crosses the equator keeps one grid.
    """
    w, s, e, n = bbox
    first = math.floor((w + 180.0) / ZONE_DEG)
    last = math.ceil((e + 180.0) / ZONE_DEG) - 1
    lat = (s + n) / 2.0
    parts: list[tuple[Bbox, int, tuple[float | None, float | None]]] = []
    for zone in range(first, max(last, first) + 1):
        lo, hi = zone * ZONE_DEG - 180.0, (zone + 1) * ZONE_DEG - 180.0
        pw, pe = max(w, lo), min(e, hi)
        if pe <= pw:
            continue
        cuts = (pw if pw > w else None, pe if pe < e else None)
        parts.append(((pw, s, pe, n), utm_epsg((pw + pe) / 2.0, lat), cuts))
    return parts


@dataclass(frozen=True)
class ZonedPlan:
    """The tiles covering a bbox, one RegionPlan per UTM zone part, west to east."""

    bbox: Bbox
    parts: tuple[RegionPlan, ...]
    bbox_area_km2: float

    @property
    def gsd(self) -> float:
        return self.parts[0].gsd

    @property
    def tile_px(self) -> int:
        return self.parts[0].tile_px

    @property
    def margin_px(self) -> int:
        return self.parts[0].margin_px

    @property
    def patch(self) -> int:
        return self.parts[0].patch

    @property
    def tile_m(self) -> float:
        return self.parts[0].tile_m

    @property
    def crs(self) -> str:
        """The zones' CRSs, comma-joined (one for a bbox inside one zone)."""
        return ",".join(p.crs for p in self.parts)

    @property
    def n_tiles(self) -> int:
        return sum(p.n_tiles for p in self.parts)

    @property
    def n_patches(self) -> int:
        return sum(p.n_patches for p in self.parts)

    @property
    def area_km2(self) -> float:
        return sum(p.area_km2 for p in self.parts)

    @property
    def tiles(self) -> Iterator[Tile]:
        """Every tile, lazily: zone by zone (west to east), then as RegionPlan.tiles."""
        return chain.from_iterable(p.tiles for p in self.parts)

    def part_of(self, tile_id: object) -> RegionPlan | None:
        """The zone part a tile id belongs to, or None."""
        for part in self.parts:
            if tile_id in part:
                return part
        return None

    def __contains__(self, tile_id: object) -> bool:
        return self.part_of(tile_id) is not None

    def tile_at(self, index: int) -> Tile:
        """The ``index``-th tile of ``tiles`` in O(rows)."""
        for part in self.parts:
            if index < part.n_tiles:
                return part.tile_at(index)
            index -= part.n_tiles
        raise IndexError("tile index beyond the plan's tiles")

    def estimate(self, tokens_per_patch: float, patches_per_s_per_gpu: float) -> dict[str, Any]:
        """RegionPlan.estimate summed over the zones, with each zone's own figures under ``zones``."""
        zones = [
            {"epsg": p.epsg, "bbox": list(p.bbox), **p.estimate(tokens_per_patch, patches_per_s_per_gpu)}
            for p in self.parts
        ]
        out: dict[str, Any] = {
            k: sum(z[k] for z in zones)
            for k in ("tiles", "patches", "patches_with_margin", "tokens", "gpu_hours")
        }
        out.update(
            tokens_per_patch=tokens_per_patch, patches_per_s_per_gpu=patches_per_s_per_gpu, zones=zones
        )
        return out

    def summary(self) -> dict[str, Any]:
        """RegionPlan.summary's keys for the whole bbox (counts summed), and each zone's own under ``zones``."""
        return {
            **self.parts[0].summary(),
            "bbox": list(self.bbox),
            "crs": self.crs,
            "tiles": self.n_tiles,
            "patches": self.n_patches,
            "area_km2": self.area_km2,
            "bbox_area_km2": self.bbox_area_km2,
            "zones": [p.summary() for p in self.parts],
        }


def plan_zones(
    bbox: Sequence[float],
    *,
    gsd: float = 0.5,
    tile_px: int = DEFAULT_TILE_PX,
    margin_px: int = DEFAULT_MARGIN_PX,
    patch: int = 64,
) -> ZonedPlan:
    """Plan a WGS 84 bbox of any width (up to 80S..84N): each zone part on its own zone's grid, O(rows)."""
    box = check_bbox(bbox, max_lon_span=None)
    parts = []
    for part, epsg, cuts in zone_parts(box):
        plan = plan_region(part, gsd=gsd, tile_px=tile_px, margin_px=margin_px, patch=patch, epsg=epsg)
        if plan.n_tiles:
            parts.append(RegionPlan(**{**plan.__dict__, "cuts": cuts}))
    if not parts:
        raise InputError(f"bbox {list(box)} holds no tile: give a larger box")
    return ZonedPlan(box, tuple(parts), geodesic_area_km2(box))
