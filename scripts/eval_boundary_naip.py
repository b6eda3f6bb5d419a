"""Does a trained SegFormer boundary model beat the gradient fallback on held-out NAIP tiles? Train, then score.

Split (deterministic): the naip-fields tiles sorted by name; every fifth one (indices 4, 9, ..., 29: six
tiles spread over the latitudes the names sort by) is held out, the other 24 train. The model trains on
the 24 NAIP tiles (sparse labels: 0 = "not annotated", so only pixels on or within ``near_px`` of a
labelled field are supervised) plus `magseg synth` scenes (fully labelled). Scoring follows
scripts/eval_refine_naip.py exactly: the coarse input is the truth through p=128 patches of g=16 RRLE
grids, stitched; magseg.refine.refine (its other knobs at their defaults) cuts it into instances with
(a) an image fallback: GradientBoundary, and refine's own default fallback when that is another one, or
(b) the trained model's boundary map; magseg.metrics.score_instances pools the tiles. Its mIoU merges
every prediction overlapping a truth field, so over-splitting costs little there; F1@.5 (one-to-one
matching) is the check against over-splitting. Each method is scored at
refine's default threshold and at the threshold that scores best on the 24 TRAINING tiles (never tuned on
the held-out ones).

    .venv/bin/python -m magseg synth --out /work/runs/boundary_synth --scenes 32 --seed 11
    .venv/bin/python scripts/eval_boundary_naip.py --synth /work/runs/boundary_synth --out /work/runs/boundary
    .venv/bin/python scripts/eval_boundary_naip.py --out /work/runs/boundary --skip-train   # score only
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from magseg.classes import FIELD
from magseg.refine import GradientBoundary, load_boundary_model, refine
from magseg.sources import list_scenes
from magseg.train.boundary import boundary_config_from_dict, run_boundary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_refine_naip import Tile, coarse_mask, pooled_scores  # noqa: E402  (same coarse input and scoring)

DATA = Path("/work/shared/data/naip-fields")
GSD = 1.0  # NAIP metres per pixel (the tiles are in EPSG:4326, so it is not read from them)


def split_ids(data: Path) -> tuple[list[str], list[str]]:
    """(train, held-out) scene ids: every fifth tile by sorted name is held out."""
    ids = sorted(r.scene_id for r in list_scenes(data))
    held = [s for i, s in enumerate(ids) if i % 5 == 4]
    return [s for s in ids if s not in held], held


def train(args: argparse.Namespace, train_ids: list[str]) -> Path:
    sources: list[dict[str, object]] = [
        {"path": str(args.data), "sparse": True, "include": train_ids, "weight": 1.0 - args.synth_share}
    ]
    if args.synth is not None and args.synth_share > 0:
        sources.append({"path": str(args.synth), "weight": args.synth_share})
    config = boundary_config_from_dict(
        {
            "sources": sources,
            "output_dir": str(args.out),
            "steps": args.steps,
            "batch_size": args.batch,
            "crop": args.crop,
            "learning_rate": args.lr,
            "depths": [args.depth] * 4,
            "num_threads": args.threads,
            "log_every": 50,
            "save_every": 100,
            "inference_size": 1024,  # NAIP tiles are 1024 px: the model then runs at native scale
        }
    )

    def show(step: int, logs: dict[str, float]) -> None:
        print(" ".join(f"{k}={v:.4g}" for k, v in logs.items()), flush=True)

    t0 = time.perf_counter()
    out = run_boundary(config, callbacks=[show])
    print(f"trained in {time.perf_counter() - t0:.0f} s -> {out}", flush=True)
    return out


def load(data: Path, ids: list[str]) -> list[tuple[np.ndarray, Tile]]:
    """(image, tile) for the given scene ids, in order."""
    refs = {r.scene_id: r for r in list_scenes(data)}
    out = []
    for sid in ids:
        scene = refs[sid].load()
        out.append((scene.image, Tile(scene.image, scene.labels.instance.astype(np.int32))))
    return out


def score(
    tiles: list[tuple[np.ndarray, Tile]], probs: list[np.ndarray], threshold: float, patch: int, grid: int
) -> dict[str, float]:
    preds = []
    for (_, tile), prob in zip(tiles, probs, strict=True):
        coarse = coarse_mask(np.where(tile.instance > 0, FIELD, 0).astype(np.uint8), patch, grid)
        result = refine(coarse, boundary=prob, gsd=GSD, threshold=threshold)  # other knobs: defaults
        preds.append((result.instance, result.semantic))
    return pooled_scores(preds, [t for _, t in tiles])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--synth", type=Path, default=None, help="`magseg synth` folder to train on too")
    parser.add_argument("--synth-share", type=float, default=0.3, help="share of crops drawn from --synth")
    parser.add_argument("--out", type=Path, default=Path("/work/runs/boundary"))
    parser.add_argument("--skip-train", action="store_true", help="score the model already in --out")
    parser.add_argument("--train-only", action="store_true", help="train (or resume), do not score")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--depth", type=int, default=2, help="SegFormer blocks per stage (4 stages)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    parser.add_argument(
        "--thresholds", default="0.05,0.1,0.2,0.3,0.5", help="refine thresholds to select from"
    )
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--grid", type=int, default=16)
    args = parser.parse_args()

    train_ids, held_ids = split_ids(args.data)
    print(f"held out: {', '.join(held_ids)}")
    out = args.out if args.skip_train else train(args, train_ids)
    size = sum(f.stat().st_size for f in out.glob("*.safetensors"))
    print(f"model: {out} ({size / 1e6:.2f} MB of safetensors)")
    if args.train_only:
        return

    model = load_boundary_model(out)
    fallback = load_boundary_model(None, gsd=GSD)  # what refine uses without a model
    methods = [("gradient", GradientBoundary(gsd=GSD)), ("model", model)]
    if not isinstance(fallback, GradientBoundary):
        methods.insert(1, (type(fallback).__name__, fallback))
    default_t = float(inspect.signature(refine).parameters["threshold"].default)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    train_tiles, held = load(args.data, train_ids), load(args.data, held_ids)
    coarse_preds = []
    for _, tile in held:
        coarse = coarse_mask(np.where(tile.instance > 0, FIELD, 0).astype(np.uint8), args.patch, args.grid)
        coarse_preds.append((ndimage.label(coarse == FIELD)[0], coarse))
    rows = [("coarse (no refine)", pooled_scores(coarse_preds, [t for _, t in held]))]
    for name, boundary in methods:
        best: tuple[float, float] = (-1.0, default_t)
        t0 = time.perf_counter()
        train_probs = [boundary.predict(img) for img, _ in train_tiles]
        for t in thresholds:  # select the threshold on the training tiles
            miou = score(train_tiles, train_probs, t, args.patch, args.grid)["mIoU"]
            print(f"  {name:<8} train threshold={t}: mIoU {miou:.3f}", flush=True)
            best = max(best, (miou, t))
        probs = [boundary.predict(img) for img, _ in held]
        for t in sorted({default_t, best[1]}):
            label = f"{name} t={t}" + (" (train-best)" if t == best[1] else "")
            rows.append((label, score(held, probs, t, args.patch, args.grid)))
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)

    print(f"\nheld-out NAIP tiles: {len(held_ids)}, p/g = {args.patch}/{args.grid}")
    print(
        f"{'method':<30} {'mIoU':>6} {'medIoU':>6} {'FNR':>6} {'FPR':>6} {'F1@.5':>6} {'n_pred':>6} {'n_truth':>7}"
    )
    for label, s in rows:
        print(
            f"{label:<30} {s['mIoU']:>6.3f} {s['medIoU']:>6.3f} {s['FNR']:>6.3f} {s['FPR']:>6.3f}"
            f" {s['F1@.5']:>6.3f} {s['n_pred']:>6} {s['n_truth']:>7}"
        )


if __name__ == "__main__":
    main()
