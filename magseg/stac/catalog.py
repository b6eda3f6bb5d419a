"""The catalogue interface: ``open_catalog`` picks a STAC API (URL) or an embedded stac-geoparquet file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import pystac

from magseg.stac.api import APICatalog
from magseg.stac.geoparquet import GeoParquetCatalog


@runtime_checkable
class Catalog(Protocol):
    """Anything searchable by WGS 84 bbox, datetime range, collections and cloud cover."""

    def search(
        self,
        bbox: Sequence[float] | None = None,
        datetime: str | None = None,
        collections: str | Iterable[str] | None = None,
        max_cloud: float | None = None,
        limit: int | None = None,
    ) -> list[pystac.Item]:
        """Matching items, least cloudy first, then newest, then by id; at most ``limit``."""
        ...


def open_catalog(url_or_path: str | os.PathLike[str]) -> Catalog:
    """An ``APICatalog`` for an http(s) URL, else a ``GeoParquetCatalog`` for a local stac-geoparquet path.

    A ``magseg synth`` output folder (or its ``stac/`` folder) opens its ``items.parquet``.
    """
    text = os.fspath(url_or_path)
    if text.startswith(("http://", "https://")):
        return APICatalog(text)
    path = os.path.expanduser(text)
    for candidate in (os.path.join(path, "stac", "items.parquet"), os.path.join(path, "items.parquet")):
        if os.path.isdir(path) and os.path.isfile(candidate):
            return GeoParquetCatalog(candidate)
    return GeoParquetCatalog(path)
