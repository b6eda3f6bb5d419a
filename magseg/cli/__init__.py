"""The `magseg` command: a thin group; each subcommand lives in its own module and calls the library."""

from __future__ import annotations

import importlib
import os
import sys

import click

from magseg import __version__
from magseg.errors import MagsegError

# subcommand name -> module under magseg.cli that defines a click command called `command`.
# Imported lazily so `magseg --help` stays fast and one subcommand's heavy imports don't slow the others.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "Generate seeded synthetic smallholder landscapes (COGs, labels, STAC)."),
    "samples": ("samples", "Build MAgSeg instruction samples (scene + patch -> RRLE) from labelled scenes."),
    "score": ("score", "Score predicted instances against the truth (the seed's metrics)."),
    "polygonize": ("polygonize", "Turn a label raster into a fiboa polygon layer."),
    "refine": ("refine", "Refine a semantic mask into field instances (EPOC + watershed)."),
    "train": ("train", "Train SFT / GRPO / the boundary model (Ray Train, or --local)."),
    "eval": ("eval", "Evaluate a model on labelled scenes: the seed's tables, ablations and baselines."),
    "plan": ("plan", "Plan a region: tiles, patches, tokens and GPU-hours for a bounding box."),
    "map": ("map", "Map the fields of a bbox from STAC imagery on Ray into a partitioned fiboa layer."),
    "serve": (
        "serve",
        "Serve fields as XYZ tiles computed on request (Ray Serve): PNG, GeoJSON, TileJSON, map.",
    ),
    "stac": ("stac", "Catalog tooling: ingest COGs or items into a STAC API or a stac-geoparquet file."),
    "demo": ("demo", "Show what exists end to end on a synthetic scene."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, help_text = SUBCOMMANDS[cmd_name]
        try:
            module = importlib.import_module(f"magseg.cli.{module_name}")
        except ModuleNotFoundError:
            return None
        command: click.Command = module.command
        command.short_help = help_text
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="magseg")
def cli() -> None:
    """magseg: map agricultural fields from VHR imagery with a multimodal LLM."""


def main() -> None:
    """Console entry point: user-facing errors become one line on stderr and exit status 2."""
    # the libraries' own bars (weights loading, datasets) are noise beside magseg's lines and bar
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        cli.main(standalone_mode=False)
    except MagsegError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
