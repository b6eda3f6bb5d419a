"""Recipe of the bundled tiny MAgSeg model: synth scenes -> samples -> tiny Gemma3 -> SFT (-> GRPO).

`.venv/bin/python scripts/train_tiny_model.py --work runs/tiny [--sft-steps 6000]`; each stage is skipped
when its output exists, so a stopped run resumes at the stage it was in.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from magseg.model import build_tiny_gemma3
from magseg.samples import SampleConfig, write_samples
from magseg.synth import write_dataset
from magseg.train import config_from_dict, run_grpo, run_sft

TRAIN_SEED = 1  # held-out evaluation uses another seed (e.g. 99): scenes never seen in training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("runs/tiny"))
    ap.add_argument("--scenes", type=int, default=160)
    ap.add_argument("--per-scene", type=int, default=64)
    ap.add_argument("--sft-steps", type=int, default=6000)
    ap.add_argument("--grpo-steps", type=int, default=0)
    args = ap.parse_args()
    w = args.work
    t0 = time.time()
    if not (w / "synth").exists():
        write_dataset(w / "synth", args.scenes, 512, 0.5, TRAIN_SEED, cloud_fraction=0.3)
        print(f"[{time.time() - t0:.0f}s] synth done", flush=True)
    if not (w / "samples").exists():
        cfg = SampleConfig(patch=64, grid=8, per_scene=args.per_scene, context_size=64, with_crop=True)
        write_samples([w / "synth"], w / "samples", cfg, seed=TRAIN_SEED, val_fraction=0.05)
        print(f"[{time.time() - t0:.0f}s] samples done", flush=True)
    if not (w / "base").exists():
        build_tiny_gemma3(w / "base", seed=0)
    base = {"preset": "tiny", "model": str(w / "base"), "data": str(w / "samples"), "seed": 0}
    if not (w / "sft" / "config.json").exists() and not (w / "sft" / "adapter_config.json").exists():
        sft = {"max_steps": args.sft_steps, "save_steps": 500, "logging_steps": 50, "output_dir": str(w / "sft")}
        run_sft(config_from_dict({**base, "sft": sft}))
        print(f"[{time.time() - t0:.0f}s] sft done", flush=True)
    if args.grpo_steps > 0 and not (w / "grpo" / "config.json").exists():
        grpo = {"init": str(w / "sft"), "max_steps": args.grpo_steps, "save_steps": 100, "logging_steps": 10,
                "output_dir": str(w / "grpo")}  # fmt: skip
        run_grpo(config_from_dict({**base, "grpo": grpo}))
        print(f"[{time.time() - t0:.0f}s] grpo done", flush=True)


if __name__ == "__main__":
    main()
