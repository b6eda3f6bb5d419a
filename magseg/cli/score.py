"""`magseg score`: score a predicted label raster or polygon layer against the truth."""

from __future__ import annotations

import json

import click


@click.command(name="score")
@click.option("--pred", "pred_path", required=True, help="Predicted label GeoTIFF or polygon layer.")
@click.option("--truth", "truth_path", required=True, help="Truth of the same kind (and grid, for rasters).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object keyed by class name.")
@click.option(
    "--classes", default=None, help="Comma-separated class names to score, e.g. field,tree (default: all)."
)
def command(pred_path: str, truth_path: str, as_json: bool, classes: str | None) -> None:
    """Score PRED against TRUTH with the seed's metrics: merged IoU (mean, median), FNR, FPR, and P/R/F1@0.5."""
    from magseg.metrics import format_table, score_files, scores_to_json
    from magseg.metrics.files import parse_classes

    scores = score_files(pred_path, truth_path, parse_classes(classes))
    click.echo(json.dumps(scores_to_json(scores), indent=2) if as_json else format_table(scores))
