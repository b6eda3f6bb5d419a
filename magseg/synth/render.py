"""Paint a layout into an RGB image: soil, roads, village, textured fields, bunds, ponds, trees and wells.

All textures are whole-image array operations (per-field parameters looked up through a rasterised field
index), so a 1024 px scene paints in a fraction of a second.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from affine import Affine
from rasterio.features import rasterize
from scipy import ndimage
from shapely.geometry.base import BaseGeometry

from magseg.synth.layout import Layout
from magseg.synth.palette import CROPS, ROOFS, SOILS, WATERS

_IDENTITY = Affine.identity()


def burn(shapes: Iterable[tuple[BaseGeometry, int]], size: int, dtype: str = "int32") -> np.ndarray:
    """Rasterise (geometry, value) pairs in pixel coordinates; later shapes overwrite earlier ones."""
    pairs = [(g, v) for g, v in shapes if not g.is_empty]
    if not pairs:
        return np.zeros((size, size), dtype=dtype)
    return rasterize(pairs, out_shape=(size, size), transform=_IDENTITY, fill=0, dtype=dtype)


def _bspline_matrix(size: int, n: int, scale: float) -> np.ndarray:
    """(size, n) weights that sample a cubic B-spline through n knots spaced ``scale`` pixels apart."""
    t = (np.arange(size, dtype=np.float64) + 0.5) / scale + 1.0
    d = t[:, None] - np.arange(n)[None, :]
    a = np.abs(d)
    w = np.where(a < 1, 2 / 3 - a**2 + a**3 / 2, np.where(a < 2, (2 - a) ** 3 / 6, 0.0))
    return w.astype(np.float32)


def smooth_noise(rng: np.random.Generator, size: int, scale_px: float) -> np.ndarray:
    """Zero-mean, unit-variance noise whose features are about ``scale_px`` pixels across."""
    if scale_px < 3:
        noise = ndimage.gaussian_filter(
            rng.standard_normal((size, size), dtype=np.float32), max(scale_px / 2, 0.5)
        )
    else:
        # coarse Gaussian knots through a separable cubic B-spline: two small matrix products, much faster
        # than ndimage.zoom and free of the creases of bilinear interpolation
        n = int(math.ceil(size / scale_px)) + 4
        a = _bspline_matrix(size, n, scale_px)
        noise = (a @ rng.standard_normal((n, n), dtype=np.float32)) @ np.ascontiguousarray(
            a.T
        )  # BLAS: contiguous
    noise = noise - noise.mean()
    return noise / max(float(noise.std()), 1e-6)


def shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``a`` moved by whole pixels, zero-filled (shadows cast by trees, houses and clouds)."""
    out = np.zeros_like(a)
    h, w = a.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = a[ys, xs]
    return out


def _rgb(c: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    return np.asarray(c, dtype=np.float32)


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    img[mask] = colour[mask] if colour.ndim == 3 else colour


def _fields(rng: np.random.Generator, lay: Layout, img: np.ndarray, soil: np.ndarray, noise: dict) -> None:
    n = len(lay.fields)
    idx = burn(((f.geom, i + 1) for i, f in enumerate(lay.fields)), lay.size)
    mask = idx > 0
    if not mask.any():
        return
    crops = [CROPS[f.crop] for f in lay.fields]
    # per-field tables (index 0 unused): each field jitters its crop's look so equal crops differ slightly
    base = np.zeros((n + 1, 3), np.float32)
    base[1:] = [_rgb(c.rgb) * rng.uniform(0.86, 1.14) * rng.uniform(0.95, 1.05, 3) for c in crops]
    rows = np.zeros(n + 1, np.float32)
    rows[1:] = [c.rows * rng.uniform(0.5, 1.3) for c in crops]
    period = np.ones(n + 1, np.float32)
    period[1:] = [lay.px(rng.uniform(*c.row_m)) for c in crops]
    angle = np.zeros(n + 1, np.float32)
    # furrows run along the cadastral grid, across it, or (irregular plots) anyhow
    angle[1:] = lay.angle + rng.choice([0, math.pi / 2], n) + rng.normal(0, 0.06, n)
    phase = rng.uniform(0, 2 * math.pi, n + 1).astype(np.float32)
    grain = np.array([0.0] + [c.grain for c in crops], np.float32)
    patches = np.array([0.0] + [c.patches for c in crops], np.float32)
    soil_mix = np.array([0.0] + [c.soil * rng.uniform(0.6, 1.3) for c in crops], np.float32)
    # irrigation ridges (kiaris) inside some paddy and vegetable plots: lines that are NOT field boundaries
    ridge = np.zeros(n + 1, np.float32)
    ridge[1:] = [
        lay.px(rng.uniform(7, 16))
        if c.name in ("paddy_flooded", "paddy", "vegetables") and rng.random() < 0.5
        else 0
        for c in crops
    ]
    # a gentle brightness trend across each field (moisture, sowing date)
    tilt = rng.normal(0, 0.08 / lay.size, (n + 1, 2)).astype(np.float32)
    ys, xs = np.nonzero(mask)
    k = idx[ys, xs]
    cos, sin = np.cos(angle[k]), np.sin(angle[k])
    along, across = xs * cos + ys * sin, ys * cos - xs * sin
    wave = np.sin(2 * math.pi * along / period[k] + phase[k]).astype(np.float32)
    # each field mixes the two patch noises its own way, so patches do not run on across field borders
    mix = rng.uniform(0, 2 * math.pi, n + 1).astype(np.float32)
    patch = np.cos(mix[k]) * noise["low"][ys, xs] + np.sin(mix[k]) * noise["low2"][ys, xs]
    bright = 1 + rows[k] * wave + grain[k] * noise["med"][ys, xs] + patches[k] * patch
    bright += tilt[k, 0] * (xs - lay.size / 2) + tilt[k, 1] * (ys - lay.size / 2)
    has = ridge[k] > 0
    spacing, width = ridge[k][has], lay.px(0.5)
    on_ridge = (np.mod(along[has], spacing) < width) | (np.mod(across[has], spacing) < width)
    bright[np.flatnonzero(has)[on_ridge]] += 0.18
    colour = base[k] * bright[:, None]
    # sparse crops: soil shows through in furrows and in low-frequency patches
    m = np.clip(soil_mix[k] * (1 + 0.6 * patch - 0.5 * wave), 0, 1)[:, None]
    bare = soil[ys, xs] * (1 + 0.05 * wave[:, None])
    img[ys, xs] = colour * (1 - m) + bare * m


def _crown_relief(lay: Layout, sun: tuple[int, int]) -> np.ndarray:
    """Shading of every crown as a dome lit from the sun's side; the highest dome wins where crowns overlap."""
    size = lay.size
    height = np.zeros((size, size), np.float32)
    shade = np.full((size, size), 0.7, np.float32)
    norm = math.hypot(*sun) or 1.0
    sy, sx = -sun[0] / norm, -sun[1] / norm  # towards the sun
    for crowns in lay.crowns:
        for x, y, r in crowns:
            x0, x1 = max(int(x - r) - 1, 0), min(int(x + r) + 2, size)
            y0, y1 = max(int(y - r) - 1, 0), min(int(y + r) + 2, size)
            if x0 >= x1 or y0 >= y1:
                continue
            gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            nx, ny = (gx + 0.5 - x) / r, (gy + 0.5 - y) / r
            h = np.sqrt(np.clip(1 - nx * nx - ny * ny, 0, 1))
            s = 0.62 + 0.25 * h + 0.35 * (nx * sx + ny * sy)
            win = h > height[y0:y1, x0:x1]
            height[y0:y1, x0:x1][win] = h[win]
            shade[y0:y1, x0:x1][win] = s[win]
    return shade


def _trees(rng: np.random.Generator, lay: Layout, img: np.ndarray, sun: tuple[int, int], noise: dict) -> None:
    mask = burn(((g, 1) for g in lay.trees), lay.size, "uint8") > 0
    if not mask.any():
        return
    cast = shift(mask, *sun) & ~mask  # the shadow falls on the ground, away from the sun
    img[cast] *= 0.55
    green = _rgb((44, 72, 38)) * rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, 3)
    shade = _crown_relief(lay, sun) * (1 + 0.12 * noise["crown"])
    _paint(img, mask, green[None, None, :] * shade[..., None])


def _ponds(rng: np.random.Generator, lay: Layout, img: np.ndarray, noise: dict) -> None:
    mask = burn(((g, 1) for g in lay.ponds), lay.size, "uint8") > 0
    if not mask.any():
        return
    shore = ndimage.binary_dilation(mask, iterations=max(int(lay.px(1.5)), 1)) & ~mask
    img[shore] *= 0.72  # wet mud
    water = _rgb(WATERS[int(rng.integers(0, len(WATERS)))])
    depth = np.minimum(ndimage.distance_transform_edt(mask) / lay.px(6.0), 1.0)
    shade = 1.15 - 0.3 * depth + 0.04 * noise["low"]
    _paint(img, mask, water[None, None, :] * shade[..., None])


def _wells(lay: Layout, img: np.ndarray, sun: tuple[int, int]) -> None:
    mask = burn(((g, 1) for g in lay.wells), lay.size, "uint8") > 0
    if not mask.any():
        return
    img[shift(mask, max(sun[0] // 3, 1), max(sun[1] // 3, 1)) & ~mask] *= 0.6
    inner = ndimage.binary_erosion(mask, iterations=max(int(lay.px(0.5)), 1))
    img[mask] = _rgb((178, 176, 170))  # concrete parapet
    img[inner] = _rgb((28, 34, 32))  # the shaft


def _village(
    rng: np.random.Generator, lay: Layout, img: np.ndarray, soil: np.ndarray, sun: tuple[int, int]
) -> None:
    if lay.village is None:
        return
    ground = burn([(lay.village, 1)], lay.size, "uint8") > 0
    img[ground] = soil[ground] * 0.95 + 4
    ids = burn(((b, i + 1) for i, (b, _) in enumerate(lay.buildings)), lay.size)
    roofs = np.zeros((len(lay.buildings) + 1, 3), np.float32)
    roofs[1:] = [_rgb(ROOFS[kind]) * rng.uniform(0.85, 1.12) for _, kind in lay.buildings]
    built = ids > 0
    img[shift(built, sun[0] // 2, sun[1] // 2) & ~built] *= 0.5
    img[built] = roofs[ids[built]]


def render(rng: np.random.Generator, lay: Layout) -> np.ndarray:
    """An (H, W, 3) float32 image of the layout, before clouds and sensor effects."""
    size = lay.size
    noise = {
        "low": smooth_noise(rng, size, lay.px(14)),
        "low2": smooth_noise(rng, size, lay.px(6)),
        "med": smooth_noise(rng, size, lay.px(1.2)),
        "crown": smooth_noise(rng, size, lay.px(0.9)),
    }
    soil_rgb = _rgb(SOILS[int(rng.choice(len(SOILS), p=[0.55, 0.25, 0.2]))]) * rng.uniform(0.92, 1.08)
    soil = soil_rgb * (1 + 0.06 * noise["low"] + 0.04 * noise["med"])[..., None]
    # background: soil with grass where the low-frequency noise is high (verges, waste land)
    grass = np.clip(0.35 + 0.4 * noise["low2"], 0, 1)[..., None]
    img = soil * (1 - grass) + _rgb((96, 110, 66)) * grass * (1 + 0.08 * noise["med"])[..., None]
    sun_dir = rng.uniform(0, 2 * math.pi)
    sun = (int(round(math.sin(sun_dir) * lay.px(4))), int(round(math.cos(sun_dir) * lay.px(4))))
    kinds = burn(((g, kind + 1) for g, kind in lay.roads), size, "uint8")
    road_rgb = np.array([[0, 0, 0], [128, 126, 122], [176, 158, 126]], np.float32) * rng.uniform(0.92, 1.08)
    road = kinds > 0
    img[road] = road_rgb[kinds[road]] * (1 + 0.03 * noise["med"][road])[:, None]
    _village(rng, lay, img, soil, sun)
    _fields(rng, lay, img, soil, noise)
    bunds = burn(((g, 1) for g in lay.bunds), size, "uint8") > 0
    bund_rgb = _rgb((186, 170, 134)) if rng.random() < 0.6 else _rgb((88, 104, 60))
    img[bunds] = bund_rgb * rng.uniform(0.9, 1.1) * (1 + 0.06 * noise["med"][bunds])[:, None]
    _ponds(rng, lay, img, noise)
    _trees(rng, lay, img, sun, noise)
    _wells(lay, img, sun)
    return img
