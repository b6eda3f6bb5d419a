"""Vector outputs: label raster -> polygons, and polygon layers in fiboa GeoParquet, FlatGeobuf, GeoPackage."""

from magseg.vector.fiboa import FIBOA_SCHEMAS, FORMATS, fiboa_table, layer_format, write_layer
from magseg.vector.polygonize import COLUMNS, parse_classes, polygonize

__all__ = [
    "COLUMNS",
    "FIBOA_SCHEMAS",
    "FORMATS",
    "fiboa_table",
    "layer_format",
    "parse_classes",
    "polygonize",
    "write_layer",
]
