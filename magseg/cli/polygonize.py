"""`magseg polygonize`: label raster -> polygon layer (fiboa GeoParquet, FlatGeobuf or GeoPackage)."""

from __future__ import annotations

from pathlib import Path

import click

from magseg.errors import EmptyInputError
from magseg.labels import read_label_raster
from magseg.vector import layer_format, polygonize, write_layer


@click.command(name="polygonize")
@click.argument("labels", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output layer: .parquet/.geoparquet (fiboa 0.3), .fgb or .gpkg.",
)
@click.option(
    "--simplify",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Simplification tolerance in metres (shared edges stay gap-free).",
)
@click.option(
    "--min-area",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Drop polygons smaller than this (m²).",
)
@click.option(
    "--max-area", type=click.FloatRange(min=0), default=None, help="Drop polygons larger than this (m²)."
)
@click.option(
    "--classes", default=None, help="Comma-separated classes to keep, e.g. field,tree (default: all)."
)
@click.option(
    "--fill-holes-below",
    type=click.FloatRange(min=0),
    default=None,
    help="Fill empty holes smaller than this (m²).",
)
@click.option("--collection", default="magseg", show_default=True, help="Collection id written to the layer.")
@click.option(
    "--datetime",
    "when",
    default=None,
    help="Date of the last image used (ISO 8601), written as determination:datetime.",
)
def command(
    labels: Path,
    out: Path,
    simplify: float,
    min_area: float,
    max_area: float | None,
    classes: str | None,
    fill_holes_below: float | None,
    collection: str,
    when: str | None,
) -> None:
    """Turn the instances of the label raster LABELS into one polygon each, with area and perimeter."""
    layer_format(out)  # an unknown extension fails before any work
    raster = read_label_raster(labels)
    if not (raster.instance > 0).any():
        raise EmptyInputError(
            f"{labels}: no instances (band 1 is all 0); run `magseg refine` to cut a semantic mask into instances"
        )
    layer = polygonize(
        raster,
        simplify=simplify,
        min_area=min_area,
        max_area=max_area,
        classes=classes,
        fill_holes_below=fill_holes_below,
        source=str(labels),
    )
    if layer.empty:
        raise EmptyInputError(
            f"{labels}: no polygon left after the class and area filters; relax --classes/--min-area/--max-area"
        )
    write_layer(layer, out, collection=collection, determination_datetime=when)
    per_class = layer["class"].value_counts().sort_index()
    summary = ", ".join(f"{n} {name}" for name, n in per_class.items())
    click.echo(f"wrote {len(layer)} polygons ({summary}) to {out}")
