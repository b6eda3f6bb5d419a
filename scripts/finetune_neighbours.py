"""Teach the bundled tiny model its neighbours (issue 12, cross-patch context): a short SFT from its weights.

The same data recipe as scripts/train_tiny_model.py (synthetic seed 1, class-balanced, augmented; the 20
NAIP training tiles), but half of the synthetic prompts name the true classes of the cells just outside
the patch (SampleConfig.neighbours): the model learns to continue what its neighbours wrote, and runs as a
checkerboard of two passes at inference (magseg.inference.neighbours). NAIP prompts never name them (0
there means "not annotated", not background). Resumable stages; then compare on held-out scenes:

  .venv/bin/python scripts/finetune_neighbours.py --work runs/nb --naip ../shared/data/naip-fields --steps 1500
  .venv/bin/magseg eval --data runs/tiny/heldout --model runs/nb/sft --compare magseg/assets/tiny-magseg --json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from pathlib import Path

from magseg.bundled import BUNDLED_MODEL
from magseg.samples import write_samples
from magseg.synth import write_dataset
from magseg.train.config import config_from_dict
from magseg.train.sft import run_sft

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("train_tiny_model", HERE / "train_tiny_model.py")
assert _spec is not None and _spec.loader is not None
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)

SHARE = 0.5  # of the synthetic prompts that name the neighbours' edge cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/nb"))
    ap.add_argument("--naip", type=Path, default=None)
    ap.add_argument("--scenes", type=int, default=48, help="synthetic training scenes (seed 1)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--share", type=float, default=SHARE, help="of synthetic prompts naming neighbours")
    ap.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="the model to fine-tune")
    ap.add_argument("--seed", type=int, default=None, help="synthetic scene seed (default: training seed 1)")
    args = ap.parse_args()
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    if not (w / "synth").exists():
        seed = tiny.TRAIN_SEED if args.seed is None else args.seed
        if seed in (tiny.HELDOUT_SEED, 51):
            raise SystemExit(f"seed {seed} is a held-out or calibration seed; train on another")
        write_dataset(w / "synth", args.scenes, 512, 0.5, seed)
    sources = [w / "synth"]
    configs = [dataclasses.replace(tiny.SYNTH, neighbours=args.share)]
    if args.naip is not None:
        train_ids, _ = tiny.naip_split(args.naip)
        if not (w / "naip-train").exists():
            tiny.link_tiles(args.naip, train_ids, w / "naip-train")
        sources.append(w / "naip-train")
        configs.append(dataclasses.replace(tiny.NAIP, per_scene=48, neighbours=0.0))
    if not (w / "samples").exists():
        write_samples(sources, w / "samples", configs, seed=tiny.TRAIN_SEED)
    config = config_from_dict(
        {
            "preset": "tiny",
            "model": str(args.model),
            "data": str(w / "samples"),
            "seed": tiny.TRAIN_SEED,
            "sft": {
                "output_dir": str(w / "sft"),
                "learning_rate": args.lr,
                "max_steps": args.steps,
                "batch_size": 8,
                "logging_steps": 50,
                "save_steps": 250,
                "freeze_vision": True,
            },
        }
    )
    run_sft(config)


if __name__ == "__main__":
    main()
