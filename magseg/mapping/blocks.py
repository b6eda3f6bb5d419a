"""Blocks of tiles: the units a region job enumerates, searches STAC for and finishes, without listing tiles.

A block is a square of 2**(BLOCK_SHIFT + level) tiles a side on one zone's grid, aligned to the grid
origin, so blocks form a quadtree: level 0 holds up to 16 x 16 tiles, each level above four blocks of
the one below. Everything here works on a plan's per-row column runs (O(rows)), never on a tile list.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from magseg.mapping.plan import Bounds, RegionPlan, Tile
from magseg.mapping.zones import ZonedPlan

__all__ = ["BLOCK_SHIFT", "Block", "has_tiles", "leaf_at", "leaf_count", "tiles_in", "top_block"]

#: Level-0 blocks are 2**BLOCK_SHIFT tiles a side (16 x 16 = 256 tiles).
BLOCK_SHIFT = 4


@dataclass(frozen=True)
class Block:
    """A square of tiles of one zone part: ``2**(BLOCK_SHIFT + level)`` tiles a side at (col, row)."""

    epsg: int
    level: int
    col: int
    row: int
    base: int = BLOCK_SHIFT  # level-0 blocks are 2**base tiles a side

    @property
    def shift(self) -> int:
        return self.base + self.level

    @property
    def tile_range(self) -> tuple[int, int, int, int]:
        """(first col, last col, first row, last row) of the tiles the block spans."""
        side = 1 << self.shift
        return self.col * side, (self.col + 1) * side - 1, self.row * side, (self.row + 1) * side - 1

    def bounds(self, tile_m: float) -> Bounds:
        """The block's outline in its zone's CRS, metres."""
        c0, c1, r0, r1 = self.tile_range
        return (c0 * tile_m, r0 * tile_m, (c1 + 1) * tile_m, (r1 + 1) * tile_m)

    @property
    def parent(self) -> Block:
        return Block(self.epsg, self.level + 1, self.col >> 1, self.row >> 1, self.base)

    def children(self) -> list[Block]:
        """The four blocks one level down, in quadtree order (a level-0 block has none)."""
        if self.level == 0:
            return []
        c, r = self.col * 2, self.row * 2
        return [Block(self.epsg, self.level - 1, c + dc, r + dr, self.base) for dr in (0, 1) for dc in (0, 1)]

    @property
    def key(self) -> str:
        return f"{self.epsg}_L{self.level}_{self.col}_{self.row}"


def _runs_between(part: RegionPlan, r0: int, r1: int) -> tuple[tuple[int, int, int], ...]:
    """The plan's runs on rows r0..r1 (runs are sorted by row: two bisections)."""
    runs = part.runs
    lo = bisect_left(runs, (r0, -(2**62), -(2**62)))
    hi = bisect_right(runs, (r1, 2**62, 2**62))
    return runs[lo:hi]


def tiles_in(part: RegionPlan, block: Block) -> Iterator[Tile]:
    """The plan's tiles inside a block, row by row (south to north), west to east."""
    c0, c1, r0, r1 = block.tile_range
    size, margin = part.tile_m, part.margin_px * part.gsd
    for row, a, b in _runs_between(part, r0, r1):
        for col in range(max(a, c0), min(b, c1) + 1):
            yield Tile(part.epsg, col, row, size, margin, *part.cuts)


def has_tiles(part: RegionPlan, block: Block) -> bool:
    c0, c1, r0, r1 = block.tile_range
    return any(a <= c1 and b >= c0 for _, a, b in _runs_between(part, r0, r1))


def top_block(part: RegionPlan, base: int = BLOCK_SHIFT) -> Block:
    """The smallest block holding every tile of the part (the root of its quadtree)."""
    r0, r1 = part.runs[0][0], part.runs[-1][0]
    cmin, cmax = min(a for _, a, _ in part.runs), max(b for _, _, b in part.runs)
    level = 0
    while (cmin >> (base + level)) != (cmax >> (base + level)) or (r0 >> (base + level)) != (
        r1 >> (base + level)
    ):
        level += 1
    return Block(part.epsg, level, cmin >> (base + level), r0 >> (base + level), base)


def _leaf_grid(part: RegionPlan) -> tuple[int, int, int, int]:
    """(first block col, first block row, block cols, block rows) of the part's level-0 blocks' rectangle."""
    cmin, cmax = min(a for _, a, _ in part.runs), max(b for _, _, b in part.runs)
    r0, r1 = part.runs[0][0], part.runs[-1][0]
    b0, b1 = cmin >> BLOCK_SHIFT, cmax >> BLOCK_SHIFT
    q0, q1 = r0 >> BLOCK_SHIFT, r1 >> BLOCK_SHIFT
    return b0, q0, b1 - b0 + 1, q1 - q0 + 1


def leaf_count(plan: ZonedPlan) -> int:
    """How many level-0 block slots the plan's rectangles hold (some empty): the range a source maps over."""
    return sum(g[2] * g[3] for g in map(_leaf_grid, plan.parts))


def leaf_at(plan: ZonedPlan, index: int) -> tuple[RegionPlan, Block]:
    """The ``index``-th level-0 block slot of leaf_count's range (it may hold no tile)."""
    for part in plan.parts:
        b0, q0, ncols, nrows = _leaf_grid(part)
        if index < ncols * nrows:
            return part, Block(part.epsg, 0, b0 + index % ncols, q0 + index // ncols)
        index -= ncols * nrows
    raise IndexError("block index beyond the plan")
