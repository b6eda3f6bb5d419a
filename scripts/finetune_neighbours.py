"""Teach the bundled tiny model its neighbours (issue 12, cross-patch context): a short SFT from its weights.

The same data recipe as scripts/train_tiny_model.py (synthetic seed 1, class-balanced, augmented; the 20
NAIP training tiles), but half of the synthetic prompts name the true classes of the cells just outside
the patch (SampleConfig.neighbours): the model learns to continue what its neighbours wrote, and runs as a
checkerboard of two passes at inference (magseg.inference.neighbours). NAIP prompts never name them (0
there means "not annotated", not background). Resumable stages; then compare on held-out scenes:

  .venv/bin/python scripts/finetune_neighbours.py --work runs/nb --naip ../shared/data/naip-fields --steps 1500
  .venv/bin/magseg eval --data runs/tiny/heldout --model runs/nb/sft --compare magseg/assets/tiny-magseg --json

The bundle's later fine-tunes use it with plain prompts (--share 0) and fresh scenes (--seed); steps 6-7
taught wells: --grid-method weighted --oversample well (the model card gives each command).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import re
import shutil
from pathlib import Path
from typing import Any

from datasets import concatenate_datasets

from magseg.bundled import BUNDLED_MODEL
from magseg.classes import CLASSES
from magseg.codec import GRID_METHODS
from magseg.evaluate.run import evaluate_scenes
from magseg.inference import Predictor
from magseg.inference.meta import read_model_meta
from magseg.samples import SampleConfig, load_samples, write_samples
from magseg.sources import list_scenes
from magseg.synth import write_dataset
from magseg.train.config import config_from_dict
from magseg.train.sft import run_sft
from magseg.viz import line_chart_png

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("train_tiny_model", HERE / "train_tiny_model.py")
assert _spec is not None and _spec.loader is not None
tiny = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny)

SHARE = 0.5  # of the synthetic prompts that name the neighbours' edge cells


def extend_curve(card_dir: Path, runs: list[Path], heldout: Path, naip_val: Path) -> list[dict[str, Any]]:
    """Append every checkpoint of these fine-tune runs (in order) to the bundle's learning curve, on the
    same held-out scene and NAIP tile as scripts/train_tiny_model.py's points (independent patches, as the
    bundle runs), and redraw learning_curve.png. Steps and CPU hours continue from the curve's last point; a run
    the curve holds already is skipped."""
    points: list[dict[str, Any]] = json.loads((card_dir / "learning_curve.json").read_text())
    step0, hours0 = points[-1]["step"], points[-1]["cpu_hours"]
    for run in runs:
        if any(p.get("stage") == f"fine-tune {run.parent.name}" for p in points):
            print(f"curve: {run} is drawn already, skipped", flush=True)
            continue
        state = json.loads((run / "trainer_state.json").read_text())
        runtime = next(h["train_runtime"] for h in state["log_history"] if "train_runtime" in h)
        per_step = float(runtime) / int(state["global_step"])
        for ckpt in sorted(run.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
            step = int(ckpt.name.split("-")[1])
            predictor = Predictor.from_pretrained(ckpt, batch_size=64, neighbours=0.0)
            syn = evaluate_scenes(list_scenes(heldout)[:1], predictor)
            real = evaluate_scenes(list_scenes(naip_val)[:1], predictor)
            point = {
                "step": step0 + step,
                "cpu_hours": hours0 + per_step * step * 2 / 3600,
                "synth_mean_dice": syn["mean_dice"],
                "synth_fields_miou": syn["field"]["mean_iou"],
                "naip_fields_miou": real["field"]["mean_iou"],
                "stage": f"fine-tune {run.parent.name}",
            }
            print(f"curve {point}", flush=True)
            points.append(point)
        step0, hours0 = points[-1]["step"], points[-1]["cpu_hours"]
    (card_dir / "learning_curve.json").write_text(json.dumps(points, indent=2))
    series = {k: [(p["step"], p[k]) for p in points if k in p]
              for k in ("synth_mean_dice", "synth_fields_miou", "naip_fields_miou")}  # fmt: skip
    title = "held-out, greedy (SFT 0-4000, GRPO, then the fine-tunes)"
    line_chart_png(series, card_dir / "learning_curve.png", x_label="SFT step", title=title)
    return points


def oversample(samples: Path, work: Path, config: SampleConfig, name: str, draws: int) -> int:
    """Add to the training split every sample that writes class ``name`` from ``draws`` more passes over the
    synthetic scenes of ``work`` (seeds 2, 3, ...; each patch placed over a minority class, balance 1; kept
    in work/samples-NAME2, ...), then shuffle it into one shard. For a class too small for the plain draws
    to teach (wells: one sample in 15 writes one); returns the number of samples added."""
    has = re.compile(rf"\b{re.escape(name)} \*")
    base = load_samples(samples, "train")
    parts = [base]
    for seed in range(2, 2 + draws):
        extra = work / f"samples-{name}{seed}"
        if not extra.exists():
            write_samples([work / "synth"], extra, [dataclasses.replace(config, balance=1.0)], seed=seed)
        found = load_samples(extra, "train")
        parts.append(found.filter(lambda text: has.search(text) is not None, input_columns="solution"))
    merged = concatenate_datasets(parts).shuffle(seed=1)
    shutil.rmtree(samples / "train")
    (samples / "train").mkdir()
    merged.to_parquet(str(samples / "train" / "train-00000.parquet"))
    return len(merged) - len(base)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/nb"))
    ap.add_argument("--naip", type=Path, default=None)
    ap.add_argument("--scenes", type=int, default=48, help="synthetic training scenes (seed 1)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--share", type=float, default=SHARE, help="of synthetic prompts naming neighbours")
    ap.add_argument("--model", type=Path, default=BUNDLED_MODEL, help="the model to fine-tune")
    ap.add_argument(
        "--grid-method",
        default=None,
        choices=GRID_METHODS,
        help="how target cells get their class (default: the format the model was trained with)",
    )
    ap.add_argument("--seed", type=int, default=None, help="synthetic scene seed (default: training seed 1)")
    ap.add_argument(
        "--train-vision", action="store_true", help="train the vision tower too (default: frozen)"
    )
    ap.add_argument(
        "--vision-lr-scale",
        type=float,
        default=1.0,
        help="with --train-vision: the tower + projector learn at --lr x this",
    )
    ap.add_argument(
        "--naip-per-tile", type=int, default=48, help="samples drawn from each NAIP training tile"
    )
    ap.add_argument(
        "--naip-min-labelled",
        type=float,
        default=tiny.NAIP.min_labelled,
        help="NAIP patches are redrawn below this labelled share (lower: more woods, yards and roads)",
    )
    ap.add_argument(
        "--naip-woods",
        action="store_true",
        help="label the NAIP tiles' unannotated woods as tree (magseg.samples.pseudo)",
    )
    ap.add_argument(
        "--oversample",
        default=None,
        choices=[c for c in CLASSES if c != "others"],
        help="a class to add more synthetic samples of (e.g. well), see --oversample-draws",
    )
    ap.add_argument(
        "--oversample-draws", type=int, default=3, help="with --oversample: extra passes over the scenes"
    )
    ap.add_argument(
        "--val-fraction", type=float, default=0.0, help="share of the samples kept out of training"
    )
    ap.add_argument(
        "--curve",
        nargs="+",
        type=Path,
        default=None,
        help="instead of training: append these runs' checkpoints to the bundle's learning curve",
    )
    ap.add_argument("--heldout", type=Path, default=Path("runs/tiny/heldout"))
    args = ap.parse_args()
    if args.curve:
        extend_curve(BUNDLED_MODEL, args.curve, args.heldout, args.work / "naip-val")
        return
    w = args.work
    w.mkdir(parents=True, exist_ok=True)
    if not (w / "synth").exists():
        seed = tiny.TRAIN_SEED if args.seed is None else args.seed
        if seed in (tiny.HELDOUT_SEED, 98, 51):  # held-out 4 and 12 scenes, calibration
            raise SystemExit(f"seed {seed} is a held-out or calibration seed; train on another")
        write_dataset(w / "synth", args.scenes, 512, 0.5, seed)
    sources = [w / "synth"]
    recorded = read_model_meta(args.model)
    method = args.grid_method or (recorded.grid_method if recorded is not None else "majority")
    configs = [dataclasses.replace(tiny.SYNTH, neighbours=args.share, grid_method=method)]
    if args.naip is not None:
        train_ids, _ = tiny.naip_split(args.naip)
        if not (w / "naip-train").exists():
            tiny.link_tiles(args.naip, train_ids, w / "naip-train")
        sources.append(w / "naip-train")
        naip = dataclasses.replace(
            tiny.NAIP,
            per_scene=args.naip_per_tile,
            neighbours=0.0,
            grid_method=method,
            min_labelled=args.naip_min_labelled,
            woods=args.naip_woods or tiny.NAIP.woods,
        )
        configs.append(naip)
    if not (w / "samples").exists():  # written whole, then renamed: a resumed run never trains on half of it
        partial = w / "samples.partial"
        shutil.rmtree(partial, ignore_errors=True)
        write_samples(sources, partial, configs, seed=tiny.TRAIN_SEED, val_fraction=args.val_fraction)
        if args.oversample:
            added = oversample(partial, w, configs[0], args.oversample, args.oversample_draws)
            print(f"oversample: {added} more samples writing {args.oversample}", flush=True)
        partial.rename(w / "samples")
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
                "freeze_vision": not args.train_vision,
                "vision_lr_scale": args.vision_lr_scale,
            },
        }
    )
    run_sft(config)


if __name__ == "__main__":
    main()
