"""Quick-look pictures: class colours over imagery, instance outlines, side-by-side panels; Leaflet for offline maps."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.segmentation import find_boundaries

from magseg.atomic import atomic_path
from magseg.classes import CLASS_COLOURS


def colourise(semantic: np.ndarray) -> np.ndarray:
    """(H, W) class ids -> (H, W, 4) RGBA with the class table's colours (background transparent)."""
    table = np.array(CLASS_COLOURS, dtype=np.uint8)
    return table[np.clip(semantic, 0, len(table) - 1)]


def overlay(
    image: np.ndarray, semantic: np.ndarray | None = None, instance: np.ndarray | None = None
) -> np.ndarray:
    """Blend class colours over an RGB image (3, H, W) and draw instance outlines in white; returns (H, W, 3)."""
    rgb = image.transpose(1, 2, 0).astype(np.float32)
    if semantic is not None:
        rgba = colourise(semantic).astype(np.float32)
        alpha = rgba[..., 3:] / 255.0 * 0.6
        rgb = rgb * (1 - alpha) + rgba[..., :3] * alpha
    if instance is not None:
        rgb[find_boundaries(instance, mode="inner")] = 255
    return rgb.clip(0, 255).astype(np.uint8)


def panels(path: str | os.PathLike[str], items: Sequence[tuple[str, np.ndarray]], width: int = 360) -> None:
    """Write titled (H, W, 3) images side by side as one PNG, each scaled to ``width`` pixels wide."""
    tiles = []
    for title, array in items:
        img = Image.fromarray(array)
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.NEAREST)
        canvas = Image.new("RGB", (img.width, img.height + 18), "white")
        canvas.paste(img, (0, 18))
        ImageDraw.Draw(canvas).text((4, 3), title, fill="black")
        tiles.append(canvas)
    sheet = Image.new(
        "RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), max(t.height for t in tiles)), "white"
    )
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + 4
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")


@lru_cache(maxsize=1)
def leaflet_inline() -> tuple[str, str]:
    """Leaflet's (css, js), shipped in magseg/assets/leaflet, for pages that must work offline.

    The layer-control icons are inlined as data URLs, since an inlined stylesheet has no folder to
    resolve ``images/...`` against.
    """
    folder = files("magseg") / "assets" / "leaflet"
    css = (folder / "leaflet.css").read_text(encoding="utf-8")
    for name in ("layers-2x.png", "layers.png"):
        data = base64.b64encode((folder / name).read_bytes()).decode()
        css = css.replace(f"url(images/{name})", f"url(data:image/png;base64,{data})")
    return css, (folder / "leaflet.js").read_text(encoding="utf-8")


LINE_COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))


def line_chart_png(
    series: dict[str, list[tuple[float, float]]],
    path: str | os.PathLike[str],
    *,
    x_label: str = "",
    title: str = "",
    size: tuple[int, int] = (640, 400),
) -> None:
    """A line chart of (x, y) series with y in [0, 1] (scores), legend and axis ticks, written as PNG."""
    left, top, bottom = 50, 30, 40
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    right = max([170] + [46 + int(draw.textlength(name)) + 8 for name in series])  # room for the legend
    width, height = max(size[0], left + right + 320), size[1]
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    xs = [x for pts in series.values() for x, _ in pts] or [0.0, 1.0]
    x_lo, x_hi = min(xs), max(max(xs), min(xs) + 1e-9)

    def at(x: float, y: float) -> tuple[float, float]:
        fx = (x - x_lo) / (x_hi - x_lo)
        return left + fx * (width - left - right), top + (1 - y) * (height - top - bottom)

    for tick in np.linspace(0, 1, 6):
        px, py = at(x_lo, float(tick))
        draw.line([(left, py), (width - right, py)], fill=(225, 225, 225))
        draw.text((8, py - 6), f"{tick:.1f}", fill="black")
    for tick in np.linspace(x_lo, x_hi, 5):
        px, py = at(float(tick), 0.0)
        draw.text((px - 10, height - bottom + 6), f"{tick:g}", fill="black")
    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    draw.text((left, 8), title, fill="black")
    draw.text(((width - right) // 2, height - 16), x_label, fill="black")
    for i, (name, pts) in enumerate(series.items()):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        coords = [at(x, y) for x, y in sorted(pts)]
        if len(coords) > 1:
            draw.line(coords, fill=colour, width=2)
        for cx, cy in coords:
            draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)
        ly = top + 16 * i
        draw.line([(width - right + 10, ly + 6), (width - right + 30, ly + 6)], fill=colour, width=3)
        draw.text((width - right + 36, ly), name, fill="black")
    with atomic_path(Path(path)) as tmp:
        img.save(tmp, format="PNG")
