"""XYZ (Web Mercator) tiles: checked requests and their bounds, with morecantile."""

from __future__ import annotations

import morecantile

__all__ = ["TileRequestError", "check_tile", "tile_bounds", "tile_lonlat_bounds"]

TMS = morecantile.tms.get("WebMercatorQuad")


class TileRequestError(Exception):
    """A request the server refuses: an HTTP status and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_tile(z: int, x: int, y: int, min_zoom: int, max_zoom: int) -> morecantile.Tile:
    """The tile, or TileRequestError: 400 for coordinates outside the zoom's grid, 404 for unserved zooms."""
    if z < 0 or z > 30:
        raise TileRequestError(400, f"zoom {z} is not a Web Mercator zoom (0..30)")
    if not (0 <= x < 2**z and 0 <= y < 2**z):
        raise TileRequestError(400, f"tile {z}/{x}/{y} does not exist: x and y must lie in 0..{2**z - 1}")
    if z < min_zoom:
        raise TileRequestError(
            404,
            f"zoom {z} is below the model's native scale: tiles are computed from zoom {min_zoom}; zoom in "
            "(or run `magseg map` for an overview layer)",
        )
    if z > max_zoom:
        raise TileRequestError(404, f"zoom {z} is above the served maximum {max_zoom}")
    return morecantile.Tile(x, y, z)


def tile_bounds(tile: morecantile.Tile) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of the tile in EPSG:3857 metres."""
    b = TMS.xy_bounds(tile)
    return (b.left, b.bottom, b.right, b.top)


def tile_lonlat_bounds(tile: morecantile.Tile) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the tile in degrees."""
    b = TMS.bounds(tile)
    return (b.left, b.bottom, b.right, b.top)
