"""Search STAC catalogues: a STAC API over HTTP or an embedded stac-geoparquet file, one interface."""

from magseg.stac.api import APICatalog
from magseg.stac.catalog import Catalog, open_catalog
from magseg.stac.geoparquet import GeoParquetCatalog
from magseg.stac.query import SearchQuery, item_footprint, parse_bbox, parse_datetime, sort_key

__all__ = [
    "APICatalog",
    "Catalog",
    "GeoParquetCatalog",
    "SearchQuery",
    "item_footprint",
    "open_catalog",
    "parse_bbox",
    "parse_datetime",
    "sort_key",
]
