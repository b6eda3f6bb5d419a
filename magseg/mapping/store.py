"""A run's output folder: its manifest, one finished-tile record per tile (what makes a run resumable)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np

from magseg.atomic import atomic_path
from magseg.errors import InputError

__all__ = ["RunStore"]

MANIFEST = "manifest.json"


def fingerprint(settings: dict[str, Any]) -> str:
    """A short hash of everything that decides a run's polygons (bbox, catalog query, model, knobs)."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, default=str) + "\n")


class RunStore:
    """``out/manifest.json`` (what the run is) and ``out/tiles/<id>.{parquet,npz,json}`` (what is done).

    A tile is finished once its ``.json`` record exists; the record is written last, after the pieces
    and the quick-look arrays, each atomically, so a run killed at any instant leaves every tile either
    finished or absent, and a rerun redoes exactly the absent ones.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.root = Path(out).expanduser()
        self.tiles = self.root / "tiles"

    def open(self, settings: dict[str, Any]) -> bool:
        """Claim the folder for a run with these settings; True if it resumes an earlier one.

        InputError if the folder holds another run's output (other settings), or files that are not a
        run's output at all: a rerun must never mix two runs' polygons in one layer.
        """
        key = fingerprint(settings)
        manifest = self.root / MANIFEST
        if manifest.is_file():
            try:
                found = json.loads(manifest.read_text())
            except json.JSONDecodeError:
                found = {}
            if found.get("fingerprint") != key:
                raise InputError(
                    f"{self.root} holds another run's layer (bbox {found.get('settings', {}).get('bbox')}): "
                    "give a new --out, or delete that folder to replace it"
                )
            return True
        if self.root.exists() and any(self.root.iterdir()):
            raise InputError(f"{self.root} is not empty and holds no magseg run: give an empty or new --out")
        self.tiles.mkdir(parents=True, exist_ok=True)
        write_json(manifest, {"fingerprint": key, "settings": settings})
        return False

    def save(
        self,
        tile_id: str,
        pieces: gpd.GeoDataFrame | None,
        arrays: dict[str, np.ndarray],
        record: dict[str, Any],
    ) -> None:
        """Record a finished tile: pieces (GeoParquet, tile CRS), quick-look arrays, then the record."""
        self.tiles.mkdir(parents=True, exist_ok=True)
        if pieces is not None:
            with atomic_path(self.tiles / f"{tile_id}.parquet") as tmp:
                pieces.to_parquet(tmp, index=False)
        if arrays:
            with atomic_path(self.tiles / f"{tile_id}.npz") as tmp:
                np.savez_compressed(tmp, **arrays)  # type: ignore[arg-type]
        write_json(self.tiles / f"{tile_id}.json", {"tile": tile_id, **record})

    def is_done(self, tile_id: str) -> bool:
        """Whether one tile is finished (one file check, not a listing of the folder)."""
        return (self.tiles / f"{tile_id}.json").is_file()

    def record(self, tile_id: str) -> dict[str, Any] | None:
        """One finished tile's record, or None if the tile is not finished."""
        path = self.tiles / f"{tile_id}.json"
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return None

    def tile_pieces(self, tile_id: str) -> gpd.GeoDataFrame | None:
        """One finished tile's pieces, or None if it has none."""
        path = self.tiles / f"{tile_id}.parquet"
        return gpd.read_parquet(path) if path.is_file() else None

    def pieces(self, ids: Iterable[str]) -> list[gpd.GeoDataFrame]:
        """The pieces of the given finished tiles (tiles without polygons are left out)."""
        paths = [self.tiles / f"{t}.parquet" for t in sorted(ids)]
        return [gpd.read_parquet(p) for p in paths if p.is_file()]

    def arrays(self, tile_id: str) -> dict[str, np.ndarray] | None:
        path = self.tiles / f"{tile_id}.npz"
        if not path.is_file():
            return None
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
