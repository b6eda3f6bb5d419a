"""write_dataset: folder layout, COGs, CRS, mosaic adjacency, STAC JSON + stac-geoparquet, reproducibility."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pystac
import pytest
import rasterio
from pystac.validation import validate_dict
from rio_cogeo.cogeo import cog_validate
from stac_geoparquet.arrow import stac_table_to_items

from magseg.errors import InputError
from magseg.labels import read_label_raster
from magseg.synth import write_dataset
from tests.synth.conftest import SEED

IDS = [f"synth-{SEED}-{i:03d}" for i in range(4)]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_layout(dataset: Path) -> None:
    for sid in IDS:
        for rel in (
            f"scenes/{sid}.tif",
            f"labels/{sid}.tif",
            f"fields/{sid}.parquet",
            f"stac/items/{sid}.json",
        ):
            assert (dataset / rel).is_file(), rel
    for rel in ("stac/collection.json", "stac/items.parquet", "synth.json"):
        assert (dataset / rel).is_file(), rel
    params = json.loads((dataset / "synth.json").read_text())
    assert (params["seed"], params["size"], params["gsd"], params["scenes"]) == (SEED, 256, 0.5, 4)
    assert params["location"]["name"] == "karnal" and params["version"]
    assert [s["id"] for s in params["scene_stats"]] == IDS
    assert not list(dataset.parent.glob(".*tmp"))  # no temporary folder left behind


def test_scenes_are_valid_cogs_in_utm(dataset: Path) -> None:
    for sid in IDS:
        path = dataset / "scenes" / f"{sid}.tif"
        valid, errors, _ = cog_validate(str(path), quiet=True)
        assert valid and not errors
        with rasterio.open(path) as src:
            assert (src.count, src.dtypes[0], src.width) == (3, "uint8", 256)
            assert src.overviews(1)  # internal overviews
            assert src.crs.to_epsg() == 32643  # Karnal lies in UTM zone 43N
            assert src.res == (0.5, 0.5)
        labels = read_label_raster(dataset / "labels" / f"{sid}.tif")
        assert labels.crs == src.crs and labels.transform == src.transform
        fields = gpd.read_parquet(dataset / "fields" / f"{sid}.parquet")
        assert {"id", "class", "instance", "scene", "geometry"} <= set(fields.columns)
        assert fields.crs.to_epsg() == 32643 and (fields["scene"] == sid).all()
        assert set(fields["instance"]) == set(np.unique(labels.instance)) - {0}


def test_scenes_tile_a_contiguous_mosaic(dataset: Path) -> None:
    bounds = []
    for sid in IDS:
        with rasterio.open(dataset / "scenes" / f"{sid}.tif") as src:
            bounds.append(src.bounds)
    # 4 scenes: a 2 x 2 block of 128 m tiles, edge to edge, no overlap
    xs = sorted({b.left for b in bounds}) + [max(b.right for b in bounds)]
    ys = sorted({b.bottom for b in bounds}) + [max(b.top for b in bounds)]
    assert np.allclose(np.diff(xs), 128) and np.allclose(np.diff(ys), 128)
    assert len({(b.left, b.top) for b in bounds}) == 4


def test_stac_items(dataset: Path) -> None:
    coll = json.loads((dataset / "stac" / "collection.json").read_text())
    core = dict(coll, stac_extensions=[])  # extension schemas need the network; core schemas ship with pystac
    validate_dict(core)
    assert {link["href"] for link in coll["links"] if link["rel"] == "item"} == {
        str(dataset / "stac" / "items" / f"{sid}.json") for sid in IDS
    }
    for sid in IDS:
        d = json.loads((dataset / "stac" / "items" / f"{sid}.json").read_text())
        validate_dict(dict(d, stac_extensions=[]))
        p = d["properties"]
        assert p["proj:code"] == "EPSG:32643" and p["proj:epsg"] == 32643
        assert p["proj:shape"] == [256, 256] and len(p["proj:transform"]) == 6
        assert 0 <= p["eo:cloud_cover"] <= 100 and p["gsd"] == 0.5 and p["datetime"]
        assert any("projection" in e for e in d["stac_extensions"]) and any(
            "/eo/" in e for e in d["stac_extensions"]
        )
        assert d["assets"]["image"]["roles"] == ["data"] and "cloud-optimized" in d["assets"]["image"]["type"]
        assert "labels" in d["assets"]["labels"]["roles"]
        for asset in d["assets"].values():
            assert Path(asset["href"]).is_absolute() and Path(asset["href"]).is_file()
        item = pystac.Item.from_dict(d)
        with rasterio.open(item.assets["image"].href) as src:
            assert list(src.transform)[:6] == p["proj:transform"]
        lon, lat = np.array(d["geometry"]["coordinates"][0]).mean(axis=0)
        assert abs(lon - 76.98) < 0.01 and abs(lat - 29.69) < 0.01


def test_stac_geoparquet_round_trips(dataset: Path) -> None:
    items = {}
    for sid in IDS:
        d = json.loads((dataset / "stac" / "items" / f"{sid}.json").read_text())
        items[d["id"]] = d
    back = list(stac_table_to_items(pq.read_table(dataset / "stac" / "items.parquet")))
    assert sorted(b["id"] for b in back) == sorted(items)
    for b in back:
        assert np.allclose(b["bbox"], items[b["id"]]["bbox"])
        assert b["properties"]["proj:code"] == "EPSG:32643"
        assert b["assets"]["image"]["href"] == items[b["id"]]["assets"]["image"]["href"]


def test_same_seed_byte_identical_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = write_dataset(tmp_path / "again", scenes=4, size=256, gsd=0.5, seed=SEED, cloud_fraction=0.5)
    for sid in IDS:
        for rel in (f"scenes/{sid}.tif", f"labels/{sid}.tif"):
            assert digest(dataset / rel) == digest(again / rel), rel
        a = gpd.read_parquet(dataset / "fields" / f"{sid}.parquet")
        b = gpd.read_parquet(again / "fields" / f"{sid}.parquet")
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
        assert a.geometry.geom_equals_exact(b.geometry, 0).all()
    other = write_dataset(tmp_path / "other", scenes=1, size=256, gsd=0.5, seed=SEED + 1)
    assert digest(other / f"scenes/synth-{SEED + 1}-000.tif") != digest(dataset / f"scenes/{IDS[0]}.tif")


def test_refuses_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="overwrite"):
        write_dataset(out, scenes=1, size=64, gsd=0.5, seed=0)
    with pytest.raises(InputError, match="synth.json"):  # --overwrite never deletes a folder that is not ours
        write_dataset(out, scenes=1, size=64, gsd=0.5, seed=0, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    first = write_dataset(tmp_path / "ds", scenes=1, size=64, gsd=0.5, seed=0)
    write_dataset(first, scenes=2, size=64, gsd=0.5, seed=1, overwrite=True)
    assert sorted(p.name for p in (first / "scenes").iterdir()) == ["synth-1-000.tif", "synth-1-001.tif"]


@pytest.mark.parametrize(
    ("location", "epsg"), [("guntur", 32644), ("nalanda", 32645), ("-47.9,-15.8", 32723)]
)
def test_location_sets_utm_zone(tmp_path: Path, location: str, epsg: int) -> None:
    out = write_dataset(tmp_path / "loc", scenes=1, size=64, gsd=1.0, seed=0, location=location)
    with rasterio.open(out / "scenes" / "synth-0-000.tif") as src:
        assert src.crs.to_epsg() == epsg and src.res == (1.0, 1.0)
