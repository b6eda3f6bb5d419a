"""`magseg serve`: the on-request tile server (Ray Serve) on this machine or a Ray cluster."""

from __future__ import annotations

import os

import click


@click.command(name="serve")
@click.option("--stac", default=None, help="STAC API URL, stac-geoparquet file, or a magseg synth folder.")
@click.option("--model", default=None, help="Model folder (default: the bundled tiny-magseg).")
@click.option("--collection", "collections", multiple=True, help="STAC collection to serve (repeatable).")
@click.option(
    "--boundary",
    default=None,
    help="Trained boundary model folder (default: the bundled one; 'none': image fallback).",
)
@click.option(
    "--layer",
    default=None,
    help="A finished layer (a `magseg map` run's fields/ folder) to serve at every zoom under /layer.",
)
@click.option("--config", "config_path", default=None, help="YAML ServeConfig (its keys; flags win).")
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="HTTP port (default 8000).")
@click.option("--address", default=None, help="Ray cluster address (default: a local Ray).")
def command(
    stac: str | None,
    model: str | None,
    collections: tuple[str, ...],
    boundary: str | None,
    layer: str | None,
    config_path: str | None,
    host: str | None,
    port: int | None,
    address: str | None,
) -> None:
    """Serve /tiles/{z}/{x}/{y}.png|.geojson, /tilejson.json, /map computed on request; Ctrl-C stops.

    With --layer, /layer/{z}/{x}/{y}.png|.mvt serve a finished layer at every zoom, and /map shows it
    below the on-request zooms.
    """
    import ray
    from ray import serve

    from magseg.mapping.config import check_model_dir
    from magseg.serve.app import build_app
    from magseg.serve.config import load_serve_config

    given = {"stac": stac, "model": model, "collections": list(collections) or None, "boundary": boundary}
    given["layer"] = os.path.abspath(layer) if layer else None  # replicas may run in another folder
    config = load_serve_config(config_path, **given, host=host, port=port)
    check_model_dir(config.model)  # one line now, not a replica's traceback later
    ray.init(address=address or "local", include_dashboard=False, configure_logging=False)
    serve.start(http_options={"host": config.host, "port": config.port})
    app = build_app(config.to_dict())
    click.echo(
        f"magseg tiles: http://{config.host}:{config.port}/map (docs at /docs); Ctrl-C stops", err=True
    )
    serve.run(app, name="magseg-tiles", route_prefix="/", blocking=True)
