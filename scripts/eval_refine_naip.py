"""Does refinement lift field mIoU over coarse RRLE masks on real NAIP pixels? Coarse vs refined, with sweeps.

For each tile of /work/shared/data/naip-fields: truth = field where the instance mask > 0; the coarse mask
is the truth as the model sees it (p x p patches reduced to g x g cells by majority, stitched back); then
(a) coarse: 4-connected components of the coarse field mask, (b) refined: magseg.refine.refine with the
default image fallback (OrientedBoundary) at 1 m. Both are scored with magseg.metrics.score_instances on all tiles pooled (one mosaic,
so mean and median run over every truth instance). 0 in the masks means "not annotated": FPR counts
predictions overlapping no annotated field and overstates real false positives.

    .venv/bin/python scripts/eval_refine_naip.py                 # defaults, p=128 g=16
    .venv/bin/python scripts/eval_refine_naip.py --old --tiles 8 # also the old Sobel settings, 8 tiles
    .venv/bin/python scripts/eval_refine_naip.py --sweep knobs   # one knob at a time (also: merge, grids)
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import rasterio
from scipy import ndimage

from magseg.classes import FIELD
from magseg.codec import grid_to_mask, mask_to_grid
from magseg.metrics import score_instances
from magseg.refine import GradientBoundary, OrientedBoundary, refine

DATA = Path("/work/shared/data/naip-fields")
GSD = 1.0  # NAIP metres per pixel (the tiles are in EPSG:4326, so it is not read from them)


@dataclass(frozen=True)
class Config:
    """One refinement setting (sizes in metres at ``gsd`` m/px); ``name`` labels its row."""

    name: str
    patch: int = 128
    grid: int = 16
    gsd: float = GSD
    boundary: str = "oriented"  # the default image fallback; "sobel" is GradientBoundary (the old one)
    threshold: float = 0.3  # the defaults of magseg.refine.refine, chosen by the sweeps below
    min_area_m2: float = 256.0
    min_marker_m2: float = 128.0
    min_isolated_m2: float = 64.0
    gap_m: float = 2.0
    snap_px: int = 0


#: The settings before sizes became physical (Sobel sigma 2 px, 1024 px, markers 64 px, no gap):
#: 0.464 mIoU, 0.697 F1 at p=128, g=16 on the 30 tiles.
OLD = Config(
    "old (sobel)", boundary="sobel", threshold=0.2, min_area_m2=1024.0, min_marker_m2=64.0, gap_m=0.0
)


@dataclass
class Tile:
    image: np.ndarray  # (3, H, W) uint8
    instance: np.ndarray  # (H, W) int32 truth instances (0 = not annotated)


def load_tiles(data: Path, limit: int | None) -> list[Tile]:
    tiles = []
    for jpg in sorted((data / "images").glob("*.jpg"))[:limit]:
        with rasterio.open(jpg) as src:
            image = src.read()
        with rasterio.open(data / "masks" / f"{jpg.stem}.tif") as src:
            instance = src.read(1).astype(np.int32)
        tiles.append(Tile(image, instance))
    return tiles


def coarse_mask(semantic: np.ndarray, patch: int, grid: int) -> np.ndarray:
    """The semantic mask as the model writes it: each p x p patch through a g x g majority grid."""
    out = np.zeros_like(semantic)
    h, w = semantic.shape
    for y in range(0, h, patch):
        for x in range(0, w, patch):
            block = semantic[y : y + patch, x : x + patch]
            g = (max(1, grid * block.shape[0] // patch), max(1, grid * block.shape[1] // patch))
            out[y : y + patch, x : x + patch] = grid_to_mask(mask_to_grid(block, g), block.shape)
    return out


def pooled_scores(preds: list[tuple[np.ndarray, np.ndarray]], tiles: list[Tile]) -> dict[str, float]:
    """Score all tiles as one mosaic (ids offset per tile) so mean/median run over every truth instance."""
    p_inst, p_sem, t_inst = [], [], []
    p_off = t_off = 0
    for (inst, sem), tile in zip(preds, tiles, strict=True):
        p_inst.append(np.where(inst > 0, inst + p_off, 0))
        p_sem.append(sem)
        t_inst.append(np.where(tile.instance > 0, tile.instance + t_off, 0))
        p_off += int(inst.max(initial=0))
        t_off += int(tile.instance.max(initial=0))
    truth = np.concatenate(t_inst)
    s = score_instances(
        np.concatenate(p_inst), np.concatenate(p_sem), truth, np.where(truth > 0, FIELD, 0), classes=[FIELD]
    )["field"]
    return {
        "mIoU": s.mean_iou or 0.0,
        "medIoU": s.median_iou or 0.0,
        "FNR": s.fnr or 0.0,
        "FPR": s.fpr or 0.0,
        "F1@.5": s.f1 or 0.0,
        "n_pred": s.n_pred,
        "n_truth": s.n_truth,
    }


def run(
    config: Config, tiles: list[Tile], cache: dict[tuple[str, str], np.ndarray]
) -> tuple[dict, dict, float]:
    """Coarse and refined scores for one setting, and refine's seconds per megapixel (boundary included)."""
    coarse_preds, refined_preds = [], []
    seconds = 0.0
    for i, tile in enumerate(tiles):
        truth_sem = np.where(tile.instance > 0, FIELD, 0).astype(np.uint8)
        coarse = coarse_mask(truth_sem, config.patch, config.grid)
        cc, _ = ndimage.label(coarse == FIELD)
        coarse_preds.append((cc, coarse))
        t0 = time.perf_counter()
        key = (str(i), config.boundary)
        if key not in cache:  # the boundary map depends on the image (and the GSD, fixed here) only
            model = OrientedBoundary(gsd=config.gsd) if config.boundary == "oriented" else GradientBoundary()
            cache[key] = model.predict(tile.image)
        result = refine(
            coarse,
            boundary=cache[key],
            gsd=config.gsd,
            threshold=config.threshold,
            min_area_m2=config.min_area_m2,
            min_marker_m2=config.min_marker_m2,
            min_isolated_m2=config.min_isolated_m2,
            gap_m=config.gap_m,
            snap_px=config.snap_px,
        )
        seconds += time.perf_counter() - t0
        refined_preds.append((result.instance, result.semantic))
    mpx = sum(t.instance.size for t in tiles) / 1e6
    return pooled_scores(coarse_preds, tiles), pooled_scores(refined_preds, tiles), seconds / mpx


def sweep_configs(stage: str) -> list[Config]:
    """Settings to compare: ``knobs`` one knob at a time, ``merge`` the fragment clean-up, ``grids`` p/g."""
    base = Config("default")
    if stage == "knobs":
        return [
            base,
            OLD,
            replace(base, name="sobel, new knobs", boundary="sobel"),
            *[replace(base, name=f"threshold={t}", threshold=t) for t in (0.2, 0.25, 0.35)],
            *[replace(base, name=f"gap_m={g:g}", gap_m=g) for g in (0.0, 1.0, 3.0)],
            *[replace(base, name=f"snap_px={s}", snap_px=s) for s in (4, 8)],
        ]
    if stage == "merge":
        return [
            replace(base, name="a64 m16", min_area_m2=64.0, min_marker_m2=16.0),
            replace(base, name="a128", min_area_m2=128.0),
            replace(base, name="m64", min_marker_m2=64.0),
            replace(base, name="m256", min_marker_m2=256.0),
            base,
            replace(base, name="a512", min_area_m2=512.0),
            replace(base, name="a1024", min_area_m2=1024.0),
            replace(base, name="a256 iso=a", min_isolated_m2=256.0),
        ]
    return [
        replace(base, name=f"{label}", patch=p, grid=g, **knobs)
        for p, g in ((128, 16), (128, 32), (64, 16), (128, 8))
        for label, knobs in (("default", {}), ("threshold=0.2", {"threshold": 0.2}))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--tiles", type=int, default=None, help="use the first N tiles only")
    parser.add_argument("--sweep", choices=("knobs", "merge", "grids"), default=None, help="compare settings")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--grid", type=int, default=16)
    parser.add_argument("--old", action="store_true", help="also run the settings before physical sizes")
    args = parser.parse_args()

    tiles = load_tiles(args.data, args.tiles)
    if args.sweep:
        configs = sweep_configs(args.sweep)
    else:
        configs = [Config("default", patch=args.patch, grid=args.grid)]
        if args.old:
            configs.append(replace(OLD, patch=args.patch, grid=args.grid))
    cache: dict[tuple[str, str], np.ndarray] = {}
    print(f"{len(tiles)} tiles, {sum(int(t.instance.max()) for t in tiles)} truth fields (instance ids)")
    header = f"{'setting':<18} {'p/g':>7} | {'':>6} {'mIoU':>6} {'medIoU':>6} {'FNR':>6} {'FPR':>6} {'F1@.5':>6} {'n_pred':>6}"
    print(header + f" | {'lift':>6} {'s/MPx':>6}")
    print("-" * (len(header) + 16))
    for config in configs:
        coarse, refined, spm = run(config, tiles, cache)
        for label, s in (("coarse", coarse), ("refined", refined)):
            tail = f" | {refined['mIoU'] - coarse['mIoU']:>+6.3f} {spm:>6.2f}" if label == "refined" else " |"
            print(
                f"{config.name if label == 'coarse' else '':<18} {config.patch:>3}/{config.grid:<3} | {label:>7}"
                f"{s['mIoU']:>6.3f} {s['medIoU']:>6.3f} {s['FNR']:>6.3f} {s['FPR']:>6.3f} {s['F1@.5']:>6.3f}"
                f" {s['n_pred']:>6}{tail}",
                flush=True,
            )


if __name__ == "__main__":
    main()
