"""A country-scale field layer: fiboa GeoParquet parts partitioned by the Web Mercator quadkey of each polygon."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import morecantile
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely
from shapely.geometry.base import BaseGeometry

from magseg.errors import CRSError, EmptyInputError, InputError
from magseg.vector import write_layer

__all__ = [
    "PARTITION_ZOOM",
    "export_layer",
    "geo_bbox",
    "partition_key",
    "partition_files",
    "read_partitioned",
    "write_partitioned",
]

#: Default quadkey zoom: level-10 tiles are ~39 km wide at the equator (~27 km at 45 degrees), a few
#: hundred partitions for a large country and thousands to tens of thousands of fields in each.
PARTITION_ZOOM = 10
_TMS = morecantile.tms.get("WebMercatorQuad")
_PART_GLOB = "quadkey=*/part-*.parquet"


def partition_key(geometry_wgs84: BaseGeometry, zoom: int = PARTITION_ZOOM) -> str:
    """The quadkey (WebMercatorQuad, ``zoom``) of the tile holding the polygon's representative point.

    The representative point always lies inside the polygon (unlike the centroid of a crescent), so a
    polygon belongs to exactly one partition, and the same geometry always to the same one. Points beyond
    Web Mercator's +-85.05 degrees latitude fall in the edge row of tiles.
    """
    if geometry_wgs84 is None or geometry_wgs84.is_empty:
        raise InputError("an empty geometry has no partition: drop empty polygons before partitioning")
    return _quadkey(geometry_wgs84.representative_point(), zoom)


def _quadkey(point: BaseGeometry, zoom: int) -> str:
    """Quadkey of the tile of a WGS 84 point (lon, lat)."""
    lon, lat = point.x, point.y
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise CRSError(f"point ({lon:g}, {lat:g}) is not WGS 84 lon/lat: reproject the layer to EPSG:4326")
    with warnings.catch_warnings():
        # morecantile warns beyond +-85.05 degrees and clamps to the edge tile, which is what we want
        warnings.simplefilter("ignore", morecantile.errors.PointOutsideTMSBounds)
        return str(_TMS.quadkey(_TMS.tile(lon, lat, zoom)))


def _part_name(ids: Sequence[str]) -> str:
    """File name of a part: a hash of its sorted ids, so the same polygons always get the same name."""
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]
    return f"part-{digest}.parquet"


def write_partitioned(
    gdf: gpd.GeoDataFrame,
    root: str | os.PathLike[str],
    *,
    collection: str = "magseg",
    determination_datetime: datetime | date | str | None = None,
    zoom: int = PARTITION_ZOOM,
    replace: bool = True,
) -> list[Path]:
    """Write ``gdf`` (any CRS; columns as from magseg.vector.polygonize) as fiboa parts under ``root``.

    Each polygon goes to ``root/quadkey=<qk>/part-<hash of the part's sorted ids>.parquet`` (see
    partition_key), written atomically by magseg.vector.write_layer with rows sorted by id. Ids must be
    unique (fiboa requires it across a collection). Replacement rule, which makes reruns idempotent and
    lets a run write its tiles into one root one batch at a time: in every partition this call writes,
    an existing part that shares any id with the new part is removed once the new part is in place
    (same ids give the same file name, which is simply overwritten); parts with no id in common (other
    batches) are kept. A polygon whose rerun moves it to another partition leaves its old copy there.
    ``replace=False`` skips that scan, for writers that fill a fresh root with disjoint ids. Returns the written paths, sorted; an empty ``gdf`` writes nothing.
    """
    if gdf.crs is None:
        raise CRSError("the layer has no CRS; polygonize a georeferenced raster")
    if "id" not in gdf.columns:
        raise InputError("the layer has no 'id' column; build it with magseg.vector.polygonize")
    if len(gdf) == 0:
        return []
    ids = gdf["id"].astype(str)
    dupes = ids[ids.duplicated()].unique()
    if len(dupes):
        raise InputError(
            f"the layer repeats ids ({', '.join(map(str, dupes[:3]))}...): make ids unique, e.g. prefix the tile id"
        )
    geoms = gdf.geometry.to_crs("EPSG:4326").to_numpy()
    if shapely.is_missing(geoms).any() or shapely.is_empty(geoms).any():
        raise InputError("the layer holds empty geometries; drop them before writing")
    points = shapely.point_on_surface(geoms)  # vectorised representative_point()
    keys = np.array([_quadkey(p, zoom) for p in points], dtype=object)

    root = Path(root)
    written: list[Path] = []
    frame = gdf.assign(id=ids)
    for key in sorted(set(keys)):
        part = frame[keys == key].sort_values("id", kind="stable").reset_index(drop=True)
        part_ids = set(part["id"])
        folder = root / f"quadkey={key}"
        path = folder / _part_name(sorted(part_ids))
        stale = (
            [old for old in folder.glob("part-*.parquet") if old != path and _ids(old) & part_ids]
            if replace
            else []
        )
        write_layer(part, path, collection=collection, determination_datetime=determination_datetime)
        for old in stale:  # after the new part is in place, so a crash never loses polygons
            old.unlink(missing_ok=True)
        written.append(path)
    return written


def _ids(path: Path) -> set[str]:
    """The ids held by one part (only the id column is read)."""
    return set(pq.read_table(path, columns=["id"]).column("id").to_pylist())


def partition_files(root: str | os.PathLike[str]) -> list[Path]:
    """The part files under ``root``, sorted; InputError if ``root`` is not a folder."""
    folder = Path(root)
    if not folder.is_dir():
        raise InputError(f"{root}: no such layer folder; write it first with write_partitioned")
    return sorted(folder.glob(_PART_GLOB))


def geo_bbox(metadata: dict[bytes, bytes] | None) -> tuple[float, float, float, float] | None:
    """The bbox a Parquet footer's GeoParquet ``geo`` metadata records for the geometry column, or None."""
    geo = json.loads((metadata or {}).get(b"geo", b"{}"))
    bbox = geo.get("columns", {}).get(geo.get("primary_column", "geometry"), {}).get("bbox")
    if not bbox or len(bbox) != 4:
        return None
    w, s, e, n = (float(v) for v in bbox)
    return (w, s, e, n)


def _file_bbox(path: Path) -> tuple[float, float, float, float] | None:
    """The bbox GeoParquet metadata records for a file's geometry column, or None if absent."""
    return geo_bbox(pq.read_schema(path).metadata)


def read_partitioned(root: str | os.PathLike[str], bbox: Sequence[float] | None = None) -> gpd.GeoDataFrame:
    """All polygons of a partitioned layer in WGS 84, optionally only those intersecting ``bbox``.

    ``bbox`` is (west, south, east, north) in degrees. Parts whose recorded bounds miss it are not
    read at all (a polygon may reach beyond its partition's tile, so tiles cannot be used for this).
    """
    files = partition_files(root)
    if not files:
        raise EmptyInputError(f"{root}: the layer folder holds no quadkey=*/part-*.parquet files")
    box = None
    if bbox is not None:
        w, s, e, n = (float(v) for v in bbox)
        if w > e or s > n:
            raise InputError(
                f"bbox {tuple(bbox)!r} is not west south east north with west <= east, south <= north"
            )
        box = shapely.box(w, s, e, n)
    frames: list[gpd.GeoDataFrame] = []
    for path in files:
        if box is not None:
            bounds = _file_bbox(path)
            if bounds is not None and not box.intersects(shapely.box(*bounds)):
                continue
        frame = gpd.read_parquet(path)
        if box is not None:
            frame = frame[frame.intersects(box)]
        frames.append(frame)
    if not frames:  # nothing in the bbox: an empty frame with the layer's columns
        frames = [gpd.read_parquet(files[0]).iloc[:0]]
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry=frames[0].geometry.name, crs=frames[0].crs)


def export_layer(
    root: str | os.PathLike[str], path: str | os.PathLike[str], collection: str | None = None
) -> None:
    """Merge every part under ``root`` into one file, format by extension (.parquet/.fgb/.gpkg), atomically.

    ``collection`` defaults to the one the parts record; parts of several collections need one given.
    Each row keeps its own ``determination:datetime``.
    """
    layer = read_partitioned(root)
    if collection is None:
        found = sorted(set(layer["collection"].dropna())) if "collection" in layer.columns else []
        if len(found) != 1:
            raise InputError(
                f"{root}: the parts hold collections {found or 'none'}; give the collection id to export"
            )
        collection = str(found[0])
    layer = layer.sort_values("id", kind="stable").reset_index(drop=True)
    write_layer(layer, path, collection=collection)
