"""Write a polygon layer: fiboa 0.3 GeoParquet, FlatGeobuf or GeoPackage, chosen by the file extension."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

from magseg.atomic import atomic_path
from magseg.errors import CRSError, InputError

__all__ = [
    "CONFIDENCE",
    "FIBOA_SCHEMAS",
    "FORMATS",
    "MAGSEG_SCHEMA",
    "MAGSEG_SCHEMA_FILE",
    "fiboa_table",
    "layer_format",
    "write_layer",
]

#: fiboa 0.3 is an extension of Vecorel 0.1: a file lists both schemas per collection.
FIBOA_SCHEMAS: tuple[str, ...] = (
    "https://vecorel.org/specification/v0.1.0/schema.yaml",
    "https://fiboa.org/specification/v0.3.0/schema.yaml",
)
#: magseg's fiboa extension (its columns are magseg:*), listed in a file's schemas when it has such a column.
MAGSEG_SCHEMA = "https://magseg.org/extensions/magseg/v0.1.0/schema.yaml"
#: The extension's schema, shipped with the package (``fiboa validate -s MAGSEG_SCHEMA,MAGSEG_SCHEMA_FILE``).
MAGSEG_SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "magseg-v0.1.0.yaml"
#: The per-polygon calibrated confidence (magseg.confidence): P(matched to a real object at IoU >= 0.5).
CONFIDENCE = "magseg:confidence"
#: extension -> format name (pyogrio driver for the OGR ones).
FORMATS: dict[str, str] = {
    ".parquet": "fiboa",
    ".geoparquet": "fiboa",
    ".fgb": "FlatGeobuf",
    ".gpkg": "GPKG",
}
DETERMINATION_METHOD = "auto-imagery"  # fiboa's value for machine-learning output


def layer_format(path: str | os.PathLike[str]) -> str:
    """The format a path's extension selects, or InputError listing the known extensions."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InputError(
            f"{path}: unknown layer extension {ext or '(none)'!r}; use one of {', '.join(FORMATS)}"
        )
    return FORMATS[ext]


def write_layer(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    collection: str = "magseg",
    determination_datetime: datetime | date | str | None = None,
) -> None:
    """Write ``gdf`` (columns as from magseg.vector.polygonize) to ``path`` atomically, format by extension.

    Every format gets ``collection`` and ``determination:method`` columns, and ``determination:datetime``
    when given (naive datetimes are taken as UTC; it should be the date of the last image used).
    GeoParquet is fiboa 0.3 (WGS84, collection metadata); FlatGeobuf and GeoPackage keep the layer's CRS.
    """
    fmt = layer_format(path)
    if gdf.crs is None:
        raise CRSError(f"{path}: the layer has no CRS; polygonize a georeferenced raster")
    if not collection:
        raise InputError("the collection id must not be empty; give e.g. --collection magseg")
    frame = gdf.copy()
    frame["collection"] = collection
    frame["determination:method"] = DETERMINATION_METHOD
    when = _utc(determination_datetime)
    if when is not None:
        frame["determination:datetime"] = when
    if fmt == "fiboa":
        table = fiboa_table(frame, collection)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, compression="zstd")
    else:
        with atomic_path(path) as tmp:
            frame.to_file(tmp, driver=fmt, engine="pyogrio", layer=collection)


def fiboa_table(frame: gpd.GeoDataFrame, collection: str) -> pa.Table:
    """The Arrow table of a fiboa 0.3 GeoParquet file: typed columns and the geo/collection metadata."""
    wgs84 = frame.to_crs("EPSG:4326") if not frame.crs.equals("EPSG:4326") else frame
    geoms = wgs84.geometry.to_numpy()
    if len(geoms) and (shapely.is_missing(geoms).any() or shapely.is_empty(geoms).any()):
        raise InputError("the layer holds empty geometries; drop them before writing fiboa")
    columns: dict[str, pa.Array] = {}
    fields: list[pa.Field] = []
    for name in wgs84.columns:
        if name == wgs84.geometry.name:
            continue
        array = _arrow_column(name, wgs84[name].to_numpy())
        columns[name] = array
        fields.append(pa.field(name, array.type, nullable=name not in ("id", "collection")))
    wkb = pa.array(shapely.to_wkb(geoms, output_dimension=2), type=pa.binary())
    columns["geometry"] = wkb
    fields.append(pa.field("geometry", pa.binary(), nullable=False))
    types = sorted({g.geom_type for g in geoms})
    bbox = [float(v) for v in shapely.total_bounds(geoms)] if len(geoms) else []
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        # no "crs": GeoParquet's default is OGC:CRS84, i.e. WGS84 in longitude/latitude order
        "columns": {
            "geometry": {"encoding": "WKB", "geometry_types": types, **({"bbox": bbox} if bbox else {})}
        },
    }
    meta = {
        b"geo": json.dumps(geo).encode(),
        b"collection": json.dumps({"schemas": {collection: _schemas(wgs84.columns)}}).encode(),
    }
    schema = pa.schema(fields, metadata=meta)
    return pa.Table.from_arrays([columns[f.name] for f in fields], schema=schema)


def _schemas(columns: Iterable[object]) -> list[str]:
    """fiboa's schemas, and magseg's extension when a magseg:* column is present."""
    extra = [MAGSEG_SCHEMA] if any(str(c).startswith("magseg:") for c in columns) else []
    return [*FIBOA_SCHEMAS, *extra]


def _arrow_column(name: str, values: np.ndarray) -> pa.Array:
    """Arrow array for one attribute: fiboa wants string (not large_string), float32 metrics and
    confidence, ms UTC times."""
    if name.startswith("metrics:") or name == CONFIDENCE:
        return pa.array(values.astype(np.float32), type=pa.float32())
    if name == "determination:datetime":
        return pa.array(list(values), type=pa.timestamp("ms", tz="UTC"))
    array = pa.array(values, from_pandas=True)
    if pa.types.is_large_string(array.type) or pa.types.is_string(array.type) or array.type == pa.null():
        return array.cast(pa.string())
    if pa.types.is_integer(array.type):
        return array.cast(pa.int64())
    return array


def _utc(value: datetime | date | str | None) -> datetime | None:
    """A timezone-aware UTC datetime from a datetime, date or ISO string (naive values are taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InputError(
                f"{value!r} is not an ISO date/time; write e.g. 2024-05-01 or 2024-05-01T10:30Z"
            ) from exc
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
