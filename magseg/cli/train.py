"""`magseg train`: SFT, GRPO or boundary training on this machine, under a local Ray Train run or plain."""

from __future__ import annotations

import os
from pathlib import Path

import click

from magseg.train.ray_train import KINDS


@click.command(name="train")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Job config YAML (training keys + an optional ray: section), e.g. jobs/configs/sft_tiny_cpu.yaml.",
)
@click.option("--workers", type=int, default=None, help="Ray Train workers (overrides ray.workers).")
@click.option("--storage", default=None, help="Checkpoint storage folder or URI (overrides ray.storage).")
@click.option("--name", default=None, help="Run name; the same name + storage resumes (overrides ray.name).")
@click.option("--model", default=None, help="Base model folder (overrides model; sft and grpo).")
@click.option("--data", default=None, help="Samples folder (overrides data; boundary: one scene folder).")
@click.option("--local", is_flag=True, help="No Ray at all: call run_sft / run_grpo / run_boundary directly.")
def command(
    kind: str,
    config_path: Path,
    workers: int | None,
    storage: str | None,
    name: str | None,
    model: str | None,
    data: str | None,
    local: bool,
) -> None:
    """Train KIND (sft | grpo | boundary | align) from a job config.

    align: pre-align a from-scratch vision tower (per-token cell classes) before sft; see magseg.train.align.

    By default a local Ray Train run (ray.init() on this machine, N workers, checkpoints in the ray
    storage, resumable by name); the same code runs on a cluster with `ray job submit ... jobs/KIND.py`.
    """
    from magseg.train.ray_job import load_job_config

    config, settings = load_job_config(config_path, kind, model=model, data=data)
    base = getattr(config, "model", None)
    if kind != "boundary" and isinstance(base, str) and base:
        from magseg.model import resolve_model_path

        resolve_model_path(base)  # a one-line error before any run folder is made
    if local:
        from magseg.train.ray_job import run_local

        click.echo(f"model: {run_local(kind, config).resolve()}")
        return
    import ray

    from magseg.train.ray_train import run_ray_train

    if not ray.is_initialized() and "RAY_ADDRESS" not in os.environ:
        ray.init(include_dashboard=False)  # a local Ray for this run: 7 processes instead of 17
    settings.workers = workers or settings.workers
    settings.storage = storage or settings.storage
    settings.name = name or settings.name
    result, out = run_ray_train(kind, config, settings)
    click.echo(f"run: {settings.run_name(kind)} in {settings.storage_uri()}")
    click.echo(f"steps/s: {(result.metrics or {}).get('steps_per_s', 0.0):.3f}")
    click.echo(f"model: {out}")
