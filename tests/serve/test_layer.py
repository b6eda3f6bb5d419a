"""A finished layer served at any zoom: /layer PNG and MVT tiles through the FastAPI app, caches, errors."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import morecantile
import numpy as np
import pytest
import shapely
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from pyproj import Transformer

from magseg.classes import CLASS_COLOURS, FIELD, TREE
from magseg.errors import InputError
from magseg.mapping.layer import write_partitioned
from magseg.serve.config import ServeConfig
from magseg.serve.layer import EXTENT, SIZE
from magseg.serve.routes import LayerRoutes
from magseg.serve.service import LayerService

TMS = morecantile.tms.get("WebMercatorQuad")
UTM = 32643  # zone 43N
TO_UTM = Transformer.from_crs(4326, UTM, always_xy=True)
HOME = (76.98, 29.69)  # lon, lat of the first cluster; the second lies ~55 km east (another partition)
AWAY = (77.55, 29.69)


def _cluster(lon: float, lat: float, prefix: str, fields: int = 5) -> gpd.GeoDataFrame:
    """``fields`` 120 x 80 m fields in a row (10 m apart), then one tree block south of them, in UTM."""
    x0, y0 = TO_UTM.transform(lon, lat)
    geoms = [shapely.box(x0 + i * 130, y0, x0 + i * 130 + 120, y0 + 80) for i in range(fields)]
    geoms.append(shapely.box(x0, y0 - 200, x0 + 200, y0 - 100))
    classes = ["field"] * fields + ["tree"]
    ids = [f"{prefix}-{i}" for i in range(fields)] + [f"{prefix}-tree"]
    areas = [g.area for g in geoms]
    frame = {"id": ids, "class": classes, "instance": list(range(1, len(geoms) + 1)), "metrics:area": areas}
    frame["metrics:perimeter"] = [g.length for g in geoms]
    return gpd.GeoDataFrame(frame, geometry=geoms, crs=f"EPSG:{UTM}")


def write_layer(root: Path) -> list[Path]:
    both = gpd.GeoDataFrame(
        gpd.pd.concat([_cluster(*HOME, "a"), _cluster(*AWAY, "b")], ignore_index=True), crs=f"EPSG:{UTM}"
    )
    return write_partitioned(both, root, determination_datetime="2024-05-01")


def centre(index: int, fields: int = 5) -> tuple[float, float]:
    """lon/lat of the centre of the first cluster's polygon ``index`` (``fields``: the tree block)."""
    geom = _cluster(*HOME, "x", fields).geometry.iloc[index]
    point = gpd.GeoSeries([geom.centroid], crs=f"EPSG:{UTM}").to_crs(4326).iloc[0]
    return point.x, point.y


@pytest.fixture()
def layer_root(tmp_path: Path) -> Path:
    root = tmp_path / "fields"
    assert len({p.parent for p in write_layer(root)}) == 2  # two partitions
    return root


def make_client(service: LayerService | None, key: str | None = None) -> TestClient:
    app = FastAPI()
    LayerRoutes(layer=lambda: service, api_key=lambda: key).register(app)
    return TestClient(app)


@pytest.fixture()
def service(layer_root: Path) -> LayerService:
    return LayerService(layer_root, refresh_s=0.0)


@pytest.fixture()
def client(service: LayerService) -> Iterator[TestClient]:
    with make_client(service) as c:
        yield c


def tile_at(lonlat: tuple[float, float], z: int) -> morecantile.Tile:
    return TMS.tile(*lonlat, z)


def pixel(lonlat: tuple[float, float], tile: morecantile.Tile, size: int = SIZE) -> tuple[int, int]:
    """(row, col) of a lon/lat point in the tile's raster."""
    b = TMS.xy_bounds(tile)
    x, y = TMS.xy(*lonlat)
    return int((b.top - y) / (b.top - b.bottom) * size), int((x - b.left) / (b.right - b.left) * size)


def rgba(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGBA"))


def features(body: bytes) -> list[dict]:
    decoded = mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})
    return list(decoded["fields"]["features"]) if decoded else []


@pytest.mark.parametrize("z", [14, 16])
def test_mvt_holds_each_field_with_id_and_class(client: TestClient, z: int) -> None:
    t = tile_at(centre(0), z)
    answer = client.get(f"/layer/{t.z}/{t.x}/{t.y}.mvt")
    assert (
        answer.status_code == 200 and answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    )
    found = {f["properties"]["id"]: f for f in features(answer.content)}
    assert {"a-0", "a-tree"} <= set(found) and not any(i.startswith("b-") for i in found)
    assert found["a-0"]["properties"]["class"] == "field" and found["a-tree"]["properties"]["class"] == "tree"
    for feature in found.values():
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.geom_type in ("Polygon", "MultiPolygon") and geom.is_valid
        assert shapely.box(-64, -64, EXTENT + 64, EXTENT + 64).contains(geom)
    # the field sits where it is: its centre's tile coordinates fall inside its polygon
    row, col = pixel(centre(0), t, EXTENT)
    assert shapely.geometry.shape(found["a-0"]["geometry"]).buffer(2).contains(shapely.Point(col, row))


def test_low_zoom_mvt_is_class_coverage(client: TestClient) -> None:
    t = tile_at(centre(0), 10)  # below layer_detail_zoom (12): coverage, no ids
    found = features(client.get(f"/layer/{t.z}/{t.x}/{t.y}.mvt").content)
    assert found and {f["properties"]["class"] for f in found} <= {"field", "tree"}
    assert "field" in {f["properties"]["class"] for f in found}
    assert all("id" not in f["properties"] for f in found)


@pytest.mark.parametrize("z", [10, 14, 16])
def test_png_draws_the_polygons(client: TestClient, z: int) -> None:
    t = tile_at(centre(0), z)
    answer = client.get(f"/layer/{t.z}/{t.x}/{t.y}.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    img = rgba(answer.content)
    assert img.shape == (SIZE, SIZE, 4)
    r, c = pixel(centre(0), t)
    assert tuple(img[r, c]) in (CLASS_COLOURS[FIELD], CLASS_COLOURS[TREE])  # z10: a pixel for a field or two
    if z >= 14:
        assert (
            tuple(img[r, c]) == CLASS_COLOURS[FIELD]
        )  # fine enough to tell the tree block from the fields, and the gaps
        r, c = pixel(centre(5), t)
        assert tuple(img[r, c]) == CLASS_COLOURS[TREE]
        drawn = (img[..., 3] > 0).mean()
        assert 0 < drawn < 0.9


def test_tiles_without_fields_are_empty_and_outside_is_404(client: TestClient) -> None:
    between = ((HOME[0] + AWAY[0]) / 2, HOME[1])  # inside the layer's bounds, no part reaches it
    t = tile_at(between, 16)
    png = client.get(f"/layer/{t.z}/{t.x}/{t.y}.png")
    assert png.status_code == 200 and not rgba(png.content)[..., 3].any()
    mvt = client.get(f"/layer/{t.z}/{t.x}/{t.y}.mvt")
    assert mvt.status_code == 200 and mvt.content == b"" and features(mvt.content) == []
    x0, y0 = TO_UTM.transform(*HOME)  # a part reaches it, no polygon: south of the row, east of the trees
    near = tile_at(Transformer.from_crs(UTM, 4326, always_xy=True).transform(x0 + 450, y0 - 100), 18)
    for ext in ("png", "mvt"):
        answer = client.get(f"/layer/18/{near.x}/{near.y}.{ext}")
        assert answer.status_code == 200
        assert not rgba(answer.content)[..., 3].any() if ext == "png" else features(answer.content) == []
    far = tile_at((0.0, 0.0), 16)
    answer = client.get(f"/layer/16/{far.x}/{far.y}.mvt")
    assert answer.status_code == 404 and "outside the layer's bounds" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/layer/16/{2**16}/0.mvt", 400),
        ("/layer/3/0/8.png", 400),
        ("/layer/23/0/0.png", 404),  # above max_zoom
        ("/layer/31/0/0.mvt", 422),
        ("/layer/x/1/1.mvt", 422),
        ("/layer/1/-1/0.png", 422),
    ],
)
def test_bad_tiles(client: TestClient, path: str, status: int) -> None:
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_no_layer_and_keys(service: LayerService) -> None:
    with make_client(None) as c:
        answer = c.get("/layer/10/0/0.png")
        assert answer.status_code == 404 and "--layer" in answer.json()["detail"]
    t = tile_at(centre(0), 14)
    with make_client(service, key="k") as c:
        assert c.get(f"/layer/{t.z}/{t.x}/{t.y}.mvt").status_code == 401
        assert c.get(f"/layer/{t.z}/{t.x}/{t.y}.mvt", headers={"X-API-Key": "k"}).status_code == 200


def test_tilejson(client: TestClient, service: LayerService) -> None:
    meta = client.get("/layer/tilejson.json").json()
    assert meta["tilejson"] == "3.0.0" and meta["tiles"][0].endswith("/layer/{z}/{x}/{y}.mvt")
    assert meta["vector_layers"][0]["id"] == "fields" and set(meta["vector_layers"][0]["fields"]) == {
        "id",
        "class",
        "magseg:confidence",
    }
    assert str(service.layer.root) not in json.dumps(meta) and "/" not in meta["description"]
    w, s, e, n = meta["bounds"]
    assert w < HOME[0] < AWAY[0] < e and s < HOME[1] < n and meta["minzoom"] == 0


def test_tiles_are_cached_until_a_part_changes(
    service: LayerService, client: TestClient, layer_root: Path
) -> None:
    grown = _cluster(*HOME, "a", fields=6)  # a rerun maps a sixth field east of the row
    t = tile_at(centre(5, fields=6), 15)
    path = f"/layer/{t.z}/{t.x}/{t.y}.mvt"
    first = client.get(path).content
    assert "a-5" not in {f["properties"]["id"] for f in features(first)}
    read, cached = service.layer.parts_read, service.responses_cached
    assert client.get(path).content == first  # from the cache: no part read, nothing rendered
    assert service.layer.parts_read == read and service.responses_cached == cached
    time.sleep(0.01)
    write_partitioned(grown, layer_root)  # replaces the partition's part (shared ids)
    found = {f["properties"]["id"]: f["properties"]["class"] for f in features(client.get(path).content)}
    assert found.get("a-5") == "field" and service.layer.parts_read > read


def test_overview_keeps_small_fields_visible(service: LayerService) -> None:
    """Below the detail zoom a field smaller than a pixel still colours one (its representative point)."""
    t = tile_at(centre(0), 8)  # pixels of ~530 m: every polygon is sub-pixel
    raster = service.layer.class_raster(t)
    assert raster is not None
    r, c = pixel(centre(0), t)
    assert raster[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].max() > 0
    assert 1 <= (raster > 0).sum() <= 12  # two clusters of six polygons, a pixel or so each
    assert service.layer.class_raster(t) is raster  # cached


def test_layer_config() -> None:
    config = ServeConfig(stac="x", layer="/some/fields")
    assert config.layer_detail_zoom == 12 and LayerService.from_config(ServeConfig(stac="x")) is None
    with pytest.raises(InputError, match="layer_detail_zoom"):
        ServeConfig(stac="x", layer_detail_zoom=30)
    with pytest.raises(InputError, match="no such layer folder"):
        LayerService.from_config(config)


def test_a_layer_with_confidence_draws_unsure_fields_faint(tmp_path: Path) -> None:
    from magseg.vector import CONFIDENCE

    frame = _cluster(*HOME, "a")
    frame[CONFIDENCE] = np.array([0.0, 1.0, 0.5, 0.5, 0.5, 0.9], np.float32)  # a-0 unsure, a-1 sure
    write_partitioned(frame, tmp_path / "fields", determination_datetime="2024-05-01")
    with make_client(LayerService(tmp_path / "fields", refresh_s=0.0)) as c:
        for z in (12, 16):  # polygons drawn one by one (z16) and from the overview (below detail_zoom)

            def at(index: int, z: int = z) -> np.ndarray:
                t = tile_at(centre(index), z)
                return rgba(c.get(f"/layer/{t.z}/{t.x}/{t.y}.png").content)[pixel(centre(index), t)]

            unsure, sure = at(0), at(1)
            assert tuple(sure) == CLASS_COLOURS[FIELD]  # confidence 1: the class colour as is
            assert tuple(unsure[:3]) == CLASS_COLOURS[FIELD][:3] and 0 < unsure[3] < sure[3] // 2
        t = tile_at(centre(0), 14)
        found = {
            f["properties"]["id"]: f["properties"]
            for f in features(c.get(f"/layer/{t.z}/{t.x}/{t.y}.mvt").content)
        }
        assert found["a-0"][CONFIDENCE] == pytest.approx(0.0) and found["a-1"][CONFIDENCE] == pytest.approx(
            1.0
        )
