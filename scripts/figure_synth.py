"""Draw docs/synth_scenes.png: three synthetic scenes, each as image | semantic labels (CLASS_COLOURS).

Usage: .venv/bin/python scripts/figure_synth.py [--out docs/synth_scenes.png] [--size 512] [--seed 7]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.segmentation import find_boundaries

from magseg.classes import CLASS_COLOURS, CLASS_NAMES
from magseg.synth import PRESETS, generate_scene, mosaic_origins

GAP = 8


def label_panel(instance: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Class colours blended over dark grey, with instance borders drawn dark so that instances separate."""
    colours = np.array(CLASS_COLOURS, dtype=np.float32)
    rgb, alpha = colours[semantic, :3], colours[semantic, 3:] / 255.0
    out = rgb * alpha + 40.0 * (1 - alpha)
    out[find_boundaries(instance, mode="inner") & (instance > 0)] *= 0.35
    return out.astype(np.uint8)


def legend(width: int) -> Image.Image:
    img = Image.new("RGB", (width, 22), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    x = 6
    for cid in range(1, len(CLASS_NAMES)):
        draw.rectangle([x, 5, x + 12, 17], fill=CLASS_COLOURS[cid][:3], outline=(0, 0, 0))
        draw.text((x + 16, 6), CLASS_NAMES[cid], fill=(0, 0, 0))
        x += 24 + 7 * len(CLASS_NAMES[cid])
    return img


def small_png(sheet: Image.Image, photos: list[tuple[int, int, int, int]]) -> Image.Image:
    """A 256-colour version (~1/3 of the bytes): exact colours for labels and legend, the rest for the photos."""
    rgb = np.asarray(sheet).copy()
    outside = np.ones(rgb.shape[:2], bool)
    for x0, y0, x1, y1 in photos:
        outside[y0:y1, x0:x1] = False
    exact = np.unique(rgb[outside], axis=0)
    photo_px = np.concatenate([rgb[y0:y1, x0:x1].reshape(-1, 3) for x0, y0, x1, y1 in photos])
    sample = Image.fromarray(photo_px[None])  # all photo pixels as one row
    shades = sample.quantize(colors=256 - len(exact), method=Image.Quantize.MEDIANCUT).getpalette()
    palette = exact.ravel().tolist() + shades[: 3 * (256 - len(exact))]
    target = Image.new("P", (1, 1))
    target.putpalette(palette + [0] * (768 - len(palette)))
    out = sheet.quantize(palette=target, dither=Image.Dither.NONE)  # labels: their exact colours
    for box in photos:
        out.paste(sheet.crop(box).quantize(palette=target), box[:2])  # photos: dithered
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/synth_scenes.png"))
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--gsd", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    loc = PRESETS["karnal"]
    origins = mosaic_origins(loc, 3, args.size, args.gsd)
    # cloud_fraction 1 on the last scene only: the figure shows clouds once, and clear ground twice
    scenes = [
        generate_scene(args.seed + i, args.size, args.gsd, origins[i], loc.crs, cloud_fraction=float(i == 2))
        for i in range(3)
    ]
    s = args.size
    sheet = Image.new("RGB", (2 * s + 3 * GAP, 3 * s + 4 * GAP + 22), (255, 255, 255))
    for row, sc in enumerate(scenes):
        y = GAP + row * (s + GAP)
        sheet.paste(Image.fromarray(sc.image.transpose(1, 2, 0)), (GAP, y))
        sheet.paste(Image.fromarray(label_panel(sc.labels.instance, sc.labels.semantic)), (2 * GAP + s, y))
    sheet.paste(legend(sheet.width), (0, 3 * s + 4 * GAP))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    photos = [(GAP, GAP + r * (s + GAP), GAP + s, GAP + r * (s + GAP) + s) for r in range(3)]
    small_png(sheet, photos).save(args.out, optimize=True)
    print(f"wrote {args.out} ({', '.join(f'{sc.scene_id}: {sc.counts()}' for sc in scenes)})")


if __name__ == "__main__":
    main()
