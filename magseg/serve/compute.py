"""Fields for any XYZ tile: the region job's grid tiles under it, computed on request and cached, seams joined."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pystac
import shapely

from magseg.confidence import Calibrator
from magseg.decoding import check_share
from magseg.errors import InputError
from magseg.format import ModelFormat
from magseg.inference.neighbours import first_pass, merge_passes, second_pass_edges
from magseg.inference.predict import stitch_scored
from magseg.inference.requests import patch_origins, scene_requests
from magseg.inference.rereads import merge_scored, reread_requests
from magseg.mapping.plan import Tile, plan_region
from magseg.mapping.read import read_tile
from magseg.mapping.seams import merge_seams
from magseg.mapping.store import RunStore, fingerprint
from magseg.mapping.tile import RefineSettings, tile_pieces
from magseg.model.generate import Request, RowLimited, Scored
from magseg.refine.boundary import BoundaryModel
from magseg.serve.xyz import TileRequestError
from magseg.stac import Catalog
from magseg.vector import COLUMNS

__all__ = ["Generate", "TileComputer", "clip_lonlat"]

#: One patch request (a seam re-read's row-limited) -> its RRLE completion, token count and token
#: probabilities (None when the engine reports none): the model deployment's batched call.
Generate = Callable[[Request | RowLimited], Awaitable[Scored]]
#: Rings of neighbouring grid tiles computed to complete fields cut by the edge of the requested ones
#: (one ring completes every field smaller than a grid tile; each ring costs a full model pass per tile).
MAX_RINGS = 1
_NEIGHBOUR = {"W": (-1, 0), "E": (1, 0), "S": (0, -1), "N": (0, 1)}


def disk_cache(cache_dir: str, settings: dict[str, Any]) -> RunStore:
    """The on-disk grid-tile cache for these settings: ``cache_dir/<fingerprint>/``, a region-run layout.

    Everything that decides a tile's polygons (model, catalog query, boundary, refinement, tiling, the
    model's format) is in the fingerprint, so a server started with other settings never serves tiles a
    different model or setting computed: it gets a fresh sub-folder of its own.
    """
    store = RunStore(Path(cache_dir) / fingerprint(settings))
    store.open(settings)
    return store


class TileComputer:
    """Grid tiles (the region job's tiling, one UTM zone) computed once, cached in memory (and on disk).

    A request's polygons are those of the grid tiles under it, joined across seams; a polygon cut by the
    edge of that set pulls in the neighbouring grid tile (up to MAX_RINGS rings), so a field's polygon
    and id are the same whichever XYZ tile asks for it, and the same as the region job's.
    """

    def __init__(
        self,
        catalog: Catalog,
        generate: Generate,
        inference: ModelFormat,
        *,
        epsg: int,
        gsd: float,
        tile_px: int,
        margin_px: int,
        refine: RefineSettings,
        boundary: BoundaryModel,
        search: dict[str, Any],
        asset: str = "image",
        cache_tiles: int = 1024,
        cache_dir: str | None = None,
        max_grid_tiles: int = 64,
        cache_settings: dict[str, Any] | None = None,
        calibrator: Calibrator | None = None,
        rereads: float = 0.0,
    ) -> None:
        self.catalog, self.generate, self.inference = catalog, generate, inference
        self.epsg, self.gsd, self.tile_px, self.margin_px = epsg, gsd, tile_px, margin_px
        self.refine, self.boundary, self.search, self.asset = refine, boundary, search, asset
        self.cache_tiles, self.max_grid_tiles = cache_tiles, max_grid_tiles
        self.calibrator = calibrator  # per-field confidence (magseg:confidence) when the model has one
        self.rereads = check_share(rereads)  # seam re-reads (magseg.inference.rereads)
        self.store = disk_cache(cache_dir, cache_settings or {}) if cache_dir else None
        self._memory: OrderedDict[str, gpd.GeoDataFrame] = OrderedDict()
        self._pending: dict[str, asyncio.Future[gpd.GeoDataFrame]] = {}
        self.computed = 0  # grid tiles computed (not served from a cache), for tests and stats

    @property
    def cached(self) -> int:
        """Grid tiles held in memory."""
        return len(self._memory)

    def grid_tiles(self, lonlat_bounds: tuple[float, float, float, float]) -> list[Tile]:
        """The grid tiles whose core meets a WGS 84 box."""
        plan = plan_region(
            lonlat_bounds,
            gsd=self.gsd,
            tile_px=self.tile_px,
            margin_px=self.margin_px,
            patch=self.inference.patch,
            epsg=self.epsg,
        )
        tiles = list(plan.tiles)
        if len(tiles) > self.max_grid_tiles:
            raise TileRequestError(
                413, f"the tile spans {len(tiles)} model windows (max {self.max_grid_tiles}); zoom in"
            )
        return tiles

    def _neighbour(self, tile: Tile, dc: int, dr: int) -> Tile:
        return Tile(tile.epsg, tile.col + dc, tile.row + dr, tile.size_m, tile.margin_m)

    async def layer(self, lonlat_bounds: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
        """The joined polygons (UTM) of every grid tile under the box, completed across its outer seams."""
        wanted = {t.id: t for t in self.grid_tiles(lonlat_bounds)}
        pieces = dict(
            zip(wanted, await asyncio.gather(*(self.pieces(t) for t in wanted.values())), strict=True)
        )
        for _ in range(MAX_RINGS):
            extra: dict[str, Tile] = {}
            for tid, frame in pieces.items():
                tile = wanted[tid]
                for sides in frame["seams"]:
                    for side in filter(None, str(sides).split(",")):
                        nb = self._neighbour(tile, *_NEIGHBOUR[side])
                        if nb.id not in wanted:
                            extra[nb.id] = nb
            if not extra:
                break
            wanted.update(extra)
            found = await asyncio.gather(*(self.pieces(t) for t in extra.values()))
            pieces.update(zip(extra, found, strict=True))
        frames = [f for f in pieces.values() if len(f)]
        if not frames:
            return gpd.GeoDataFrame({c: [] for c in COLUMNS[:-1]}, geometry=[], crs=f"EPSG:{self.epsg}")
        joined = pd.concat(frames, ignore_index=True)
        return merge_seams(gpd.GeoDataFrame(joined, geometry="geometry", crs=frames[0].crs), self.gsd)

    async def pieces(self, tile: Tile) -> gpd.GeoDataFrame:
        """A grid tile's pieces: from memory, disk, a computation already running, or computed now."""
        if tile.id in self._memory:
            self._memory.move_to_end(tile.id)
            return self._memory[tile.id]
        if tile.id in self._pending:  # another request computes it: share the result
            return await asyncio.shield(self._pending[tile.id])
        future: asyncio.Future[gpd.GeoDataFrame] = asyncio.get_running_loop().create_future()
        self._pending[tile.id] = future
        try:
            frame = await self._load_or_compute(tile)
            future.set_result(frame)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            del self._pending[tile.id]
        self._memory[tile.id] = frame
        while len(self._memory) > self.cache_tiles:
            self._memory.popitem(last=False)
        return frame

    async def _load_or_compute(self, tile: Tile) -> gpd.GeoDataFrame:
        if self.store is not None and self.store.is_done(tile.id):
            frames = await asyncio.to_thread(self.store.pieces, [tile.id])
            return frames[0] if frames else _empty(self.epsg)
        frame, record = await self._compute(tile)
        if self.store is not None:
            await asyncio.to_thread(self.store.save, tile.id, frame if len(frame) else None, {}, record)
        return frame

    async def _compute(self, tile: Tile) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
        """Read the grid tile, send its patches to the model (batched with other requests'), refine."""
        bounds = tile.read_footprint.bounds
        items: list[pystac.Item] = await asyncio.to_thread(self.catalog.search, bounds, **self.search)
        try:
            img = await asyncio.to_thread(read_tile, tile, items, self.gsd, self.asset)
        except InputError:  # no imagery here: an empty tile, cached like any other
            return _empty(self.epsg), {"status": "no-imagery", "datetime": None}
        side = img.image.shape[1]
        origins = patch_origins(side, side, self.inference.patch)
        outputs = await self._generate_tile(img.image, origins)
        semantic, _, token_conf = stitch_scored(outputs, origins, (side, side), self.inference)
        if self.rereads > 0:
            semantic, token_conf = await self._reread_tile(img.image, semantic, token_conf, origins)
        result = await asyncio.to_thread(
            tile_pieces,
            tile,
            semantic,
            img.image,
            img.mask,
            img.transform,
            img.crs,
            self.gsd,
            settings=self.refine,
            snap_px=self.inference.patch // self.inference.grid,
            boundary=self.boundary,
            token_conf=token_conf,
            calibrator=self.calibrator,
        )
        when = img.datetime.isoformat() if img.datetime else None
        result.frame["determination:datetime"] = pd.to_datetime(
            pd.Series([when] * len(result.frame), dtype=object), utc=True
        )
        self.computed += 1
        return result.frame, {"status": "ok", "datetime": when, "scenes": img.scenes}

    async def _generate_tile(self, image: Any, origins: list[tuple[int, int]]) -> list[Scored]:
        """Every patch's completion, in patch order: all at once, or the checkerboard's two passes for a
        model trained with its neighbours (magseg.inference.neighbours)."""
        _, requests = scene_requests(image, self.inference)
        if self.inference.neighbours <= 0:
            return list(await asyncio.gather(*(self.generate(r) for r in requests)))
        first = first_pass(origins, self.inference.patch)
        a = await asyncio.gather(*(self.generate(r) for r, f in zip(requests, first, strict=True) if f))
        edges = second_pass_edges(origins, first, [s.text for s in a], self.inference)
        b = await asyncio.gather(*(self.generate(r) for r in scene_requests(image, self.inference, edges)[1]))
        return merge_passes(first, a, b)

    async def _reread_tile(
        self, image: Any, semantic: Any, token_conf: Any, origins: list[tuple[int, int]]
    ) -> tuple[Any, Any]:
        """The tile's seam re-reads (magseg.inference.rereads), as predict_scenes runs them: each asks for no
        more rows than its merge reads."""
        plan, requests, rows = reread_requests(image, semantic, origins, self.inference, self.rereads)
        again = await asyncio.gather(
            *(self.generate(RowLimited(r, n)) for r, n in zip(requests, rows, strict=True))
        )
        patch, grid = self.inference.patch, self.inference.grid
        return merge_scored(semantic, token_conf, plan, again, patch, grid, rows)


def _empty(epsg: int) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({c: [] for c in (*COLUMNS[:-1], "seams")}, geometry=[], crs=f"EPSG:{epsg}")


def clip_lonlat(
    layer: gpd.GeoDataFrame, lonlat_bounds: tuple[float, float, float, float]
) -> gpd.GeoDataFrame:
    """The layer in WGS 84, clipped to the box, empty pieces dropped."""
    out = layer.to_crs(4326)
    out["geometry"] = shapely.clip_by_rect(out.geometry.to_numpy(), *lonlat_bounds)
    return out[~out.geometry.is_empty].reset_index(drop=True)
