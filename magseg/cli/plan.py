"""`magseg plan`: how many tiles, patches, output tokens and GPU-hours mapping a bbox will take."""

from __future__ import annotations

import json
from typing import Any

import click

from magseg.mapping.plan import BUNDLED_MODEL, DEFAULT_MARGIN_PX, DEFAULT_TILE_PX, read_model_rates
from magseg.mapping.zones import plan_zones

#: ASSUMED throughput of a Gemma3-4B-sized MAgSeg model served by vLLM on one H100 (patches/s); not
#: measured here: pass --patches-per-s with a measured figure when there is one.
ASSUMED_GPU_PATCHES_PER_S = 200.0


@click.command(name="plan")
@click.option("--bbox", nargs=4, type=float, required=True, help="west south east north, WGS 84 degrees.")
@click.option("--model", "model", default=None, help="Model folder (default: the bundled tiny-magseg).")
@click.option("--gsd", default=0.5, show_default=True, help="Output ground sample distance, metres/pixel.")
@click.option("--tile-px", default=DEFAULT_TILE_PX, show_default=True, help="Output tile side in pixels.")
@click.option(
    "--margin-px", default=DEFAULT_MARGIN_PX, show_default=True, help="Overlap read around each tile, pixels."
)
@click.option(
    "--patches-per-s",
    type=float,
    default=ASSUMED_GPU_PATCHES_PER_S,
    show_default=True,
    help="GPU throughput per GPU; the default is an ASSUMPTION (Gemma3-4B, vLLM, one H100), not a measurement.",
)
@click.option(
    "--tokens-per-patch", type=float, default=None, help="Override the model's measured tokens/patch."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(
    bbox: tuple[float, float, float, float],
    model: str | None,
    gsd: float,
    tile_px: int,
    margin_px: int,
    patches_per_s: float,
    tokens_per_patch: float | None,
    as_json: bool,
) -> None:
    """Plan mapping BBOX: tiles on each UTM zone's grid, patches, output tokens, GPU-hours and CPU-hours."""
    rates = read_model_rates(model if model is not None else BUNDLED_MODEL)
    plan = plan_zones(bbox, gsd=gsd, tile_px=tile_px, margin_px=margin_px, patch=rates.patch)
    tokens = tokens_per_patch if tokens_per_patch is not None else rates.tokens_per_patch
    # a GPU's rate counts generated patches: seam re-reads are patches too (the CPU rate measured includes them)
    calls = 1.0 + rates.rereads_per_patch
    gpu = plan.estimate(tokens if tokens is not None else 0.0, patches_per_s / calls)
    out: dict[str, Any] = {
        **plan.summary(),
        "tokens_per_patch": tokens,
        "tokens": gpu["tokens"] if tokens is not None else None,
        "patches_with_margin": gpu["patches_with_margin"],
        "gpu_patches_per_s": patches_per_s,
        "gpu_rate_assumed": patches_per_s == ASSUMED_GPU_PATCHES_PER_S,
        "rereads_per_patch": rates.rereads_per_patch,
        "gpu_hours": gpu["gpu_hours"],
        "measured_patches_per_s": rates.patches_per_s,
        "measured_hours": gpu["patches_with_margin"] / rates.patches_per_s / 3600
        if rates.patches_per_s
        else None,
        "rates_from": rates.source,
        "zones": [
            {
                **part.summary(),
                "epsg": part.epsg,
                "patches_with_margin": zone["patches_with_margin"],
                "tokens": zone["tokens"] if tokens is not None else None,
                "gpu_hours": zone["gpu_hours"],
                "measured_hours": zone["patches_with_margin"] / rates.patches_per_s / 3600
                if rates.patches_per_s
                else None,
            }
            for part, zone in zip(plan.parts, gpu["zones"], strict=True)
        ],
    }
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"bbox       {' '.join(f'{v:g}' for v in plan.bbox)}  ({plan.bbox_area_km2:,.1f} km2)")
    click.echo(f"grid       {tile_px} px tiles at {gsd:g} m (+{margin_px} px margin), one UTM grid per zone:")
    for part, zone in zip(plan.parts, gpu["zones"], strict=True):
        w, _, e, _ = part.bbox
        click.echo(
            f"  {part.crs:<10} lon {w:g}..{e:g}: {part.n_tiles:,} tiles, {part.n_patches:,} patches, "
            f"{zone['gpu_hours']:,.1f} GPU-hours"
        )
    click.echo(f"tiles      {plan.n_tiles:,}  ({plan.area_km2:,.1f} km2 of tile cores)")
    click.echo(
        f"patches    {plan.n_patches:,} of {rates.patch} px ({gpu['patches_with_margin']:,} with margins)"
    )
    if tokens is None:
        click.echo(f"tokens     unknown: {rates.source}; pass --tokens-per-patch")
    else:
        click.echo(f"tokens     {gpu['tokens']:,.0f} output tokens at {tokens:.1f} tokens/patch")
    note = "an ASSUMED rate for Gemma3-4B on vLLM, one H100" if out["gpu_rate_assumed"] else "given rate"
    again = f", +{rates.rereads_per_patch:.0%} patches for seam re-reads" if rates.rereads_per_patch else ""
    click.echo(f"GPU-hours  {gpu['gpu_hours']:,.1f} at {patches_per_s:g} patches/s/GPU ({note}{again})")
    if out["measured_hours"] is None:
        click.echo(f"CPU-hours  unknown: {rates.source}")
    else:
        where = "the bundled model, 2 CPU cores" if model is None else rates.source
        click.echo(
            f"CPU-hours  {out['measured_hours']:,.1f} at the measured {rates.patches_per_s:.1f} patches/s ({where})"
        )
