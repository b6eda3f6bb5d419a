"""`magseg map`: map the fields of a bounding box from STAC imagery on Ray, into a partitioned fiboa layer."""

from __future__ import annotations

import json

import click

from magseg.dtypes import DTYPES


@click.command(name="map")
@click.option("--bbox", nargs=4, type=float, default=None, help="west south east north, WGS 84 degrees.")
@click.option("--stac", default=None, help="STAC API URL, stac-geoparquet file, or a magseg synth folder.")
@click.option(
    "--out", "out", default=None, help="Run folder (created; an earlier run of the same job resumes)."
)
@click.option(
    "--config", "config_path", default=None, help="YAML MapConfig (jobs/configs/map_*.yaml); flags win."
)
@click.option("--model", default=None, help="Model folder (default: the bundled tiny-magseg).")
@click.option("--collection", "collections", multiple=True, help="STAC collection to search (repeatable).")
@click.option("--datetime", "datetime_", default=None, help="RFC 3339 instant or start/end interval.")
@click.option("--max-cloud", type=float, default=None, help="Largest eo:cloud_cover (percent).")
@click.option(
    "--engine",
    type=click.Choice(["hf", "hf-generate", "vllm", "truth", "field", "classifier"]),
    default=None,
    help="hf (default), hf-generate (transformers' generate, no shared prefix: the slow reference), vllm "
    "(GPU); stand-ins that run no model: truth (the items' labels as RRLE, drills), field (field "
    "everywhere) or classifier (--classifier): the baselines through the same job.",
)
@click.option(
    "--classifier",
    default=None,
    help="With --engine classifier: a pixel classifier .npz (magseg.evaluate.baselines.PixelClassifier.save).",
)
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    default=None,
    help="Cast the model's weights (default: the checkpoint's own); bfloat16 is faster on CPUs with AMX.",
)
@click.option(
    "--rereads",
    type=float,
    default=None,
    help="Share of each tile's patches re-read over disagreeing seams (default: the model card's; 0: none).",
)
@click.option(
    "--boundary",
    default=None,
    help="Trained boundary model folder (default: the bundled one; 'none': image fallback).",
)
@click.option("--export", default=None, help="Also write the whole layer to one .parquet/.fgb/.gpkg file.")
@click.option("--address", default=None, help="Ray cluster address (default: a local Ray).")
@click.option("--actors", type=int, default=None, help="Model actors.")
@click.option("--batch-size", type=int, default=None, help="Patches per generate call.")
@click.option("--yes", is_flag=True, default=None, help="Map bboxes above max_tiles too.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--verbose",
    is_flag=True,
    help="Library logs (Ray's) and a line per tile on the console, not in OUT/logs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print run.json's summary as JSON at the end.")
def command(
    bbox: tuple[float, float, float, float] | None,
    stac: str | None,
    out: str | None,
    config_path: str | None,
    model: str | None,
    collections: tuple[str, ...],
    datetime_: str | None,
    max_cloud: float | None,
    engine: str | None,
    classifier: str | None,
    dtype: str | None,
    rereads: float | None,
    boundary: str | None,
    export: str | None,
    address: str | None,
    actors: int | None,
    batch_size: int | None,
    yes: bool | None,
    no_progress: bool,
    verbose: bool,
    as_json: bool,
) -> None:
    """Map BBOX: plan tiles, search STAC, read, run the model on Ray Data, refine, write the field layer."""
    from magseg.errors import InputError
    from magseg.mapping.config import MapConfig, load_map_config
    from magseg.mapping.pipeline import run_region

    given = {
        "bbox": list(bbox) if bbox else None,
        "stac": stac,
        "out": out,
        "model": model,
        "collections": list(collections) or None,
        "datetime": datetime_,
        "max_cloud": max_cloud,
        "engine": engine,
        "classifier": classifier,
        "dtype": dtype,
        "rereads": rereads,
        "boundary": boundary,
        "export": export,
        "address": address,
        "actors": actors,
        "batch_size": batch_size,
        "allow_large": yes,
        "progress": False if no_progress else None,
        "verbose": True if verbose else None,
    }
    if config_path:
        config = load_map_config(config_path, **given)
    else:
        missing = [f"--{k}" for k in ("bbox", "stac", "out") if given[k] is None]
        if missing:
            raise InputError(f"missing {', '.join(missing)} (or give --config)")
        config = MapConfig(**{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]
    summary = run_region(config, log=lambda line: click.echo(line, err=True))
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    tiles = summary["tiles"]
    timings = summary["timings"]
    click.echo(
        f"mapped {tiles['finished']}/{tiles['planned']} tiles ({summary['area_km2']:.2f} km²) in "
        f"{timings['total_s']:.0f} s: {summary['polygons']} polygons {summary['polygons_by_class']}"
    )
    rate = summary["model_patches_per_s"]
    click.echo(
        f"model: {summary['patches']} patches (+{summary.get('rereads', 0)} seam re-reads), {rate or 0:.1f} patches/s, "
        f"{summary['tokens_per_patch']:.1f} tokens/patch, {summary['decode_valid_rate']:.1%} valid RRLE"
    )
    click.echo(f"layer: {summary['layer']}" + (f"; export: {summary['export']}" if summary["export"] else ""))
    for line in summary["warnings"][:5]:
        click.echo(f"warning: {line}")
