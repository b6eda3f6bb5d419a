"""`magseg stac`: catalog tooling. `magseg stac ingest` adds COGs or items to a STAC API or a stac-geoparquet file."""

from __future__ import annotations

from datetime import datetime

import click


@click.group(name="stac")
def command() -> None:
    """Catalog tooling (see stac/README.md for the pgstac server)."""


@command.command(name="ingest")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--catalog", required=True, help="STAC API URL (Transactions on) or a .parquet stac-geoparquet file."
)
@click.option("--collection", required=True, help="Collection id the items belong to (created when new).")
@click.option(
    "--datetime",
    "when",
    type=click.DateTime(),
    default=None,
    help="Acquisition time for COGs (default: file time).",
)
def ingest_command(paths: tuple[str, ...], catalog: str, collection: str, when: datetime | None) -> None:
    """Add PATHS (COGs, item JSON files, magseg synth folders) to CATALOG; items with the same id are replaced."""
    from magseg.stac.ingest import ingest, items_from_paths

    items = items_from_paths(paths, collection, when)
    n = ingest(catalog, items, collection)
    click.echo(f"ingested {n} item(s) into {catalog} (collection {collection})")
