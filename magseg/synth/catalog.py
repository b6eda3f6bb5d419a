"""STAC for synthetic scenes: one item per scene (projection + eo extensions), a collection, stac-geoparquet.

Hrefs (assets and links) are absolute file paths of the final output folder, resolved when the dataset is
written, so an item can be read from any working directory (move the folder and they must be rewritten).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import stac_geoparquet.arrow
from pyproj import Transformer

from magseg.atomic import atomic_path
from magseg.synth.scene import SyntheticScene

PROJECTION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
TIFF_TYPE = "image/tiff; application=geotiff"
PARQUET_TYPE = "application/vnd.apache.parquet"
JSON_TYPE = "application/json"


def collection_id(seed: int) -> str:
    """The collection of one `magseg synth` run (item ids already carry the seed)."""
    return f"magseg-synth-{seed}"


def footprint(scene: SyntheticScene) -> tuple[dict[str, Any], list[float]]:
    """The scene outline in WGS 84 (GeoJSON polygon, edges densified) and its bbox."""
    t, (h, w) = scene.labels.transform, scene.labels.shape
    crs = scene.labels.crs
    assert crs is not None  # generate_scene always sets one
    steps = np.linspace(0, 1, 8, endpoint=False)
    cols = np.concatenate([steps * w, np.full(8, w), (1 - steps) * w, np.zeros(8)])
    rows = np.concatenate([np.zeros(8), steps * h, np.full(8, h), (1 - steps) * h])
    xs, ys = t.c + cols * t.a, t.f + rows * t.e
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xs, ys)
    ring = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    bbox = [
        min(p[0] for p in ring),
        min(p[1] for p in ring),
        max(p[0] for p in ring),
        max(p[1] for p in ring),
    ]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def scene_item(scene: SyntheticScene, root: Path, collection: str) -> pystac.Item:
    """The STAC item of a scene written under ``root`` (the final, absolute output folder)."""
    geometry, bbox = footprint(scene)
    t, (h, w) = scene.labels.transform, scene.labels.shape
    crs = scene.labels.crs
    assert crs is not None
    epsg = crs.to_epsg()
    props: dict[str, Any] = {
        "gsd": float(abs(t.a)),
        "eo:cloud_cover": round(scene.cloud_cover, 3),
        "proj:code": f"EPSG:{epsg}",
        "proj:epsg": epsg,  # projection v1.x name, still read by many clients (rio-stac, stackstac)
        "proj:shape": [h, w],
        "proj:transform": [t.a, t.b, t.c, t.d, t.e, t.f],
        "proj:bbox": [t.c, t.f + h * t.e, t.c + w * t.a, t.f],
        "platform": "magseg-synth",
        "magseg:seed": scene.seed,
    }
    item = pystac.Item(
        id=scene.scene_id,
        geometry=geometry,
        bbox=bbox,
        datetime=scene.datetime,
        properties=props,
        stac_extensions=[PROJECTION, EO],
        collection=collection,
    )
    sid = scene.scene_id
    item.add_asset(
        "image",
        pystac.Asset(str(root / "scenes" / f"{sid}.tif"), "RGB image", media_type=COG_TYPE, roles=["data"]),
    )
    item.add_asset(
        "labels",
        pystac.Asset(
            str(root / "labels" / f"{sid}.tif"),
            "Label raster: band 1 instance id, band 2 class id (magseg.classes)",
            media_type=TIFF_TYPE,
            roles=["labels"],
        ),
    )
    item.add_asset(
        "fields",
        pystac.Asset(
            str(root / "fields" / f"{sid}.parquet"),
            "Ground-truth polygons of every instance (GeoParquet)",
            media_type=PARQUET_TYPE,
            roles=["labels", "vector"],
        ),
    )
    coll_href = str(root / "stac" / "collection.json")
    for rel in ("collection", "parent", "root"):
        item.add_link(pystac.Link(rel, coll_href, media_type=JSON_TYPE))
    return item


def make_collection(
    items: Sequence[pystac.Item], root: Path, collection: str, description: str
) -> pystac.Collection:
    """The collection holding ``items``; its item links are absolute paths like the assets."""
    bboxes = np.array([it.bbox for it in items])
    times = [it.datetime for it in items if it.datetime is not None]
    start: datetime | None = min(times) if times else None
    end: datetime | None = max(times) if times else None
    coll = pystac.Collection(
        id=collection,
        description=description,
        extent=pystac.Extent(
            pystac.SpatialExtent(
                [[*bboxes[:, :2].min(axis=0).tolist(), *bboxes[:, 2:].max(axis=0).tolist()]]
            ),
            pystac.TemporalExtent([[start, end]]),
        ),
        license="CC0-1.0",
        title="magseg synthetic smallholder landscapes",
        summaries=pystac.Summaries(
            {
                "gsd": sorted({it.properties["gsd"] for it in items}),
                "proj:code": sorted({it.properties["proj:code"] for it in items}),
            }
        ),
    )
    coll.stac_extensions = [PROJECTION, EO]
    coll_href = str(root / "stac" / "collection.json")
    coll.add_link(pystac.Link("root", coll_href, media_type=JSON_TYPE))
    for it in items:
        coll.add_link(
            pystac.Link("item", str(root / "stac" / "items" / f"{it.id}.json"), media_type=JSON_TYPE)
        )
    return coll


def _dump(path: Path, obj: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def write_catalog(stac_dir: Path, items: Sequence[pystac.Item], collection: pystac.Collection) -> None:
    """collection.json, items/<id>.json and items.parquet (stac-geoparquet) under ``stac_dir``."""
    coll = collection.to_dict(include_self_link=False, transform_hrefs=False)
    _dump(stac_dir / "collection.json", coll)
    dicts = [it.to_dict(include_self_link=False, transform_hrefs=False) for it in items]
    for d in dicts:
        _dump(stac_dir / "items" / f"{d['id']}.json", d)
    table = stac_geoparquet.arrow.parse_stac_items_to_arrow(dicts)
    with atomic_path(stac_dir / "items.parquet") as tmp:
        stac_geoparquet.arrow.to_parquet(table, tmp, collections={collection.id: coll})
