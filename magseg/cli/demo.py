"""`magseg demo`: the region job end to end on seeded synthetic scenes, scored against their truth."""

from __future__ import annotations

from pathlib import Path

import click

from magseg.demo import DemoConfig, run_demo


@click.command(name="demo")
@click.option("--out", default="demo_out", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--scenes", default=DemoConfig.scenes, show_default=True, help="Adjacent scenes (a near-square grid)."
)
@click.option("--size", default=DemoConfig.size, show_default=True, help="Scene side in pixels.")
@click.option("--seed", default=DemoConfig.seed, show_default=True)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--verbose", is_flag=True, help="Library logs (Ray's) on the console instead of OUT/run/logs.")
def command(out: Path, scenes: int, size: int, seed: int, no_progress: bool, verbose: bool) -> None:
    """Synthesise ≥ 1 km² of scenes, map their bbox with the bundled model on Ray, score against the truth."""
    config = DemoConfig(scenes=scenes, size=size, seed=seed, progress=not no_progress, verbose=verbose)
    run_demo(out, config, log=click.echo)
