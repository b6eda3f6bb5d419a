"""`magseg eval`: patch inference over labelled scenes, refinement ablation and baselines, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import click

from magseg.dtypes import DTYPES


@click.command(name="eval")
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Model folder (full model or LoRA output). Default: the bundled magseg/assets/tiny-magseg.",
)
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Labelled scenes: a `magseg synth` output folder or an images/ + masks/ folder.",
)
@click.option(
    "--boundary",
    "boundary_path",
    default=None,
    help="Trained boundary model folder for refinement (default: the bundled one; 'none': image fallback).",
)
@click.option(
    "--compare",
    "compare_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A second model evaluated identically (e.g. SFT+GRPO beside SFT).",
)
@click.option(
    "--train-data",
    type=click.Path(path_type=Path),
    default=None,
    help="Labelled scenes to fit the pixel-classifier baseline on (default: 8 fresh synthetic scenes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@click.option("--max-scenes", type=int, default=None, help="Evaluate only the first N scenes (sorted by id).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Patches per generate call.")
@click.option(
    "--max-new-tokens",
    type=int,
    default=None,
    help="Generation limit per patch (default: the longest RRLE of the grid in the model's tokenizer).",
)
@click.option(
    "--patch", type=int, default=None, help="Patch side p in pixels (default: as the model was trained)."
)
@click.option("--grid", type=int, default=None, help="RRLE grid side g (default: as the model was trained).")
@click.option("--context-size", type=int, default=None, help="Scene image side (default: as trained).")
@click.option("--crop-size", type=int, default=None, help="Patch crop side (default: as trained).")
@click.option(
    "--with-crop/--no-crop", default=None, help="Give the patch crop as a second image (default: as trained)."
)
@click.option("--device", default=None, help="torch device, e.g. cuda (default: the checkpoint's, CPU here).")
@click.option(
    "--dtype",
    type=click.Choice(DTYPES),
    default=None,
    help="Cast the weights of --model and --compare (default: the checkpoint's own).",
)
@click.option(
    "--fit-confidence",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Fit the per-field confidence calibrator on these scenes and save it here (MODEL/confidence.json "
    "is where map, eval and serve look; use scenes the model never trained on and that you will not report on).",
)
@click.option(
    "--reliability",
    "reliability_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the reliability diagram (PNG) of the model's per-field confidence on these scenes here.",
)
@click.option(
    "--class-bias",
    default=None,
    help="Logit bias per class name for greedy decoding, e.g. 'tree=1,well=3' ('none': no bias; default: the "
    "model card's decoding.class_bias). Tune it on scenes you will not report on.",
)
@click.option(
    "--rereads",
    type=float,
    default=None,
    help="Share of each scene's patches re-read over the seams where its patches disagree (0: independent "
    "patches; default: the model card's decoding.rereads).",
)
def command(
    model_path: Path | None,
    data_path: Path,
    boundary_path: str | None,
    compare_path: Path | None,
    train_data: Path | None,
    as_json: bool,
    max_scenes: int | None,
    batch_size: int,
    max_new_tokens: int | None,
    patch: int | None,
    grid: int | None,
    context_size: int | None,
    crop_size: int | None,
    with_crop: bool | None,
    device: str | None,
    dtype: str | None,
    fit_confidence: Path | None,
    reliability_path: Path | None,
    class_bias: str | None,
    rereads: float | None,
) -> None:
    """Evaluate a model on labelled scenes: per-class instance metrics, mean DICE, decode validity,
    tokens per patch and patches/s, with and without refinement, beside two baselines ("field"
    everywhere, a per-pixel colour classifier) refined and scored the same way."""
    from magseg.bundled import BUNDLED_MODEL
    from magseg.confidence import Reliability, load_calibrator, reliability_png
    from magseg.errors import InputError
    from magseg.evaluate import format_report, run_eval

    model_dir = model_path or BUNDLED_MODEL
    if reliability_path is not None and model_dir.is_dir() and load_calibrator(model_dir) is None:
        raise InputError(
            f"--reliability: {model_dir} has no confidence calibration; fit one first with "
            "--fit-confidence MODEL/confidence.json on scenes you will not report on"
        )

    def log(line: str) -> None:
        click.echo(line, err=True)

    report = run_eval(
        data_path,
        model_path,
        compare=compare_path,
        boundary=boundary_path,
        train_data=train_data,
        max_scenes=max_scenes,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        device=device,
        dtype=dtype,
        log=log,
        fit_confidence=fit_confidence,
        patch=patch,
        grid=grid,
        context_size=context_size,
        crop_size=crop_size,
        with_crop=with_crop,
        class_bias=parse_class_bias(class_bias),
        rereads=rereads,
    )
    if reliability_path is not None and report.get("confidence"):
        fields = Reliability(**report["confidence"]["fields"])
        reliability_png(fields, reliability_path, title=f"fields, {report['n_scenes']} held-out scenes")
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def parse_class_bias(text: str | None) -> dict[str, float] | None:
    """'tree=1,well=3' -> {'tree': 1.0, 'well': 3.0}; 'none' -> {}; None -> None (the model card's)."""
    from magseg.errors import InputError

    if text is None:
        return None
    if text.strip().lower() == "none":
        return {}
    bias: dict[str, float] = {}
    for part in filter(str.strip, text.split(",")):
        name, _, value = part.partition("=")  # no "=": value is "", which is no number either
        try:
            bias[name.strip()] = float(value)
        except ValueError:
            raise InputError(
                f"--class-bias {text!r}: write CLASS=NUMBER pairs separated by commas, e.g. tree=1,well=3"
            ) from None
    return bias
