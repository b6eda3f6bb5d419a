"""Vector outputs: label raster -> polygons, and polygon layers in fiboa GeoParquet, FlatGeobuf, GeoPackage."""

from magseg.vector.fiboa import (
    CONFIDENCE,
    FIBOA_SCHEMAS,
    FORMATS,
    MAGSEG_SCHEMA,
    MAGSEG_SCHEMA_FILE,
    fiboa_table,
    layer_format,
    write_layer,
)
from magseg.vector.polygonize import COLUMNS, parse_classes, polygonize

__all__ = [
    "COLUMNS",
    "CONFIDENCE",
    "FIBOA_SCHEMAS",
    "FORMATS",
    "MAGSEG_SCHEMA",
    "MAGSEG_SCHEMA_FILE",
    "fiboa_table",
    "layer_format",
    "parse_classes",
    "polygonize",
    "write_layer",
]
