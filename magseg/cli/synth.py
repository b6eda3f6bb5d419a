"""`magseg synth`: write seeded synthetic smallholder scenes (COGs, label rasters, polygons, STAC)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from magseg.synth.locations import PRESETS

if TYPE_CHECKING:
    from magseg.synth import SyntheticScene


@click.command(name="synth")
@click.option(
    "--out", required=True, type=click.Path(path_type=Path), help="Output folder (must be new or empty)."
)
@click.option("--scenes", default=4, show_default=True, type=int, help="Number of adjacent scenes.")
@click.option("--size", default=512, show_default=True, type=int, help="Scene width and height in pixels.")
@click.option(
    "--gsd", default=0.5, show_default=True, type=float, help="Ground sample distance, metres/pixel."
)
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Same seed, same dataset (byte for byte)."
)
@click.option(
    "--location",
    default="karnal",
    show_default=True,
    help=f"Preset ({', '.join(PRESETS)}) or LON,LAT in degrees; the UTM zone follows.",
)
@click.option(
    "--cloud-fraction",
    default=0.3,
    show_default=True,
    type=float,
    help="Chance that a scene is cloudy (0-1).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing `magseg synth` output folder.")
def command(
    out: Path,
    scenes: int,
    size: int,
    gsd: float,
    seed: int,
    location: str,
    cloud_fraction: float,
    overwrite: bool,
) -> None:
    """Generate seeded synthetic smallholder landscapes with ground truth and a STAC catalogue."""
    from magseg.synth.write import check_request, write_dataset  # heavy imports only when the command runs

    check_request(
        out, scenes, size, gsd, seed, location, overwrite, cloud_fraction
    )  # fail before the bar shows
    fields = cloudy = 0
    # a bar on a terminal; in logs one line per scene (click's hidden bar would print only its label)
    bar = click.progressbar(length=scenes, label="synth", file=sys.stderr) if sys.stderr.isatty() else None

    def advance(scene: SyntheticScene) -> None:
        nonlocal fields, cloudy
        counts = scene.counts()
        fields += counts["field"]
        cloudy += scene.cloud_cover > 0
        if bar is not None:
            bar.update(1)
        else:
            click.echo(f"{scene.scene_id}: {counts}, cloud {scene.cloud_cover:.1f}%", err=True)

    with bar if bar is not None else contextlib.nullcontext():
        root = write_dataset(
            out, scenes, size, gsd, seed, location, overwrite, cloud_fraction, progress=advance
        )
    click.echo(f"wrote {scenes} scene(s) ({fields} fields, {cloudy} cloudy) to {root}")
