"""A region run's pictures: a quick-look PNG of imagery and classes, and a self-contained Leaflet HTML map."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
from PIL import Image
from pyproj import Transformer

from magseg.atomic import atomic_path
from magseg.classes import CLASS_COLOURS, CLASS_NAMES
from magseg.mapping.plan import RegionPlan
from magseg.mapping.store import RunStore
from magseg.vector import CONFIDENCE
from magseg.viz import leaflet_inline, overlay

__all__ = ["mosaic_thumbnails", "write_html_map", "write_quicklook"]

#: Largest quick-look side in pixels; bigger regions are subsampled to it.
MAX_SIDE = 4096
#: The HTML map embeds the polygons; beyond this many it shows the imagery only and says so.
MAX_HTML_POLYGONS = 50_000


def mosaic_thumbnails(
    store: RunStore, plan: RegionPlan
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]] | None:
    """The finished tiles' thumbnails as one (3, H, W) image and (H, W) class mask, and their UTM bounds.

    Tiles are placed by their grid position; tiles without imagery stay black and background.
    """
    rows = [r for r, _, _ in plan.runs]
    cols = [c for _, c0, c1 in plan.runs for c in (c0, c1)]
    if not rows:
        return None
    r0, r1, c0, c1 = min(rows), max(rows), min(cols), max(cols)
    thumbs: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    side = 0
    for tile in plan.tiles:
        arrays = store.arrays(tile.id)
        if arrays is not None:
            thumbs[(tile.col, tile.row)] = arrays
            side = arrays["semantic"].shape[0]
    if not thumbs:
        return None
    width, height = (c1 - c0 + 1) * side, (r1 - r0 + 1) * side
    step = max(1, -(-max(width, height) // MAX_SIDE))
    image = np.zeros((3, height, width), np.uint8)
    semantic = np.zeros((height, width), np.uint8)
    for (col, row), arrays in thumbs.items():
        y, x = (r1 - row) * side, (col - c0) * side  # rows count northward, images downward
        image[:, y : y + side, x : x + side] = arrays["image"]
        semantic[y : y + side, x : x + side] = arrays["semantic"]
    tile_m = plan.tile_m
    bounds = (c0 * tile_m, r0 * tile_m, (c1 + 1) * tile_m, (r1 + 1) * tile_m)
    return image[:, ::step, ::step], semantic[::step, ::step], bounds


def write_quicklook(path: str | os.PathLike[str], image: np.ndarray, semantic: np.ndarray) -> None:
    """Imagery on the left, classes blended over it on the right, one PNG, atomically."""
    pair = np.concatenate([image.transpose(1, 2, 0), overlay(image, semantic)], axis=1)
    with atomic_path(path) as tmp:
        Image.fromarray(pair).save(tmp)


def _png_data_url(rgb_or_rgba: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb_or_rgba).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def write_html_map(
    path: str | os.PathLike[str],
    layer: gpd.GeoDataFrame | None,
    image: np.ndarray,
    bounds_utm: tuple[float, float, float, float],
    epsg: int,
    title: str = "magseg fields",
    total: int | None = None,
) -> None:
    """One HTML file (Leaflet inlined, works offline): the imagery, the fields coloured by class, a legend.

    ``layer`` None draws the imagery alone (``total``: the polygons left out, said in the legend).
    The imagery is drawn as an image overlay on its WGS 84 bounds (a UTM image on Web Mercator: the
    distortion is well under a pixel for the areas a quick look shows).
    """
    x0, y0, x1, y1 = bounds_utm
    lon0, lat0 = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x0, y0)
    lon1, lat1 = Transformer.from_crs(epsg, 4326, always_xy=True).transform(x1, y1)
    shown = (
        layer.to_crs(4326)
        if layer is not None
        else gpd.GeoDataFrame({"id": [], "class": [], "metrics:area": []}, geometry=[], crs=4326)
    )
    total = len(shown) if total is None else total
    note = ""
    if total > MAX_HTML_POLYGONS:
        note = f"{total:,} polygons: too many to embed; open the GeoParquet layer in a GIS"
        shown = shown.iloc[:0]
    keep = ["id", "class", "metrics:area", *([CONFIDENCE] if CONFIDENCE in shown.columns else [])]
    geojson = json.loads(shown[[*keep, "geometry"]].to_json(drop_id=True))
    colours = {name: "#" + bytes(CLASS_COLOURS[i][:3]).hex() for i, name in enumerate(CLASS_NAMES)}
    css, js = leaflet_inline()
    page = _TEMPLATE.format(
        title=title,
        css=css,
        js=js,
        image=_png_data_url(image.transpose(1, 2, 0)),
        bounds=json.dumps([[lat0, lon0], [lat1, lon1]]),
        fields=json.dumps(geojson),
        colours=json.dumps(colours),
        note=json.dumps(note),
        confidence=CONFIDENCE,
        conf_legend=json.dumps(
            "<br>fill opacity: confidence (faint = check first)" if CONFIDENCE in keep else ""
        ),
    )
    with atomic_path(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")


_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{css}</style>
<style>html,body,#map{{height:100%;margin:0}} .legend{{background:#fff;padding:6px;font:12px sans-serif}}</style>
</head><body><div id="map"></div>
<script>{js}</script>
<script>
const bounds = {bounds};
const colours = {colours};
const conf = f => (typeof f.properties['{confidence}'] === 'number' ? f.properties['{confidence}'] : null);
const map = L.map('map', {{preferCanvas: true}}).fitBounds(bounds);
const imagery = L.imageOverlay('{image}', bounds).addTo(map);
const fields = L.geoJSON({fields}, {{
  // fill opacity follows the calibrated confidence (faint: check first), when the layer has one
  style: f => ({{color: colours[f.properties.class] || '#ff0', weight: 1,
      fillOpacity: conf(f) === null ? 0.35 : 0.05 + 0.55 * conf(f)}}),
  onEachFeature: (f, l) => l.bindPopup(f.properties.id + '<br>' + f.properties.class + ', ' +
      Math.round(f.properties['metrics:area']) + ' m²' +
      (conf(f) === null ? '' : '<br>confidence ' + conf(f).toFixed(2)))
}}).addTo(map);
L.control.layers(null, {{'imagery': imagery, 'fields': fields}}).addTo(map);
const legend = L.control({{position: 'bottomright'}});
legend.onAdd = () => {{
  const d = L.DomUtil.create('div', 'legend');
  d.innerHTML = Object.entries(colours).filter(([k]) => k !== 'background')
    .map(([k, c]) => '<span style="color:' + c + '">&#9632;</span> ' + k).join('<br>') +
    {conf_legend} + ({note} ? '<br><b>' + {note} + '</b>' : '');
  return d;
}};
legend.addTo(map);
</script></body></html>
"""
