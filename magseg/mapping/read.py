"""Read a tile's imagery: mosaic STAC items (least cloudy first) onto the tile's UTM grid with rio-tiler."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pystac
import rasterio
import shapely
from affine import Affine
from rasterio._err import CPLE_BaseError
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds
from rio_tiler.errors import RioTilerError, TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.models import ImageData
from rio_tiler.mosaic import mosaic_reader
from rio_tiler.mosaic.methods import FirstMethod

from magseg.errors import InputError
from magseg.mapping.plan import Tile
from magseg.stac.hrefs import asset_href
from magseg.stac.query import item_footprint

#: GDAL settings for reading COGs: skip listing the folder on open (10 requests per open drop to 2 over HTTP).
GDAL_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


@dataclass(frozen=True)
class TileImage:
    """A tile's pixels on its read grid (core + margin) and where they came from.

    ``warnings`` holds one line per item that was skipped because its asset is missing or unreadable.
    """

    image: np.ndarray  # (3, H, W) uint8
    mask: np.ndarray  # (H, W) bool, True where some scene gave data
    transform: Affine  # pixel -> tile CRS
    crs: CRS
    scenes: list[str]  # ids of the items that gave pixels, in fill order
    datetime: datetime | None  # latest acquisition among ``scenes``
    warnings: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        """Fraction of the read window holding data."""
        return float(self.mask.mean()) if self.mask.size else 0.0


class _SkippedError(Exception):
    """An item whose asset could not be read (recorded as a warning, then ignored by the mosaic)."""


def _item_datetime(item: pystac.Item) -> datetime | None:
    """The item's datetime, or the end of its range when it only has start/end datetimes."""
    if item.datetime is not None:
        return item.datetime
    end = item.properties.get("end_datetime")
    return pystac.utils.str_to_datetime(end) if isinstance(end, str) else None


def _intersects(item: pystac.Item, lonlat: shapely.Polygon) -> bool:
    """Whether the item's footprint (geometry, else bbox) meets the tile's read window in WGS 84."""
    footprint = item_footprint(item)
    return True if footprint is None else bool(footprint.intersects(lonlat))  # none: let the reader decide


def read_tile(
    tile: Tile,
    items: list[pystac.Item],
    gsd: float,
    asset: str = "image",
    threads: int = 1,
    indexes: tuple[int, ...] = (1, 2, 3),
) -> TileImage:
    """Read ``tile.read_bounds`` at exactly ``gsd`` metres in the tile's UTM CRS from ``items``.

    Items are used in the given order (pass them least cloudy first, as magseg.stac's search sorts
    them): each pixel comes from the first item that has data there (rio-tiler's FirstMethod), and
    reading stops once the window is full. Scenes in another CRS are reprojected (nearest). Items
    whose footprint misses the tile are skipped silently; items whose asset is missing or unreadable
    are skipped with a line in ``TileImage.warnings``. InputError when no item gives any pixel.
    ``threads`` > 1 reads items concurrently (useful over HTTP) at the cost of the early stop.
    ``indexes`` are the asset's bands read (RGB by default; e.g. (2,) for a label raster's class band).
    """
    if not (math.isfinite(gsd) and gsd > 0):
        raise InputError(f"gsd {gsd!r} must be a positive number of metres per pixel")
    crs = CRS.from_epsg(tile.epsg)
    x0, y0, x1, y1 = tile.read_bounds
    width, height = round((x1 - x0) / gsd), round((y1 - y0) / gsd)
    if width < 1 or height < 1:
        raise InputError(f"tile {tile.id}: read window smaller than one {gsd} m pixel; lower the gsd")
    # Keep the grid exact at gsd: the window is snapped to whole pixels from its lower-left corner.
    bounds = (x0, y0, x0 + width * gsd, y0 + height * gsd)
    lonlat = shapely.box(*transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21))

    warnings: list[str] = []
    valid: dict[str, np.ndarray] = {}  # item id -> its valid-pixel mask, to tell which items filled pixels
    lock = threading.Lock()
    candidates: list[pystac.Item] = []
    for item in items:
        if not _intersects(item, lonlat):
            continue
        if asset not in item.assets:
            warnings.append(f"item {item.id}: no asset {asset!r}; skipped")
            continue
        candidates.append(item)

    def read_one(item: pystac.Item) -> ImageData:
        href = asset_href(item, asset)
        try:
            with Reader(href) as src:
                img = src.part(
                    bounds, dst_crs=crs, bounds_crs=crs, width=width, height=height, indexes=indexes
                )
        except TileOutsideBounds:
            raise
        except (RasterioError, RioTilerError, OSError, ValueError, CPLE_BaseError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            with lock:
                warnings.append(f"item {item.id}: cannot read asset {asset!r} ({href}): {message}; skipped")
            raise _SkippedError(item.id) from exc
        with lock:
            valid[item.id] = np.logical_not(np.ma.getmaskarray(img.array).any(axis=0))
        return img

    mosaic: ImageData | None = None
    if candidates:
        with rasterio.Env(**GDAL_ENV):
            try:
                mosaic, _ = mosaic_reader(
                    candidates,
                    read_one,
                    pixel_selection=FirstMethod,
                    threads=threads,
                    allowed_exceptions=(TileOutsideBounds, _SkippedError),
                )
            except RioTilerError:  # EmptyMosaicError: every item was outside or skipped
                mosaic = None

    filled = np.zeros((height, width), dtype=bool)
    used: list[pystac.Item] = []
    for item in candidates:  # the order FirstMethod filled in, so an item counts only for pixels it gave
        ok = valid.get(item.id)
        if ok is not None and (ok & ~filled).any():
            used.append(item)
            filled |= ok
    if mosaic is None or not used:
        detail = f"; {len(warnings)} unreadable" if warnings else ""
        raise InputError(
            f"tile {tile.id}: no imagery from {len(items)} item(s) ({len(candidates)} intersecting{detail}); "
            "search a wider date range or cloud limit"
        )
    data = np.ma.getdata(mosaic.array)
    mask = np.logical_not(np.ma.getmaskarray(mosaic.array).any(axis=0))
    image = np.where(mask[None], data, 0).astype(np.uint8)
    times = [t for t in (_item_datetime(it) for it in used) if t is not None]
    return TileImage(
        image=image,
        mask=mask,
        transform=Affine(gsd, 0.0, bounds[0], 0.0, -gsd, bounds[3]),
        crs=crs,
        scenes=[it.id for it in used],
        datetime=max(times) if times else None,
        warnings=warnings,
    )
