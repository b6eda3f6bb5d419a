"""Tile requests, serve configs and the RayService manifest, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from magseg.errors import InputError
from magseg.serve.config import ServeConfig, load_serve_config
from magseg.serve.xyz import TileRequestError, check_tile, tile_lonlat_bounds

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("zxy", "status"),
    [((18, -1, 0), 400), ((18, 0, 2**18), 400), ((31, 0, 0), 400), ((12, 0, 0), 404), ((23, 0, 0), 404)],
)
def test_refused_tiles(zxy: tuple[int, int, int], status: int) -> None:
    with pytest.raises(TileRequestError) as info:
        check_tile(*zxy, min_zoom=17, max_zoom=22)
    assert info.value.status == status and "\n" not in info.value.message


def test_tile_bounds() -> None:
    tile = check_tile(18, 187127, 108414, 17, 22)
    w, s, e, n = tile_lonlat_bounds(tile)
    assert w < 76.98 < e and s < 29.69 < n and (e - w) == pytest.approx(360 / 2**18)


@pytest.mark.parametrize(
    "path", sorted((REPO / "jobs" / "configs").glob("serve_*.yaml")), ids=lambda p: p.stem
)
def test_shipped_serve_configs_load(path: Path) -> None:
    serve_config = yaml.safe_load(path.read_text())
    (application,) = serve_config["applications"]
    assert application["import_path"] == "magseg.serve.app:build_app"
    config = load_serve_config(None, **application["args"])
    assert config.tile_px % 64 == 0 and config.min_zoom <= config.max_zoom
    assert (config.engine, config.model_gpus > 0) == (("vllm", True) if "gpu" in path.stem else ("hf", False))


def test_rayservice_manifest_fits_its_serve_config() -> None:
    manifest = yaml.safe_load((REPO / "cluster" / "kuberay" / "rayservice-tiles.yaml").read_text())
    assert manifest["kind"] == "RayService"
    serve_config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    config = load_serve_config(None, **serve_config["applications"][0]["args"])
    gpu_group = manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    gpus = int(gpu_group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
    assert config.autoscaling is not None
    assert gpu_group["minReplicas"] * gpus >= config.autoscaling["min_replicas"] * config.model_gpus
    assert gpu_group["maxReplicas"] * gpus >= config.autoscaling["max_replicas"] * config.model_gpus


def test_bad_configs() -> None:
    with pytest.raises(InputError, match="needs a catalog"):
        load_serve_config(None)
    with pytest.raises(InputError, match="unknown serve config keys port_number"):
        load_serve_config(None, stac="x", port_number=1)
    with pytest.raises(InputError, match="min_zoom"):
        ServeConfig(stac="x", min_zoom=20, max_zoom=18)
    with pytest.raises(InputError, match="bfloat16"):
        ServeConfig(stac="x", dtype="fp8")
    with pytest.raises(InputError, match="rereads 5"):
        ServeConfig(stac="x", rereads=5)
