"""A real stac-fastapi-pgstac server on loopback (stac/pgstac.sh): ingest, search parity, same layer as embedded."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import shapely

from magseg.mapping import read_partitioned
from magseg.mapping.pipeline import run_region
from magseg.stac import open_catalog
from tests.conftest import region_config, run_magseg

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "stac" / "pgstac.sh"


@pytest.fixture(scope="session")
def pgstac() -> Iterator[str]:
    """The API's URL; PostgreSQL + PostGIS come from `make test` (stac/pgstac.sh install)."""
    # the database runs as the postgres user, which must be able to reach its folder
    root = Path(tempfile.mkdtemp(prefix="pgstac", dir="/tmp"))
    root.chmod(0o755)
    env = {**os.environ, "PYTHON": sys.executable}
    started = subprocess.run(
        [str(SCRIPT), "start", str(root / "db")], env=env, capture_output=True, text=True
    )
    assert started.returncode == 0, started.stderr
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run([str(SCRIPT), "stop", str(root / "db")], env=env, check=False)
        root.rmdir()


@pytest.fixture(scope="session")
def loaded(pgstac: str, region: tuple[Path, list[float]]) -> str:
    """The region's scenes ingested into the server with `magseg stac ingest`."""
    root, _ = region
    argv = [str(Path(sys.executable).parent / "magseg"), "stac", "ingest", str(root), "--catalog", pgstac]
    done = subprocess.run([*argv, "--collection", "region"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ingested 4 item(s)" in done.stdout
    return pgstac


def ids(items: list) -> list[str]:
    return [it.id for it in items]


def test_search_gives_the_same_items_as_the_embedded_catalog(
    loaded: str, region: tuple[Path, list[float]]
) -> None:
    root, bbox = region
    api, embedded = open_catalog(loaded), open_catalog(root)
    everything = embedded.search()
    when = everything[0].datetime
    assert when is not None
    cases = [
        {},
        {"bbox": bbox},
        {"bbox": [bbox[0], bbox[1], (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]},
        {"max_cloud": sorted(it.properties["eo:cloud_cover"] for it in everything)[1]},
        {"datetime": f"{when.date()}T00:00:00Z/{when.date()}T23:59:59Z"},
        {"datetime": "2001-01-01T00:00:00Z/2001-12-31T00:00:00Z"},
        {"bbox": [10.0, 10.0, 10.1, 10.1]},
    ]
    for case in cases:
        # the API filters under another collection id: compare ids, not collections
        assert ids(api.search(**case)) == ids(embedded.search(**case)), case
    assert len(api.search(collections="region")) == 4 and api.search(collections="nothing") == []


def test_pgstac_and_embedded_runs_give_the_same_layer(
    loaded: str, region: tuple[Path, list[float]], tmp_path: Path
) -> None:
    root, bbox = region
    layers = []
    for name, stac in (("api", loaded), ("embedded", str(root))):
        config = region_config(region, tmp_path / name, stac=stac)
        summary = run_region(config, log=lambda _: None)
        assert summary["tiles"]["ok"] == summary["tiles"]["planned"]
        layer = read_partitioned(tmp_path / name / "fields")
        layers.append(sorted(zip(layer["id"], shapely.to_wkb(layer.geometry.to_numpy()), strict=True)))
    assert layers[0] and layers[0] == layers[1]


def test_ingest_cogs_into_a_geoparquet_catalog(
    region: tuple[Path, list[float]], tmp_path: Path, monkeypatch, capsys
) -> None:
    root, _ = region
    cogs = sorted((root / "scenes").glob("*.tif"))[:2]
    catalog = tmp_path / "cat.parquet"
    status, out, err = run_magseg(
        monkeypatch,
        capsys,
        "stac",
        "ingest",
        *map(str, cogs),
        "--catalog",
        str(catalog),
        "--collection",
        "mine",
        "--datetime",
        "2024-03-01",
    )
    assert status == 0, err
    found = open_catalog(catalog).search()
    assert sorted(ids(found)) == sorted(c.stem for c in cogs)
    item = found[0]
    assert item.collection_id == "mine" and (
        item.properties.get("proj:epsg") or item.properties.get("proj:code")
    )
    assert item.datetime is not None and item.datetime.date().isoformat() == "2024-03-01"
    assert Path(item.assets["image"].href).is_file()
    # ingesting again replaces, never duplicates; bad paths are one-line errors
    status, _, _ = run_magseg(
        monkeypatch, capsys, "stac", "ingest", str(cogs[0]), "--catalog", str(catalog), "--collection", "mine"
    )
    assert status == 0 and len(open_catalog(catalog).search()) == 2
    status, _, err = run_magseg(
        monkeypatch,
        capsys,
        "stac",
        "ingest",
        str(tmp_path / "nope.txt"),
        "--catalog",
        str(catalog),
        "--collection",
        "mine",
    )
    assert status == 2 and err.startswith("error: ") and "not a COG" in err
