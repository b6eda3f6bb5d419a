"""Job configs (training keys + a ``ray:`` section) and the entrypoint behind jobs/*.py and `magseg train`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from magseg.configfile import read_yaml_mapping
from magseg.errors import InputError, MagsegError
from magseg.train.ray_train import KINDS, RaySettings, check_kind, ray_settings


def load_job_config(path: str | os.PathLike[str], kind: str, **overrides: Any) -> tuple[Any, RaySettings]:
    """(training config, RaySettings) of a job config; top-level ``overrides`` (model, data) win.

    The file holds the keys of the kind's own config (TrainConfig for sft/grpo, BoundaryConfig for
    boundary) plus an optional ``ray:`` mapping (see RaySettings).
    """
    check_kind(kind)
    values = read_yaml_mapping(path, "a job config", "see jobs/configs/ for examples")
    settings = ray_settings(values.pop("ray", None), str(path))
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if kind == "boundary":
        from magseg.train.boundary import boundary_config_from_dict

        if "model" in overrides:
            raise InputError("the boundary model is built from its config; --model applies to sft and grpo")
        if "data" in overrides:  # one labelled scene folder replaces the configured sources
            values["sources"] = [overrides.pop("data")]
        return boundary_config_from_dict(values, str(path)), settings
    values.update(overrides)
    from magseg.train.config import config_from_dict

    return config_from_dict(values, str(path)), settings


def run_local(kind: str, config: Any) -> Path:
    """Train without Ray: the kind's plain runner (run_sft, run_grpo, run_boundary) on this machine."""
    check_kind(kind)
    module_name, _, runner = KINDS[kind]
    out: Path = getattr(importlib.import_module(module_name), runner)(config)
    return out


def _parser(kind: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"jobs/{kind}.py",
        description=f"{kind} under Ray Train (run it with `ray job submit`; see cluster/README.md).",
    )
    p.add_argument("--config", required=True, help="job config YAML (training keys + a ray: section)")
    p.add_argument("--workers", type=int, help="Ray Train workers (overrides ray.workers)")
    p.add_argument(
        "--storage", help="checkpoint storage: local folder or pyarrow URI (overrides ray.storage)"
    )
    p.add_argument("--name", help="run name; the same name + storage resumes (overrides ray.name)")
    p.add_argument("--model", help="base model folder (overrides model)")
    p.add_argument("--data", help="samples folder (overrides data; boundary: the one scene folder)")
    return p


def main(kind: str, argv: Sequence[str] | None = None) -> int:
    """Entry point of jobs/<kind>.py: train under Ray Train, print the model's location; 2 on user errors."""
    args = _parser(kind).parse_args(argv)
    try:
        from magseg.train.ray_train import run_ray_train

        config, settings = load_job_config(args.config, kind, model=args.model, data=args.data)
        settings.workers = args.workers or settings.workers
        settings.storage = args.storage or settings.storage
        settings.name = args.name or settings.name
        result, model = run_ray_train(kind, config, settings)
    except MagsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"run: {settings.run_name(kind)} in {settings.storage_uri()}")
    print(f"metrics: {result.metrics}")
    print(f"model: {model}")
    return 0
