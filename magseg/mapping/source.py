"""The region job's lazy tile source: block slots -> unfinished tiles -> one STAC search per block -> rows.

The driver never lists tiles or items: Ray Data ranges over the plan's block slots (magseg.mapping.blocks)
and each worker expands its slot into the rows of its unfinished tiles, with the scenes one bounded,
paged STAC search of the block's footprint found. A rerun skips finished tiles here, one file check each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pystac
import shapely

from magseg.mapping.blocks import leaf_at, tiles_in
from magseg.mapping.plan import Tile
from magseg.mapping.stages import tile_row
from magseg.mapping.store import RunStore
from magseg.mapping.zones import ZonedPlan
from magseg.stac import item_footprint, open_catalog
from magseg.stac.catalog import Catalog
from magseg.stac.hrefs import portable_item

__all__ = ["SceneQuery", "block_rows", "search_tiles", "tile_items"]


@dataclass(frozen=True)
class SceneQuery:
    """Where and what to search: the catalogue and its filters (the bbox comes from each block)."""

    stac: str
    datetime: str | None = None
    collections: tuple[str, ...] | None = None
    max_cloud: float | None = None

    def search(self, bbox: Sequence[float], limit: int | None = None) -> list[pystac.Item]:
        """Items meeting ``bbox`` with absolute hrefs (a worker reads them without the catalogue's root)."""
        found = _catalog(self.stac).search(
            bbox, self.datetime, list(self.collections) if self.collections else None, self.max_cloud, limit
        )
        return [pystac.Item.from_dict(portable_item(it)) for it in found]


@lru_cache(maxsize=4)
def _catalog(stac: str) -> Catalog:
    return open_catalog(stac)


def tile_items(tiles: Iterable[Tile], items: list[pystac.Item]) -> Iterator[tuple[Tile, list[pystac.Item]]]:
    """Each tile with the items whose footprint meets its read window, in the search's order."""
    tree = shapely.STRtree([item_footprint(it) for it in items]) if items else None
    for tile in tiles:
        if tree is None:
            yield tile, []
            continue
        hits = sorted(tree.query(tile.read_footprint, predicate="intersects").tolist())
        yield tile, [items[i] for i in hits]


def search_tiles(tiles: list[Tile], query: SceneQuery) -> list[tuple[Tile, list[pystac.Item]]]:
    """One search over the tiles' read footprints, the items split between the tiles."""
    if not tiles:
        return []
    bounds = shapely.bounds(shapely.union_all([t.read_footprint.envelope for t in tiles]))
    return list(tile_items(tiles, query.search(tuple(float(v) for v in bounds))))


def block_rows(row: dict[str, Any], plan: ZonedPlan, query: SceneQuery, out: str) -> list[dict[str, Any]]:
    """Ray Data flat_map: a block slot's unfinished tiles as pipeline rows (none for an empty slot)."""
    part, block = leaf_at(plan, int(row["id"]))
    store = RunStore(out)
    todo = [tile for tile in tiles_in(part, block) if not store.is_done(tile.id)]
    return [tile_row(tile, hits) for tile, hits in search_tiles(todo, query)]
