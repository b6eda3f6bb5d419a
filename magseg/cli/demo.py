"""`magseg demo`: the foundation pipeline end to end on seeded synthetic scenes."""

from __future__ import annotations

from pathlib import Path

import click

from magseg.demo import DemoConfig, run_demo


@click.command(name="demo")
@click.option("--out", default="demo_out", show_default=True, type=click.Path(path_type=Path))
@click.option("--scenes", default=2, show_default=True)
@click.option("--size", default=512, show_default=True, help="Scene side in pixels.")
@click.option("--seed", default=7, show_default=True)
@click.option("--patch", default=64, show_default=True, help="Patch side p in pixels.")
@click.option("--grid", default=8, show_default=True, help="RRLE grid side g.")
@click.option("--model/--no-model", default=True, show_default=True, help="Also run the bundled tiny model.")
def command(out: Path, scenes: int, size: int, seed: int, patch: int, grid: int, model: bool) -> None:
    """Synthesise scenes, write each patch as RRLE (bundled model and oracle), stitch, refine, polygonize, score."""
    config = DemoConfig(scenes=scenes, size=size, seed=seed, patch=patch, grid=grid, model=model)
    run_demo(out, config, log=click.echo)
