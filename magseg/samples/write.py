"""Write instruction samples as Parquet shards with embedded images, readable by `datasets` and TRL directly."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from datasets import Dataset, Image, List, disable_progress_bars, load_dataset

from magseg import __version__
from magseg.atomic import atomic_dir
from magseg.errors import InputError
from magseg.format import ModelFormat
from magseg.samples.build import Sample, SampleConfig, scene_samples
from magseg.sources import SceneRef, list_scenes

SHARD_ROWS = 2000


def _split_of(scene_index: int, val_fraction: float, seed: int) -> str:
    # a scene goes wholly to one split, so validation never sees a training scene's pixels
    draw = np.random.default_rng([seed, scene_index, 7]).random()
    return "val" if draw < val_fraction else "train"


def _write_split(rows: list[dict], path: Path) -> None:
    disable_progress_bars()  # our own progress line is enough; datasets' bars flood CI logs
    ds = Dataset.from_list(rows).cast_column("images", List(Image()))
    for i, start in enumerate(range(0, len(rows), SHARD_ROWS)):
        shard = ds.select(range(start, min(start + SHARD_ROWS, len(rows))))
        shard.to_parquet(str(path / f"{path.name}-{i:05d}.parquet"))


def _format(config: SampleConfig) -> ModelFormat:
    """What a model's prompts depend on: samples of one folder must agree on it (the share of prompts
    naming neighbours may differ per source: e.g. none for sparse labels, where 0 is "not annotated")."""
    return dataclasses.replace(ModelFormat.of(config), neighbours=0.0)


def write_samples(
    sources: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    config: SampleConfig | Sequence[SampleConfig],
    seed: int = 0,
    val_fraction: float = 0.0,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Draw samples from every scene of every source folder and write OUT/{train,val}/*.parquet + samples.json.

    Reproducible per seed: scene i of the sorted scene list draws from its own generator (seed, i), so adding
    a source folder does not change the samples of the scenes before it. ``config`` may be one config per
    source (e.g. class balance for synthetic scenes, a labelled share for sparse real labels); they must
    agree on the prompt format (patch, grid, context, crop, window).
    """
    configs = [config] * len(sources) if isinstance(config, SampleConfig) else list(config)
    if len(configs) != len(sources):
        raise InputError(f"got {len(configs)} sample configs for {len(sources)} sources; give one per source")
    for cfg in configs:
        cfg.check()
        if _format(cfg) != _format(configs[0]):
            raise InputError("sample configs of one folder must share patch, grid, context, crop and window")
    out_path = Path(out)
    if out_path.exists() and any(out_path.iterdir()) and not overwrite:
        raise InputError(f"{out_path}: exists and is not empty; choose a new --out or pass --overwrite")
    if not 0.0 <= val_fraction < 1.0:
        raise InputError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    refs: list[tuple[SceneRef, SampleConfig]] = [
        (ref, cfg) for src, cfg in zip(sources, configs, strict=True) for ref in list_scenes(src)
    ]
    splits: dict[str, list[dict]] = {"train": [], "val": []}
    for i, (ref, cfg) in enumerate(refs):
        rng = np.random.default_rng([seed, i])
        samples: list[Sample] = scene_samples(ref.load(), cfg, rng)
        splits[_split_of(i, val_fraction, seed)].extend(s.as_row() for s in samples)
        if progress is not None:
            progress(i + 1, len(refs))
    counts = {name: len(rows) for name, rows in splits.items()}
    with atomic_dir(out_path) as tmp:
        for name, rows in splits.items():
            if rows:
                (tmp / name).mkdir()
                _write_split(rows, tmp / name)
        meta = {
            "magseg_version": __version__,
            "seed": seed,
            "val_fraction": val_fraction,
            "sources": [str(Path(s).resolve()) for s in sources],
            "scenes": len(refs),
            "counts": counts,
            # the folder's format: the first config's, naming neighbours if any source's prompts do
            "config": {**asdict(configs[0]), "neighbours": max(c.neighbours for c in configs)},
            "source_configs": [asdict(c) for c in configs],
        }
        (tmp / "samples.json").write_text(json.dumps(meta, indent=2))
    return counts


def load_samples(path: str | os.PathLike[str], split: str = "train") -> Dataset:
    """Load one split written by :func:`write_samples` as a `datasets.Dataset` (images decode to PIL)."""
    folder = Path(path) / split
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise InputError(f"{folder}: no Parquet shards; build samples with `magseg samples` first")
    return load_dataset("parquet", data_files=[str(f) for f in files], split="train")
