"""The tile app on a real Ray Serve over loopback HTTP: routes, keys, errors, agreement with the region job."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import mapbox_vector_tile
import morecantile
import numpy as np
import pytest
import shapely
from PIL import Image
from rasterio.features import rasterize
from rasterio.transform import from_bounds
from rasterio.warp import transform_bounds
from shapely.geometry import shape

from magseg.classes import CLASS_COLOURS
from magseg.mapping import read_partitioned
from magseg.serve.render import class_mask
from magseg.serve.xyz import tile_bounds, tile_lonlat_bounds

KEY_ENV, KEY = "MAGSEG_TEST_API_KEY", "test-key-0123"
TMS = morecantile.tms.get("WebMercatorQuad")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(region: tuple[Path, list[float]], region_run: Path) -> Iterator[str]:
    """The app over the region's catalog with the region job's tiling and boundary scale, key required."""
    import ray
    from ray import serve

    from magseg.serve.app import build_app

    root, _ = region
    settings = json.loads((region_run / "manifest.json").read_text())["settings"]
    if not ray.is_initialized():
        ray.init(address="local", include_dashboard=False, configure_logging=False)
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    os.environ[KEY_ENV] = KEY
    try:
        args = {"stac": str(root), "tile_px": settings["tile_px"], "margin_px": settings["margin_px"]}
        args |= {"refine": settings["refine"], "api_key_env": KEY_ENV, "layer": str(region_run / "fields")}
        serve.run(build_app(args), name="tiles", route_prefix="/")
    finally:
        del os.environ[KEY_ENV]
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"X-API-Key": KEY}, timeout=600) as c:
        yield c


def centre_tile(region: tuple[Path, list[float]], zoom: int = 18) -> morecantile.Tile:
    w, s, e, n = region[1]
    return TMS.tile((w + e) / 2, (s + n) / 2, zoom)


def decode_classes(png: bytes) -> np.ndarray:
    """Class ids of a served PNG: the nearest class colour (RGB) where a pixel is not transparent (its
    opacity carries the polygon's confidence)."""
    rgba = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).astype(np.int16)
    table = np.array(CLASS_COLOURS, dtype=np.int16)[1:, :3]
    distance = np.abs(rgba[:, :, None, :3] - table[None, None]).sum(axis=-1)
    return np.where(rgba[..., 3] > 0, distance.argmin(axis=-1) + 1, 0).astype(np.uint8)


def test_open_routes_and_docs(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"
    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/tiles/{z}/{x}/{y}.png", "/tiles/{z}/{x}/{y}.geojson", "/tilejson.json", "/map"} <= set(
        spec["paths"]
    )
    assert httpx.get(f"{server}/docs").status_code == 200


def test_keys_and_bad_requests(server: str, client: httpx.Client, region: tuple[Path, list[float]]) -> None:
    t = centre_tile(region)
    path = f"/tiles/{t.z}/{t.x}/{t.y}.png"
    assert httpx.get(server + path).status_code == 401
    assert httpx.get(server + path, headers={"X-API-Key": "wrong"}).status_code == 403
    for bad, status in (
        (f"/tiles/18/{2**18}/5.png", 400),
        ("/tiles/12/1/1.png", 404),
        ("/tiles/x/1/1.png", 422),
    ):
        answer = client.get(bad)
        assert answer.status_code == status, (bad, answer.text)
    assert "native scale" in client.get("/tiles/12/1/1.png").json()["detail"]
    meta = client.get("/tilejson.json").json()
    assert meta["tilejson"] == "3.0.0" and meta["minzoom"] == 17 and meta["tiles"][0].endswith("{y}.png")
    # a public endpoint names no server path (the catalog, the model's or the layer's folder)
    assert "/" not in meta["description"].replace("/layer", "") and "/" not in meta["layer"]["description"]


def test_png_tile_lines_up_with_the_region_job(
    client: httpx.Client, region: tuple[Path, list[float]], region_run: Path
) -> None:
    t = centre_tile(region)
    answer = client.get(f"/tiles/{t.z}/{t.x}/{t.y}.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    served = decode_classes(answer.content)
    mapped = class_mask(read_partitioned(region_run / "fields"), t)
    # compare where the region job mapped: inside its bbox (its tiles cover it completely)
    # a lon/lat box is an axis-aligned box in Web Mercator too
    inside = rasterize(
        [shapely.box(*transform_bounds(4326, 3857, *region[1]))],
        out_shape=served.shape,
        transform=from_bounds(*tile_bounds(t), *served.shape[::-1]),
    ).astype(bool)
    assert inside.mean() > 0.2
    assert (mapped[inside] > 0).mean() > 0.3  # there are fields to agree on
    agreement = (served[inside] == mapped[inside]).mean()
    assert agreement > 0.95, agreement
    alpha = np.asarray(Image.open(io.BytesIO(answer.content)).convert("RGBA"))[..., 3]
    assert len(np.unique(alpha[served > 0])) > 1  # polygons drawn with their confidence as opacity
    # a repeated tile comes from the cache: no new grid tile is computed
    cached = client.get("/healthz").json()["grid_tiles_cached"]
    assert client.get(f"/tiles/{t.z}/{t.x}/{t.y}.png").content == answer.content
    assert client.get("/healthz").json()["grid_tiles_cached"] == cached


def test_geojson_is_valid_clipped_and_ids_are_stable_across_neighbours(
    client: httpx.Client, region: tuple[Path, list[float]], region_run: Path
) -> None:
    t = centre_tile(region)
    right = morecantile.Tile(t.x + 1, t.y, t.z)
    a, b = (client.get(f"/tiles/{u.z}/{u.x}/{u.y}.geojson").json() for u in (t, right))
    assert a["type"] == "FeatureCollection" and a["features"]
    for collection, tile in ((a, t), (b, right)):
        box = shapely.box(*tile_lonlat_bounds(tile)).buffer(1e-9)
        for feature in collection["features"]:
            geom = shape(feature["geometry"])
            assert geom.is_valid and not geom.is_empty and box.contains(geom)
            assert feature["properties"]["class"] and feature["properties"]["id"]
            assert 0.0 <= feature["properties"]["magseg:confidence"] <= 1.0
    # a field across the shared edge has one id on both sides, and its two halves meet on the edge
    ids_a = {f["properties"]["id"]: shape(f["geometry"]) for f in a["features"]}
    ids_b = {f["properties"]["id"]: shape(f["geometry"]) for f in b["features"]}
    shared = set(ids_a) & set(ids_b)
    assert shared, "no field crosses the edge between the two tiles"
    for fid in shared:
        assert ids_a[fid].buffer(1e-7).intersects(ids_b[fid])
    # the served ids are the region job's ids
    region_ids = set(read_partitioned(region_run / "fields")["id"])
    inside = [f for f in ids_a if shapely.box(*region[1]).contains(ids_a[f])]
    assert inside and np.mean([f in region_ids for f in inside]) > 0.9
    # ... with the region job's confidence (same pieces, same calibrator)
    mapped = read_partitioned(region_run / "fields").set_index("id")["magseg:confidence"]
    served = {f["properties"]["id"]: f["properties"]["magseg:confidence"] for f in a["features"]}
    both = [f for f in inside if f in mapped.index]
    assert np.median([abs(served[f] - mapped[f]) for f in both]) < 0.02


def test_finished_layer_below_min_zoom(
    server: str, client: httpx.Client, region: tuple[Path, list[float]], region_run: Path
) -> None:
    """The region job's layer served by the same app at z10..z16, where /tiles answers 404."""
    for z in (10, 14, 16):
        t = centre_tile(region, z)
        assert client.get(f"/tiles/{t.z}/{t.x}/{t.y}.png").status_code == 404
        png = client.get(f"/layer/{t.z}/{t.x}/{t.y}.png")
        assert png.status_code == 200 and decode_classes(png.content).any(), z
    t = centre_tile(region, 16)
    assert httpx.get(f"{server}/layer/{t.z}/{t.x}/{t.y}.mvt").status_code == 401
    decoded = mapbox_vector_tile.decode(client.get(f"/layer/{t.z}/{t.x}/{t.y}.mvt").content)
    served = {f["properties"]["id"] for f in decoded["fields"]["features"]}
    assert served and served <= set(read_partitioned(region_run / "fields")["id"])
    meta = client.get("/tilejson.json").json()
    assert meta["layer"]["raster"].endswith("/layer/{z}/{x}/{y}.png") and meta["layer"]["minzoom"] == 0
    assert "/layer/{z}/{x}/{y}.png" in client.get("/map").text


def test_map_page_screenshot(server: str, client: httpx.Client, tmp_path: Path) -> None:
    html = client.get("/map").text
    assert "L.tileLayer" in html and "/tiles/{z}/{x}/{y}.png" in html
    shot = tmp_path / "map.png"
    cmd = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    cmd += ["--window-size=768,512", "--virtual-time-budget=120000", f"--screenshot={shot}"]
    subprocess.run([*cmd, f"{server}/map?api_key={KEY}"], check=True, timeout=600, capture_output=True)
    rgb = np.asarray(Image.open(shot).convert("RGB")).astype(np.int16)
    r, b = rgb[..., 0], rgb[..., 2]
    drawn_fields = ((r - b) > 90) & (r > 150)  # the field colour over imagery
    imagery = rgb.std(axis=(0, 1)).mean()
    assert drawn_fields.mean() > 0.05 and imagery > 15, (drawn_fields.mean(), imagery)
    if os.environ.get("MAGSEG_DOCS_DIR"):  # refresh the README's picture
        shutil.copy(shot, Path(os.environ["MAGSEG_DOCS_DIR"]) / "serve_map.png")
