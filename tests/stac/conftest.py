"""Tiny `magseg synth` catalogues (generated once per session) and a by-hand reference filter over item JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stac_geoparquet.arrow
from shapely.geometry import box, shape

from magseg.synth import write_dataset

SEEDS = (3, 4)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `magseg synth` output: 4 adjacent 128 px scenes, shot a second apart, one collection."""
    return write_dataset(
        tmp_path_factory.mktemp("stac") / "synth", 4, 128, 0.5, seed=SEEDS[0], cloud_fraction=0.5
    )


@pytest.fixture(scope="session")
def other_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second run (another seed: another collection and acquisition day)."""
    return write_dataset(
        tmp_path_factory.mktemp("stac") / "other", 2, 128, 0.5, seed=SEEDS[1], cloud_fraction=0.5
    )


def item_dicts(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((root / "stac" / "items").glob("*.json"))]


@pytest.fixture(scope="session")
def merged(synth_root: Path, other_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stac-geoparquet file holding both runs (two collections, two days)."""
    dicts = item_dicts(synth_root) + item_dicts(other_root)
    path = tmp_path_factory.mktemp("merged") / "items.parquet"
    stac_geoparquet.arrow.to_parquet(stac_geoparquet.arrow.parse_stac_items_to_arrow(dicts), path)
    return path


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def by_hand(
    dicts: list[dict[str, Any]],
    bbox: tuple[float, float, float, float] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    collections: tuple[str, ...] | None = None,
    max_cloud: float | None = None,
) -> set[str]:
    """The reference: ids of the item JSON passing each filter, written independently of magseg.stac."""
    out = set()
    for d in dicts:
        props = d["properties"]
        when = _when(props["datetime"])
        if bbox is not None and not shape(d["geometry"]).intersects(box(*bbox)):
            continue
        if (start is not None and when < start) or (end is not None and when > end):
            continue
        if collections is not None and d["collection"] not in collections:
            continue
        if max_cloud is not None and props["eo:cloud_cover"] > max_cloud:
            continue
        out.add(d["id"])
    return out
