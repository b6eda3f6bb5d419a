"""The tile server's routes, registered on any FastAPI app by a factory (TiTiler's pattern)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from magseg.serve.service import LayerService, TileService
from magseg.serve.xyz import TileRequestError
from magseg.viz import leaflet_inline

__all__ = ["LayerRoutes", "TileRoutes"]

PNG = "image/png"
MVT = "application/vnd.mapbox-vector-tile"
CACHE = {"Cache-Control": "public, max-age=3600"}
# One Path object per parameter: FastAPI binds a shared default object to one parameter only.
Z = Path(ge=0, le=30, description="Web Mercator zoom")
X = Path(ge=0, description="tile column")
Y = Path(ge=0, description="tile row")


class _Guarded:
    """``api_key`` (when not None) must come as the X-API-Key header or the api_key query parameter
    (browsers cannot add headers to map tile requests); refusals answer {"detail": reason} with their status.
    """

    def __init__(self, api_key: Callable[[], str | None]) -> None:
        self.api_key = api_key

    def check_key(self, request: Request) -> None:
        expected = self.api_key()
        if expected is None:
            return
        given = request.headers.get("x-api-key") or request.query_params.get("api_key")
        if given is None:
            raise TileRequestError(401, "an API key is required: send it as the X-API-Key header")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise TileRequestError(403, "the API key is not valid")

    def _handle_refusals(self, app: FastAPI) -> None:
        @app.exception_handler(TileRequestError)
        async def refused(_: Request, exc: TileRequestError) -> JSONResponse:
            return JSONResponse({"detail": exc.message}, status_code=exc.status)


class TileRoutes(_Guarded):
    """Registers /tiles, /imagery, /tilejson.json, /map and /healthz; ``service`` gives the replica's state.

    /healthz and the docs stay open; the rest need the API key when one is set.
    """

    def __init__(self, service: Callable[[], TileService], api_key: Callable[[], str | None]) -> None:
        super().__init__(api_key)
        self.service = service

    def register(self, app: FastAPI) -> None:
        guard = [Depends(self.check_key)]
        self._handle_refusals(app)

        @app.get("/healthz", summary="Liveness and readiness")
        async def healthz() -> dict[str, Any]:
            service = self.service()
            return {
                "status": "ok",
                "grid_tiles_cached": service.computer.cached,
                "responses_cached": service.responses_cached,
                "layer_responses_cached": service.layer.responses_cached if service.layer else None,
            }

        @app.get(
            "/tiles/{z}/{x}/{y}.png", dependencies=guard, response_class=Response, summary="Classes, coloured"
        )
        async def tile_png(z: int = Z, x: int = X, y: int = Y) -> Response:
            return Response(await self.service().png(z, x, y), media_type=PNG, headers=CACHE)

        @app.get(
            "/tiles/{z}/{x}/{y}.geojson",
            dependencies=guard,
            response_class=Response,
            summary="Fields, clipped",
        )
        async def tile_geojson(z: int = Z, x: int = X, y: int = Y) -> Response:
            body = await self.service().geojson(z, x, y)
            return Response(body, media_type="application/geo+json", headers=CACHE)

        @app.get(
            "/imagery/{z}/{x}/{y}.png", dependencies=guard, response_class=Response, summary="The imagery"
        )
        async def imagery_png(z: int = Z, x: int = X, y: int = Y) -> Response:
            return Response(await self.service().imagery(z, x, y), media_type=PNG, headers=CACHE)

        @app.get("/tilejson.json", dependencies=guard, summary="TileJSON 3.0 of the field tiles")
        async def tilejson(request: Request) -> dict[str, Any]:
            return self.service().tilejson(_base(request), _key_query(request))

        @app.get("/map", dependencies=guard, response_class=HTMLResponse, summary="A Leaflet map")
        async def map_page(request: Request) -> HTMLResponse:
            meta = self.service().tilejson(_base(request), _key_query(request))
            return HTMLResponse(_map_html(meta))


class LayerRoutes(_Guarded):
    """Registers /layer/{z}/{x}/{y}.png|.mvt and /layer/tilejson.json: a finished layer at every zoom.

    ``layer`` gives the replica's LayerService, None when no layer is configured (the routes answer 404).
    """

    def __init__(self, layer: Callable[[], LayerService | None], api_key: Callable[[], str | None]) -> None:
        super().__init__(api_key)
        self.layer = layer

    def service(self) -> LayerService:
        found = self.layer()
        if found is None:
            raise TileRequestError(404, "no finished layer is served: start with --layer RUN/fields")
        return found

    def register(self, app: FastAPI) -> None:
        guard = [Depends(self.check_key)]
        self._handle_refusals(app)

        @app.get(
            "/layer/{z}/{x}/{y}.png",
            dependencies=guard,
            response_class=Response,
            summary="The finished layer's classes, coloured, any zoom",
        )
        async def layer_png(z: int = Z, x: int = X, y: int = Y) -> Response:
            return Response(await self.service().tile("png", z, x, y), media_type=PNG, headers=CACHE)

        @app.get(
            "/layer/{z}/{x}/{y}.mvt",
            dependencies=guard,
            response_class=Response,
            summary="The finished layer's fields (id, class) as a Mapbox Vector Tile, any zoom",
        )
        async def layer_mvt(z: int = Z, x: int = X, y: int = Y) -> Response:
            return Response(await self.service().tile("mvt", z, x, y), media_type=MVT, headers=CACHE)

        @app.get(
            "/layer/tilejson.json", dependencies=guard, summary="TileJSON 3.0 of the layer's vector tiles"
        )
        async def layer_tilejson(request: Request) -> dict[str, Any]:
            return self.service().tilejson(_base(request), _key_query(request))


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _key_query(request: Request) -> str:
    key = request.query_params.get("api_key")
    return f"api_key={key}" if key else ""


def _map_html(meta: dict[str, Any]) -> str:
    """Leaflet: with a finished layer, its tiles below min_zoom and the on-request tiles from there on."""
    w, s, e, n = meta["layer"]["bounds"] if "layer" in meta else meta["bounds"]
    css, js = leaflet_inline()
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>magseg fields</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{css}</style><style>html,body,#map{{height:100%;margin:0}}</style>
</head><body><div id="map"></div><script>{js}</script>
<script>
const meta = {json.dumps(meta)};
const layer = meta.layer;
const map = L.map('map', {{minZoom: layer ? 0 : meta.minzoom, maxZoom: meta.maxzoom}})
  .fitBounds([[{s}, {w}], [{n}, {e}]]);
if (!layer && map.getZoom() < meta.minzoom) map.setZoom(meta.minzoom);
const imagery = L.tileLayer(meta.imagery, {{maxZoom: meta.maxzoom, attribution: 'imagery: catalog'}}).addTo(map);
const fields = L.tileLayer(meta.tiles[0], {{minZoom: meta.minzoom, maxZoom: meta.maxzoom, opacity: 0.6, attribution: 'fields: magseg'}}).addTo(map);
const overlays = {{imagery: imagery, 'fields (opacity: confidence)': fields}};
if (layer) {{
  const lb = layer.bounds;
  overlays['fields (finished layer)'] = L.tileLayer(layer.raster, {{maxZoom: meta.minzoom - 1, opacity: 0.6,
    bounds: [[lb[1], lb[0]], [lb[3], lb[2]]], attribution: 'fields: magseg layer'}}).addTo(map);
}}
L.control.layers(null, overlays).addTo(map);
</script></body></html>
"""
