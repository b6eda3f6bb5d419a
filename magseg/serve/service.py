"""One server replica's state: the catalog, the grid-tile computer and what a tile request needs."""

from __future__ import annotations

import asyncio
import json
import os
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import morecantile
import pystac
import shapely

from magseg.errors import EmptyInputError
from magseg.inference.meta import resolve_config
from magseg.mapping.pipeline import estimate_boundary_scale, spread
from magseg.mapping.plan import plan_region, utm_epsg
from magseg.mapping.source import tile_items
from magseg.refine.boundary import choose_boundary_model, scene_boundary
from magseg.serve.compute import Generate, TileComputer
from magseg.serve.config import ServeConfig
from magseg.serve.render import class_png, fields_geojson, imagery_png
from magseg.serve.xyz import check_tile, tile_lonlat_bounds
from magseg.stac import item_footprint, open_catalog

__all__ = ["TileService"]


class TileService:
    """Answers tile requests for one catalog and model; built once per server replica."""

    def __init__(self, config: ServeConfig, generate: Generate) -> None:
        self.config = config
        self.catalog = open_catalog(config.stac)
        self.search: dict[str, Any] = {
            "datetime": config.datetime,
            "collections": config.collections,
            "max_cloud": config.max_cloud,
        }
        items = self.catalog.search(**self.search, limit=1000)
        if not items:
            raise EmptyInputError(f"{config.stac} holds no items matching {self.search}: nothing to serve")
        extent = shapely.union_all([item_footprint(it) for it in items])
        self.bounds: tuple[float, float, float, float] = tuple(extent.bounds)  # type: ignore[assignment]
        centre = extent.centroid
        self.epsg = config.epsg or utm_epsg(centre.x, centre.y)
        inference, _ = resolve_config(config.model)
        refine = config.refine
        if refine.boundary_scale is None:  # the image fallback's scale (alone or fused with a model)
            # one scale for every tile ever served, estimated like the region job's, over the catalog
            plan = plan_region(
                self.bounds,
                gsd=config.gsd,
                tile_px=config.tile_px,
                margin_px=config.margin_px,
                epsg=self.epsg,
            )
            sample = list(tile_items((plan.tile_at(i) for i in spread(plan.n_tiles)), items))
            refine = replace(refine, boundary_scale=estimate_boundary_scale(sample, config.gsd, config.asset))
        self.refine = refine
        boundary = scene_boundary(choose_boundary_model(config.boundary), config.gsd, refine.boundary_scale)
        self._responses: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self.computer = TileComputer(
            self.catalog,
            generate,
            inference,
            epsg=self.epsg,
            gsd=config.gsd,
            tile_px=config.tile_px,
            margin_px=config.margin_px,
            refine=refine,
            boundary=boundary,
            search=self.search,
            asset=config.asset,
            cache_tiles=config.cache_tiles,
            cache_dir=config.cache_dir,
            max_grid_tiles=config.max_grid_tiles,
        )

    @property
    def responses_cached(self) -> int:
        return len(self._responses)

    def tile(self, z: int, x: int, y: int) -> morecantile.Tile:
        return check_tile(z, x, y, self.config.min_zoom, self.config.max_zoom)

    async def png(self, z: int, x: int, y: int) -> bytes:
        return await self._rendered("png", self.tile(z, x, y))

    async def geojson(self, z: int, x: int, y: int) -> bytes:
        return await self._rendered("geojson", self.tile(z, x, y))

    async def _rendered(self, kind: str, tile: morecantile.Tile) -> bytes:
        """A tile's response body, rendered once: repeated tiles cost a dictionary lookup."""
        key = (kind, tile.z, tile.x, tile.y)
        if key in self._responses:
            self._responses.move_to_end(key)
            return self._responses[key]
        layer = await self.computer.layer(tile_lonlat_bounds(tile))
        if kind == "png":
            body = await asyncio.to_thread(class_png, layer, tile)
        else:
            body = json.dumps(await asyncio.to_thread(fields_geojson, layer, tile)).encode()
        self._responses[key] = body
        while len(self._responses) > self.config.cache_responses:
            self._responses.popitem(last=False)
        return body

    async def imagery(self, z: int, x: int, y: int) -> bytes:
        tile = check_tile(z, x, y, 0, self.config.max_zoom)
        items: list[pystac.Item] = await asyncio.to_thread(
            self.catalog.search, tile_lonlat_bounds(tile), **self.search
        )
        return await asyncio.to_thread(imagery_png, items, tile, self.config.asset)

    def tilejson(self, base_url: str, query: str = "") -> dict[str, Any]:
        w, s, e, n = self.bounds
        suffix = f"?{query}" if query else ""
        return {
            "tilejson": "3.0.0",
            "name": "magseg fields",
            "description": f"Fields mapped on request by {os.path.basename(self.config.model)} from {self.config.stac}",
            "tiles": [f"{base_url}/tiles/{{z}}/{{x}}/{{y}}.png{suffix}"],
            "vector_tiles_geojson": f"{base_url}/tiles/{{z}}/{{x}}/{{y}}.geojson{suffix}",
            "imagery": f"{base_url}/imagery/{{z}}/{{x}}/{{y}}.png{suffix}",
            "minzoom": self.config.min_zoom,
            "maxzoom": self.config.max_zoom,
            "bounds": [w, s, e, n],
            "center": [(w + e) / 2, (s + n) / 2, max(self.config.min_zoom, 18)],
        }
