"""One server replica's state: the catalog, the grid-tile computer, a finished layer, what a request needs."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import morecantile
import numpy as np
import pystac
import shapely

from magseg.confidence import load_calibrator
from magseg.errors import EmptyInputError
from magseg.inference.meta import read_rereads, resolve_config
from magseg.mapping.pipeline import estimate_boundary_scale, spread
from magseg.mapping.plan import plan_region, utm_epsg
from magseg.mapping.source import tile_items
from magseg.refine.boundary import choose_boundary_model, scene_boundary
from magseg.serve.compute import Generate, TileComputer
from magseg.serve.config import ServeConfig
from magseg.serve.layer import SIZE, FieldLayer, Signature
from magseg.serve.mvt import LAYER_NAME, coverage_mvt, fields_mvt
from magseg.serve.render import class_png, fade, fields_geojson, imagery_png, png_bytes
from magseg.serve.xyz import TileRequestError, check_tile, tile_lonlat_bounds
from magseg.stac import item_footprint, open_catalog
from magseg.vector import CONFIDENCE
from magseg.viz import colourise

__all__ = ["LayerService", "TileService"]

LAYER_KINDS = ("png", "mvt")
EMPTY_PNG = png_bytes(colourise(np.zeros((SIZE, SIZE), np.uint8)))


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
        self.layer = LayerService.from_config(config)
        calibrator = load_calibrator(config.model)
        # the card's seam re-reads unless the config sets them, as eval and the region job run them
        rereads = read_rereads(config.model) if config.rereads is None else float(config.rereads)
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
            calibrator=calibrator,
            rereads=rereads,
            cache_settings={
                "model": os.path.abspath(config.model),
                "format": dataclasses.asdict(inference),
                "stac": config.stac,
                "search": self.search,
                "asset": config.asset,
                "boundary": config.boundary,
                "refine": dataclasses.asdict(refine),
                "tiling": [config.gsd, config.tile_px, config.margin_px, self.epsg],
                "confidence": dataclasses.asdict(calibrator) if calibrator else None,
                "max_new_tokens": config.max_new_tokens,
                "dtype": config.dtype,  # another dtype writes slightly other masks: other cached tiles
                "rereads": rereads,
            },
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
            "name": self.config.title or "magseg fields",
            "description": f"Fields mapped on request by the model {os.path.basename(self.config.model)} "
            f"from {self.config.public_source()}",
            "tiles": [f"{base_url}/tiles/{{z}}/{{x}}/{{y}}.png{suffix}"],
            "vector_tiles_geojson": f"{base_url}/tiles/{{z}}/{{x}}/{{y}}.geojson{suffix}",
            "imagery": f"{base_url}/imagery/{{z}}/{{x}}/{{y}}.png{suffix}",
            "minzoom": self.config.min_zoom,
            "maxzoom": self.config.max_zoom,
            "bounds": [w, s, e, n],
            "center": [(w + e) / 2, (s + n) / 2, max(self.config.min_zoom, 18)],
            **({"layer": self.layer.tilejson(base_url, query)} if self.layer else {}),
        }


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a tile renders (reference counting still frees everything).

    Drawing a tile allocates a few hundred thousand small lists (coordinates for rasterio and the MVT
    encoder); in a replica holding ~500k long-lived objects (models, imports) each full collection they
    trigger scans them all: without the pause a cold tile costs 3-5x more.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class LayerService:
    """A finished layer's tiles at any zoom, for one replica (config key ``layer``).

    Rendering runs on one worker thread (FieldLayer's caches are not shared between threads), off the
    event loop; bodies are cached by (kind, z, x, y) while the tile's signature (its parts and their
    mtimes) holds, so a cached tile costs a lookup and a rewritten part is drawn again. A tile outside the
    layer's bounds answers 404; one inside with nothing to draw an empty body (transparent PNG, empty MVT).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_zoom: int = 22,
        detail_zoom: int = 12,
        max_features: int = 2000,
        cache_parts: int = 32,
        cache_responses: int = 8192,
        refresh_s: float = 10.0,
    ) -> None:
        self.layer = FieldLayer(
            root,
            detail_zoom=detail_zoom,
            cache_parts=cache_parts,
            cache_rasters=cache_responses // 4,
            refresh_s=refresh_s,
        )
        self.max_zoom, self.detail_zoom, self.max_features = max_zoom, detail_zoom, max_features
        self.cache_responses = cache_responses
        self._responses: OrderedDict[tuple[str, int, int, int], tuple[Signature, bytes]] = OrderedDict()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="magseg-layer")

    @classmethod
    def from_config(cls, config: ServeConfig) -> LayerService | None:
        if not config.layer:
            return None
        return cls(
            config.layer,
            max_zoom=config.max_zoom,
            detail_zoom=config.layer_detail_zoom,
            max_features=config.layer_max_features,
            cache_parts=config.layer_cache_parts,
            cache_responses=config.cache_responses,
            refresh_s=config.layer_refresh_s,
        )

    @property
    def responses_cached(self) -> int:
        return len(self._responses)

    async def tile(self, kind: str, z: int, x: int, y: int) -> bytes:
        """The body of a /layer tile: ``kind`` png or mvt."""
        if kind not in LAYER_KINDS:
            raise TileRequestError(404, f"layer tiles are {' or '.join(LAYER_KINDS)}, not {kind}")
        tile = check_tile(z, x, y, 0, self.max_zoom)
        loop = asyncio.get_running_loop()
        if self.layer.stale:
            await loop.run_in_executor(self._worker, self.layer.refresh)
        if not self.layer.covers(tile):
            w, s, e, n = self.layer.bounds
            raise TileRequestError(
                404, f"tile {z}/{x}/{y} is outside the layer's bounds ({w:.5f}, {s:.5f}, {e:.5f}, {n:.5f})"
            )
        signature = self.layer.signature(tile)
        if not signature:
            return EMPTY_PNG if kind == "png" else b""
        key = (kind, z, x, y)
        hit = self._responses.get(key)
        if hit is not None and hit[0] == signature:
            self._responses.move_to_end(key)
            return hit[1]
        body = await loop.run_in_executor(self._worker, self._render, kind, tile)
        self._responses[key] = (signature, body)
        while len(self._responses) > self.cache_responses:
            self._responses.popitem(last=False)
        return body

    def _render(self, kind: str, tile: morecantile.Tile) -> bytes:
        with _gc_paused():
            return self._draw(kind, tile)

    def _draw(self, kind: str, tile: morecantile.Tile) -> bytes:
        if kind == "png":
            drawn = self.layer.tile_rasters(tile)
            if drawn is None:
                return EMPTY_PNG
            raster, conf = drawn  # opacity by confidence where the layer carries it (faint: check first)
            rgba = colourise(raster)
            return png_bytes(rgba if conf is None else fade(rgba, conf.astype(np.float32) / 255))
        if tile.z >= self.detail_zoom:
            polys = self.layer.polygons(tile)
            if len(polys) <= self.max_features:
                return fields_mvt(polys, tile)
        return coverage_mvt(self.layer.class_raster(tile))  # overview zooms, or too many fields to list

    def tilejson(self, base_url: str, query: str = "") -> dict[str, Any]:
        """TileJSON 3.0 of the layer's vector tiles (MapLibre, OpenLayers); ``raster`` gives the PNG tiles."""
        w, s, e, n = self.layer.bounds
        suffix = f"?{query}" if query else ""
        fields = {
            "id": "String: the fiboa id",
            "class": "String: the class name",
            CONFIDENCE: "Number: calibrated probability the field is right (where the layer has it)",
        }
        return {
            "tilejson": "3.0.0",
            "name": "magseg layer",
            "description": "A finished magseg field layer (fiboa), drawn from its partitions",
            "tiles": [f"{base_url}/layer/{{z}}/{{x}}/{{y}}.mvt{suffix}"],
            "raster": f"{base_url}/layer/{{z}}/{{x}}/{{y}}.png{suffix}",
            "vector_layers": [{"id": LAYER_NAME, "fields": fields, "minzoom": 0, "maxzoom": self.max_zoom}],
            "minzoom": 0,
            "maxzoom": self.max_zoom,
            "detailzoom": self.detail_zoom,
            "bounds": [w, s, e, n],
            "center": [(w + e) / 2, (s + n) / 2, self.detail_zoom],
        }
