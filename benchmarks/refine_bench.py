"""Refine + polygonize cost per megapixel, as a ratio to the bare primitives (skimage watershed + rasterio shapes)."""

from __future__ import annotations

import time

import numpy as np
from rasterio.features import shapes
from scipy import ndimage
from skimage.filters import sobel
from skimage.segmentation import watershed

from magseg.codec import mask_to_grid
from magseg.labels import LabelRaster
from magseg.patches import PatchLayout, crop_patch, stitch
from magseg.refine import refine
from magseg.synth import generate_scene
from magseg.vector import polygonize


def _best_of(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool = False) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    reps = 1 if quick else 3
    for size in (512, 1024) if quick else (512, 1024, 2048):
        scene = generate_scene(seed=11, size=size, gsd=0.5, origin=(700_000.0, 3_300_000.0), crs="EPSG:32643")
        truth = scene.labels
        layout = PatchLayout(size, size, 64)
        stitched = stitch(
            [mask_to_grid(crop_patch(truth.semantic, x, y, 64), 8) for x, y in layout.origins()], layout
        )
        mpx = size * size / 1e6
        result = refine(stitched, scene.image)

        def ours(
            stitched: np.ndarray = stitched, image: np.ndarray = scene.image, t: LabelRaster = truth
        ) -> None:
            out = refine(stitched, image)
            polygonize(LabelRaster(out.instance, out.semantic, t.transform, t.crs))

        def bare(
            stitched: np.ndarray = stitched, image: np.ndarray = scene.image, t: LabelRaster = truth
        ) -> None:
            # the primitives alone: one gradient, one marker labelling, one watershed, one shapes() pass
            prob = sobel(image.mean(axis=0))
            markers, _ = ndimage.label((prob < np.percentile(prob, 50)) & (stitched == 1))
            inst = watershed(prob, markers, mask=stitched == 1).astype(np.int32)
            list(shapes(inst, mask=inst > 0, transform=t.transform))

        t_ours, t_bare = _best_of(ours, reps), _best_of(bare, reps)
        rows.append({
            "bench": f"refine+polygonize {size}px", "megapixels": round(mpx, 2),
            "s_per_mpx": round(t_ours / mpx, 3), "bare_s_per_mpx": round(t_bare / mpx, 3),
            "ratio_vs_bare": round(t_ours / t_bare, 2), "instances": int(result.instance.max()),
        })  # fmt: skip
    return rows
