"""Add scenes to a catalog: COGs become items (rio-stac); items go to a STAC API or a stac-geoparquet file."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pystac
import requests
import stac_geoparquet
from rasterio.errors import RasterioError
from rio_stac import create_stac_item

from magseg.atomic import atomic_path
from magseg.errors import EmptyInputError, InputError
from magseg.stac.hrefs import portable_item

__all__ = ["ingest", "items_from_paths"]

COG_SUFFIXES = (".tif", ".tiff")


def _cog_item(path: Path, collection: str, when: datetime | None) -> dict[str, Any]:
    try:
        item = create_stac_item(
            str(path.resolve()),
            input_datetime=when or datetime.fromtimestamp(path.stat().st_mtime, UTC),
            collection=collection,
            id=path.stem,
            asset_name="image",
            asset_roles=["data"],
            with_proj=True,
        )
    except (RasterioError, OSError) as exc:
        raise InputError(
            f"{path}: not a readable raster ({str(exc).splitlines()[0]}); give COGs or item JSON"
        ) from None
    return portable_item(item)


def items_from_paths(
    paths: Sequence[str | os.PathLike[str]], collection: str, when: datetime | None = None
) -> list[dict[str, Any]]:
    """Items from COGs (.tif: one item each, asset "image"), item JSON files, or `magseg synth` folders.

    Every item is set to ``collection`` and given absolute asset hrefs. InputError for a path that is
    none of these; EmptyInputError when nothing was found.
    """
    out: list[dict[str, Any]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir() and (path / "stac" / "items").is_dir():
            files = sorted((path / "stac" / "items").glob("*.json"))
            out += [portable_item(pystac.Item.from_file(str(f))) for f in files]
        elif path.is_file() and path.suffix.lower() == ".json":
            out.append(portable_item(pystac.Item.from_file(str(path))))
        elif path.is_file() and path.suffix.lower() in COG_SUFFIXES:
            out.append(_cog_item(path, collection, when))
        else:
            raise InputError(f"{raw}: not a COG (.tif), an item .json or a magseg synth folder")
    if not out:
        raise EmptyInputError("no items to ingest: the paths hold no COGs or items")
    for item in out:
        item["collection"] = collection
    return out


def _collection(collection: str, items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A collection whose extent covers ``items``."""
    objs = [pystac.Item.from_dict(d) for d in items]
    boxes = [it.bbox for it in objs if it.bbox]
    times = [it.datetime for it in objs if it.datetime is not None]
    extent = pystac.Extent(
        pystac.SpatialExtent(
            [
                [
                    min(b[0] for b in boxes),
                    min(b[1] for b in boxes),
                    max(b[2] for b in boxes),
                    max(b[3] for b in boxes),
                ]
            ]
        ),
        pystac.TemporalExtent([[min(times) if times else None, max(times) if times else None]]),
    )
    coll = pystac.Collection(
        collection, f"Scenes ingested by magseg into {collection}", extent, license="other"
    )
    return coll.to_dict(include_self_link=False, transform_hrefs=False)


def _ingest_api(url: str, collection: str, items: list[dict[str, Any]], timeout: float) -> int:
    """POST the collection (when new) and the items to a STAC API with the Transactions extension."""
    base = url.rstrip("/")
    try:
        session = requests.Session()
        if session.get(f"{base}/collections/{collection}", timeout=timeout).status_code == 404:
            resp = session.post(f"{base}/collections", json=_collection(collection, items), timeout=timeout)
            _check(resp, "create the collection")
        for item in items:
            resp = session.post(f"{base}/collections/{collection}/items", json=item, timeout=timeout)
            if resp.status_code == 409:  # already there: replace it (ingesting is an upsert)
                resp = session.put(
                    f"{base}/collections/{collection}/items/{item['id']}", json=item, timeout=timeout
                )
            _check(resp, f"write item {item['id']}")
    except requests.ConnectionError:
        raise InputError(
            f"cannot reach the STAC API at {url}: is it running? (stac/pgstac.sh start)"
        ) from None
    return len(items)


def _check(resp: requests.Response, what: str) -> None:
    if resp.status_code == 405 or resp.status_code == 404 and "items" in resp.url:
        raise InputError(f"{resp.url}: the API refuses writes; enable its Transactions extension")
    if resp.status_code >= 400:
        raise InputError(f"could not {what}: HTTP {resp.status_code} {resp.text[:200]}")


def _ingest_geoparquet(path: Path, collection: str, items: list[dict[str, Any]]) -> int:
    """Upsert ``items`` into a stac-geoparquet file (created when missing), rewritten atomically."""
    rows: dict[str, dict[str, Any]] = {}
    collections: dict[str, Any] = {}
    if path.exists():
        try:
            table = pq.read_table(path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same answer
            raise InputError(
                f"{path}: not a readable stac-geoparquet file ({exc}); give another --catalog"
            ) from None
        rows = {d["id"]: d for d in stac_geoparquet.arrow.stac_table_to_items(table)}
        meta = (table.schema.metadata or {}).get(b"stac-geoparquet")
        collections = json.loads(meta).get("collections", {}) if meta else {}
    rows.update({d["id"]: d for d in items})
    merged = [rows[k] for k in sorted(rows)]
    collections.setdefault(
        collection, _collection(collection, [d for d in merged if d.get("collection") == collection])
    )
    table = stac_geoparquet.arrow.parse_stac_items_to_arrow(merged)
    with atomic_path(path) as tmp:
        stac_geoparquet.arrow.to_parquet(table, tmp, collections=collections)
    return len(items)


def ingest(catalog: str, items: list[dict[str, Any]], collection: str, timeout: float = 30.0) -> int:
    """Add (or replace, by id) ``items`` in a STAC API URL or a stac-geoparquet file; returns the count."""
    if catalog.startswith(("http://", "https://")):
        return _ingest_api(catalog, collection, items, timeout)
    path = Path(catalog).expanduser()
    if path.suffix.lower() != ".parquet":
        raise InputError(f"{catalog}: give a STAC API URL or a .parquet stac-geoparquet file to write")
    return _ingest_geoparquet(path, collection, items)
