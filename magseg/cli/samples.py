"""`magseg samples`: build MAgSeg instruction samples from labelled scene folders."""

from __future__ import annotations

from pathlib import Path

import click

from magseg.codec import GRID_METHODS
from magseg.samples import SampleConfig, write_samples


@click.command(name="samples")
@click.option(
    "--source",
    "sources",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="Folder of labelled scenes (magseg synth output, naip-fields layout, or images/+masks/). Repeatable.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (train/, val/, samples.json).",
)
@click.option("--patch", default=64, show_default=True, help="Patch side p in pixels.")
@click.option("--grid", default=8, show_default=True, help="RRLE grid side g (g = p: full resolution).")
@click.option(
    "--grid-method",
    type=click.Choice(GRID_METHODS),
    default="majority",
    show_default=True,
    help="How a cell gets its class: majority vote, weighted (small classes such as wells count more), nearest.",
)
@click.option("--per-scene", default=16, show_default=True, help="Samples drawn per scene.")
@click.option(
    "--context-size", default=256, show_default=True, help="Side of the stored scene context image."
)
@click.option("--crop-size", default=None, type=int, help="Side of the stored patch crop (default: p).")
@click.option(
    "--crop/--no-crop",
    "with_crop",
    default=True,
    show_default=True,
    help="Give the patch crop as a second image.",
)
@click.option(
    "--window",
    default=None,
    type=int,
    help="Cut larger scenes to random windows of this side (a multiple of p).",
)
@click.option(
    "--balance", default=0.0, show_default=True, help="Share of patches placed over a non-majority class."
)
@click.option(
    "--min-labelled",
    default=0.0,
    show_default=True,
    help="Redraw patches less labelled than this share (labels where 0 means 'not annotated').",
)
@click.option("--augment", is_flag=True, help="Random flips / 90° turns (image and mask together).")
@click.option("--jitter", default=0.0, show_default=True, help="Colour jitter strength (0 = none).")
@click.option("--val-fraction", default=0.0, show_default=True, help="Fraction of scenes held out as val/.")
@click.option("--seed", default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out.")
def command(
    sources: tuple[Path, ...],
    out: Path,
    patch: int,
    grid: int,
    grid_method: str,
    per_scene: int,
    context_size: int,
    crop_size: int | None,
    with_crop: bool,
    window: int | None,
    balance: float,
    min_labelled: float,
    augment: bool,
    jitter: float,
    val_fraction: float,
    seed: int,
    overwrite: bool,
) -> None:
    """Draw random p x p patches and write prompt + RRLE samples that TRL reads directly.

    Top-left corners are uniform unless --balance / --min-labelled steer them; --window, --augment and
    --jitter draw each sample from its own (augmented) scene window.
    """
    config = SampleConfig(
        patch=patch,
        grid=grid,
        grid_method=grid_method,
        per_scene=per_scene,
        context_size=context_size,
        crop_size=crop_size,
        with_crop=with_crop,
        window=window,
        balance=balance,
        min_labelled=min_labelled,
        augment=augment,
        jitter=jitter,
    )
    try:
        config.check()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc

    def progress(done: int, total: int) -> None:
        click.echo(f"\rscenes {done}/{total}", nl=False, err=True)
        if done == total:
            click.echo("", err=True)

    counts = write_samples(
        sources, out, config, seed=seed, val_fraction=val_fraction, overwrite=overwrite, progress=progress
    )
    click.echo(f"wrote {counts['train']} train and {counts['val']} val samples to {out}")
