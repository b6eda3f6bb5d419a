"""The region job on a local Ray with the bundled model: layer, export, pictures, run.json, resuming, SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import geopandas as gpd
import psutil
import shapely

from magseg.bundled import BUNDLED_MODEL
from magseg.inference.meta import read_rereads
from magseg.mapping import read_partitioned
from magseg.mapping.pipeline import run_region
from tests.conftest import region_config


def layer_rows(out: Path) -> list[tuple[str, str, bytes]]:
    layer = read_partitioned(out / "fields")
    return sorted(zip(layer["id"], layer["class"], shapely.to_wkb(layer.geometry.to_numpy()), strict=True))


def test_run_writes_layer_export_pictures_and_summary(
    region_run: Path, region: tuple[Path, list[float]]
) -> None:
    summary = json.loads((region_run / "run.json").read_text())
    assert summary["tiles"]["finished"] == summary["tiles"]["planned"] == summary["tiles"]["ok"]
    assert summary["scenes"] and all(s.startswith("synth-21-") for s in summary["scenes"])
    assert summary["patches"] == summary["tiles"]["ok"] * (256 // 64) ** 2  # (128 + 2 * 64) px windows
    assert 0 <= summary["decode_valid_rate"] <= 1 and summary["model_patches_per_s"] > 0
    # the bundle's card asks for seam re-reads: up to its share of each tile's 16 patches (0.25: 4 a tile)
    per_tile = int(read_rereads(BUNDLED_MODEL) * (256 // 64) ** 2)
    assert 0 < summary["rereads"] <= per_tile * summary["tiles"]["ok"]
    assert summary["versions"]["ray"] and summary["config"]["tile_px"] == 128
    layer = read_partitioned(region_run / "fields")
    assert len(layer) == summary["polygons"] > 0
    assert layer["id"].is_unique
    assert set(layer["determination:method"]) == {"auto-imagery"}
    assert layer["determination:datetime"].notna().all()
    # every polygon carries the bundled calibrator's confidence, and they differ (a signal, not a constant)
    conf = layer["magseg:confidence"].to_numpy()
    assert ((conf >= 0) & (conf <= 1)).all() and conf.std() > 0.01
    # polygons lie in the mapped tiles, and none overlaps another (seams joined, nothing duplicated)
    utm = layer.to_crs(layer.estimate_utm_crs())
    geoms = utm.geometry.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="overlaps")
    assert shapely.area(shapely.intersection(geoms[left], geoms[right])).sum() < 1.0
    exported = gpd.read_file(region_run.parent / "fields.gpkg")
    assert sorted(exported["id"]) == sorted(layer["id"])
    assert exported["magseg:confidence"].notna().all()
    assert (region_run / "quicklook.png").stat().st_size > 1000
    html = (region_run / "map.html").read_text()
    assert "L.map(" in html and "L.geoJSON" in html and layer["id"].iloc[0] in html


def test_rerun_skips_finished_tiles_and_keeps_the_layer(
    region_run: Path, region: tuple[Path, list[float]]
) -> None:
    before = layer_rows(region_run)
    summary = run_region(region_config(region, region_run), log=lambda _: None)
    assert summary["timings"]["tiles_run_now"] == 0
    assert layer_rows(region_run) == before


def test_sigkilled_run_resumes_to_the_same_polygons(
    region_run: Path, region: tuple[Path, list[float]], tmp_path: Path
) -> None:
    root, bbox = region
    out = tmp_path / "killed"
    argv = [
        str(Path(sys.executable).parent / "magseg"),
        "map",
        "--bbox",
        *map(str, bbox),
        "--stac",
        str(root),
    ]
    argv += ["--out", str(out), "--model", str(BUNDLED_MODEL), "--no-progress", "--batch-size", "32"]
    cfg = tmp_path / "tiling.yaml"
    cfg.write_text("tile_px: 128\nmargin_px: 64\n")
    argv += ["--config", str(cfg)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        argv, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list((out / "tiles").glob("[!.]*.json"))) < 1:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        time.sleep(0.05)
    # the whole run dies at once, as on a lost machine: the driver, Ray's GCS, raylet and every worker (a
    # worker left running would write a tile record after it has been counted)
    driver = psutil.Process(proc.pid)
    tree = [driver, *driver.children(recursive=True)]
    os.killpg(proc.pid, signal.SIGKILL)
    for member in tree:
        with contextlib.suppress(psutil.Error):
            member.kill()
    proc.wait()
    psutil.wait_procs(tree, timeout=30)
    # count once the tile records settle (a record being renamed into place as the kill landed)
    done, settled = -1, time.monotonic() + 30
    while time.monotonic() < settled:
        now = len(list((out / "tiles").glob("[!.]*.json")))
        if now == done:
            break
        done = now
        time.sleep(2.0)
    planned = json.loads((region_run / "run.json").read_text())["tiles"]["planned"]
    assert 1 <= done < planned, "the kill should land mid-run"
    assert not (out / "run.json").exists() and not (out / "fields").exists()
    rerun = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout)
    assert summary["timings"]["tiles_run_now"] == planned - done
    assert layer_rows(out) == layer_rows(region_run)


def _kill_ray_worker(title: str) -> int:
    """SIGKILL the Ray worker processes whose title (``ray::<task or actor>``) holds ``title``; how many."""
    killed = 0
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if cmd.startswith("ray::") and title in cmd:
            os.kill(proc.info["pid"], signal.SIGKILL)
            killed += 1
    return killed


def test_killed_model_actor_and_refine_task_are_retried_to_the_same_layer(
    region_run: Path, region: tuple[Path, list[float]], tmp_path: Path
) -> None:
    """The model actor is SIGKILLed while it generates, a refine task while it runs: Ray restarts and retries
    them, and the layer is the uninterrupted run's (``region_run``, same settings)."""
    planned = json.loads((region_run / "run.json").read_text())["tiles"]["planned"]
    out = tmp_path / "drill"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            run_region(region_config(region, out), log=lambda _: None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    # a Ray worker's title says what it runs: "...(TileModel)).submit" while the actor generates
    kills = {"(TileModel)).submit": 0, "Map(finish_tile)": 0}
    deadline = time.monotonic() + 300
    while thread.is_alive() and time.monotonic() < deadline and not all(kills.values()):
        for title, n in kills.items():
            kills[title] = n or _kill_ray_worker(title)
        time.sleep(0.02)
    thread.join(timeout=600)
    assert not errors, errors
    assert kills["(TileModel)).submit"] >= 1, "the model actor should have been killed while generating"
    summary = json.loads((out / "run.json").read_text())
    assert summary["tiles"]["finished"] == planned
    assert layer_rows(out) == layer_rows(region_run)
