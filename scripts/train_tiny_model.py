"""Recipe of the bundled tiny MAgSeg model: synth scenes + real NAIP tiles -> samples -> tiny Gemma3 ->
pre-alignment of the vision tower -> SFT (-> GRPO) -> bundle.

`.venv/bin/python scripts/train_tiny_model.py --work runs/tiny --naip ../shared/data/naip-fields
--bundle magseg/assets/tiny-magseg`; each stage is skipped when its output exists, so a stopped run resumes
at the stage it was in (SFT resumes from its last checkpoint). The bundle stage evaluates on held-out
synthetic scenes (seed 99, 1024 px, never used in training) and on the NAIP validation tiles (never trained
on), draws the learning curve over the SFT checkpoints and writes the model card.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from magseg.atomic import atomic_dir
from magseg.evaluate import comparison_table, evaluate_scenes, run_eval
from magseg.evaluate.report import dice_table
from magseg.evaluate.run import evaluate_baselines
from magseg.inference import Predictor
from magseg.inference.meta import ModelFormat, write_model_card_meta
from magseg.model import build_tiny_gemma3
from magseg.refine import load_boundary_model
from magseg.samples import SampleConfig, write_samples
from magseg.sources import list_scenes
from magseg.synth import write_dataset
from magseg.train import config_from_dict, run_align, run_grpo, run_sft
from magseg.train.boundary import load_boundary_config, run_boundary
from magseg.viz import line_chart_png

TRAIN_SEED = 1
BOUNDARY_CONFIG = Path(__file__).resolve().parents[1] / "jobs/configs/boundary_bundle_cpu.yaml"
HELDOUT_SEED = 99  # evaluation scenes: a seed never used in training
# seam re-reads the bundle runs with (magseg.inference.rereads; decoding.rereads in its card): the largest
# share keeping output tokens <= 1.3x on the calibration scenes (seed 51), README "Cross-patch context"
REREADS = 0.2
#: One prompt format; synthetic scenes drawn class-balanced, NAIP patches mostly labelled (0 = not annotated).
SYNTH = SampleConfig(patch=64, grid=8, per_scene=64, context_size=64, with_crop=True, window=512,
                     balance=0.5, augment=True, jitter=0.1)  # fmt: skip
NAIP = SampleConfig(**{**SYNTH.__dict__, "per_scene": 192, "balance": 0.0, "min_labelled": 0.6})
WEIGHTS = ("model.safetensors", "config.json", "generation_config.json")
PROCESSOR = ("processor_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def naip_split(root: Path) -> tuple[list[str], list[str]]:
    """The NAIP tiles to train on and to validate on: sorted ids, the first three (shipped in tests/data)
    and every fourth after them are validation."""
    ids = [ref.scene_id for ref in list_scenes(root)]
    val = set(ids[:3] + ids[3::4])
    return [i for i in ids if i not in val], [i for i in ids if i in val]


def link_tiles(root: Path, ids: list[str], out: Path) -> Path:
    """A folder of symlinks to some tiles of an images/ + masks/ folder (with their sidecar files)."""
    with atomic_dir(out) as tmp:
        for sub in ("images", "masks"):
            (tmp / sub).mkdir()
            for path in sorted((root / sub).iterdir()):
                if path.name.split(".")[0] in ids or any(path.name.startswith(i + ".") for i in ids):
                    os.symlink(path.resolve(), tmp / sub / path.name)
    return out


def _final(run: Path) -> Path:
    """The trained model of a run folder (its top level holds the final save)."""
    return (
        run
        if (run / "model.safetensors").exists()
        else max(run.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    )


def bundled_report(report: dict[str, Any], grpo_helps: bool) -> dict[str, Any]:
    """The eval report with the bundled weights' figures at the top (readers such as `magseg plan` use them);
    the other checkpoint moves under "compare"."""
    if grpo_helps or "compare" not in report:
        return report
    grpo = {k: v for k, v in report.items() if k != "compare"}
    shared = {k: report[k] for k in ("baselines", "n_scenes", "refine_s", "data", "boundary") if k in report}
    return {**report["compare"], **shared, "compare": {k: v for k, v in grpo.items() if k not in shared}}


def learning_curve(work: Path, heldout: Path, naip_val: Path | None) -> list[dict[str, Any]]:
    """Held-out mean DICE and fields mIoU of every SFT checkpoint (1 synthetic scene, 1 NAIP tile)."""
    path = work / "curve.json"
    points: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    done = {p["step"] for p in points}
    state = (
        json.loads((work / "sft" / "trainer_state.json").read_text())
        if (work / "sft" / "trainer_state.json").exists()
        else {}
    )
    seconds = float(json.loads((work / "align" / "align_history.json").read_text())[-1]["seconds"])
    runtime = next((h["train_runtime"] for h in state.get("log_history", []) if "train_runtime" in h), 0.0)
    per_step = float(runtime) / max(int(state.get("global_step", 1)), 1)
    ckpts = sorted(work.glob("sft/checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    for ckpt in ckpts:
        step = int(ckpt.name.split("-")[1])
        if step in done:
            continue
        point: dict[str, Any] = {"step": step, "cpu_hours": (seconds + per_step * step) * 2 / 3600}
        predictor = Predictor.from_pretrained(ckpt, batch_size=16)
        syn = evaluate_scenes(list_scenes(heldout)[:1], predictor)
        point["synth_mean_dice"], point["synth_fields_miou"] = (
            syn["mean_dice"],
            syn["field"]["mean_iou"],
        )
        if naip_val is not None:
            real = evaluate_scenes(list_scenes(naip_val)[:1], predictor)
            point["naip_fields_miou"] = real["field"]["mean_iou"]
        print(f"curve {point}", flush=True)
        points.append(point)
        path.write_text(json.dumps(sorted(points, key=lambda p: p["step"]), indent=2))
    return sorted(points, key=lambda p: p["step"])


def boundary_report(work: Path, naip_val: Path | None) -> dict[str, Any]:
    """Fields mIoU / F1@0.5 of the truth's own mask at the model's grid (the ceiling) and of field
    everywhere, refined with the image fallback, the trained boundary model alone and the two fused: on
    the NAIP training tiles (where fusing was chosen), the NAIP validation tiles and the held-out scenes."""
    trained = load_boundary_model(work / "boundary")
    alone = load_boundary_model(work / "boundary")
    alone.fuse_image_fallback = False  # type: ignore[attr-defined]
    variants = {"image fallback": None, "boundary model": alone, "fused (max)": trained}
    grid = ModelFormat(patch=SYNTH.patch, grid=SYNTH.grid)
    sets = {"NAIP train": work / "naip-train", "NAIP val": naip_val, "synth held-out": work / "heldout"}
    out: dict[str, Any] = {}
    for name, folder in sets.items():
        if folder is None:
            continue
        for variant, model in variants.items():
            r = evaluate_baselines(list_scenes(folder), grid, None, boundary=model)
            out.setdefault(name, {})[variant] = {
                k: {"fields_miou": r[k]["field"]["mean_iou"], "fields_f1": r[k]["field"]["f1"]}
                for k in ("truth_at_grid", "field_everywhere")
            }
            print(f"boundary {name} {variant}: {out[name][variant]}", flush=True)
    return out


def boundary_curve_png(state: Path, out: Path) -> None:
    """The boundary model's learning curve from its training log: training loss and, on the held-out NAIP
    validation tiles, loss and boundary F1 against the step."""
    log = json.loads(state.read_text())["log"]
    val = [r for r in log if "val_f1" in r]
    series = {
        "training loss": [(r["step"], r["loss"]) for r in log if "loss" in r],
        "NAIP val loss": [(r["step"], r["val_loss"]) for r in val],
        "NAIP val boundary F1": [(r["step"], r["val_f1"]) for r in val],
    }
    line_chart_png(series, out, x_label="step", title="boundary model, CPU")


def bundle_boundary(work: Path, dest: Path, report: dict[str, Any], steps: int) -> None:
    """Copy the boundary model, its training log and a card into ``dest``."""
    rows = [f"| {data} | {variant} | {v['truth_at_grid']['fields_miou']:.3f} | {v['field_everywhere']['fields_miou']:.3f} |"
            for data, by in report.items() for variant, v in by.items()]  # fmt: skip
    with atomic_dir(dest) as tmp:
        for name in ("config.json", "model.safetensors", "preprocessor_config.json", "trainer_state.json"):
            shutil.copy2(work / "boundary" / name, tmp / name)
        (tmp / "eval.json").write_text(json.dumps(report, indent=2))
        boundary_curve_png(work / "boundary" / "trainer_state.json", tmp / "learning_curve.png")
        cfg = json.loads((work / "boundary" / "config.json").read_text())
        params = (work / "boundary" / "model.safetensors").stat().st_size / 4e6  # float32 weights
        sizes, depths = ("-".join(str(v) for v in cfg[k]) for k in ("hidden_sizes", "depths"))
        card = BOUNDARY_CARD.format(
            steps=steps, rows="\n".join(rows), sizes=sizes, depths=depths, params=params
        )
        (tmp / "README.md").write_text(card)
    print(f"bundled {work / 'boundary'} -> {dest}", flush=True)


def bundle(work: Path, dest: Path, naip_val: Path | None, steps: dict[str, int]) -> None:
    """Evaluate on held-out scenes, then copy the best model + processor + card into ``dest``."""
    heldout = work / "heldout"
    if not heldout.exists():
        write_dataset(heldout, 4, 1024, 0.5, HELDOUT_SEED, cloud_fraction=0.3)
    sft, grpo = _final(work / "sft"), work / "grpo"
    has_grpo = (grpo / "model.safetensors").exists()
    # the refinement the bundle ships with: this run's boundary model (fused as it asks), else the fallback
    boundary = str(work / "boundary") if (work / "boundary" / "config.json").exists() else "none"
    report: dict[str, Any] = run_eval(heldout, _final(grpo) if has_grpo else sft, compare=sft if has_grpo else None,
                                      batch_size=16, boundary=boundary)  # fmt: skip
    table = comparison_table(report)
    print(table, flush=True)
    naip_report: dict[str, Any] | None = None
    naip_table = "(no NAIP validation tiles given)"
    if naip_val is not None:
        train_tiles = work / "naip-train"
        naip_report = run_eval(naip_val, _final(grpo) if has_grpo else sft, compare=sft if has_grpo else None,
                               train_data=train_tiles, batch_size=16, boundary=boundary)  # fmt: skip
        naip_table = comparison_table(naip_report)
        print(naip_table, flush=True)
    points = learning_curve(work, heldout, naip_val)
    # GRPO is kept only if it does not lower held-out mean DICE (the training reward can rise just by
    # sharpening sampling; held-out greedy DICE is what counts)
    grpo_helps = has_grpo and report["mean_dice"] >= report["compare"]["mean_dice"]
    chosen = _final(grpo) if grpo_helps else sft
    with atomic_dir(dest) as tmp:
        for name in WEIGHTS + PROCESSOR:
            if (chosen / name).exists():
                shutil.copy2(chosen / name, tmp / name)
            elif (work / "base" / name).exists():
                shutil.copy2(work / "base" / name, tmp / name)
        write_model_card_meta(
            tmp,
            SYNTH,
            extra={
                "train_seed": TRAIN_SEED,
                "heldout_seed": HELDOUT_SEED,
                **steps,
                "stage": "grpo" if grpo_helps else "sft",
                "decoding": {"rereads": REREADS},
            },  # fmt: skip
        )
        (tmp / "eval.json").write_text(json.dumps(bundled_report(report, grpo_helps), indent=2, default=str))
        if naip_report is not None:
            naip_report = bundled_report(naip_report, grpo_helps)
            (tmp / "eval_naip.json").write_text(json.dumps(naip_report, indent=2, default=str))
        (tmp / "learning_curve.json").write_text(json.dumps(points, indent=2))
        series = {k: [(p["step"], p[k]) for p in points if k in p]
                  for k in ("synth_mean_dice", "synth_fields_miou", "naip_fields_miou")}  # fmt: skip
        line_chart_png(series, tmp / "learning_curve.png", x_label="SFT step", title="held-out, greedy")
        (tmp / "README.md").write_text(
            MODEL_CARD.format(
                table=table,
                naip_table=naip_table,
                dice=dice_table(report),
                naip_dice=dice_table(naip_report) if naip_report is not None else "",
                stage="grpo" if grpo_helps else "sft",
                **steps,
            )
        )
    print(f"bundled {chosen} -> {dest}", flush=True)


BOUNDARY_CARD = """# tiny-boundary

The EPOC boundary model magseg refines with by default: a tiny SegFormer (hidden sizes {sizes}, blocks
{depths}, ~{params:.1f}M parameters) trained from scratch on CPU, {steps} steps of 8 random 256 px crops, on
the bundled MAgSeg model's training data: the 160 synthetic scenes (seed 1, 0.5 m) and the 20 NAIP training
tiles (1 m, drawn 1.5x as often; sparse: 0 = "not annotated" pixels far from a field are not supervised).
It runs at native pixel scale (any tile size). Refinement takes the pixelwise max of its map and the
image fallback's (`fuse_image_fallback` in preprocessor_config.json), chosen on the NAIP training tiles.
Refinement then merges the pieces of a field whose shared border averages under 0.6 on that map
(`merge_below` in preprocessor_config.json; magseg.refine.merge_weak_borders), chosen on the NAIP training
tiles: the watershed starts a piece at every low-boundary marker, and this model's map parts true
neighbours by more than 0.6 but a field's own furrows by less (the image fallback's scale differs: it asks none).

Recipe: `.venv/bin/python scripts/train_tiny_model.py --work runs/tiny --naip ../shared/data/naip-fields
--boundary-steps {steps} --bundle-boundary magseg/assets/tiny-boundary` (config:
jobs/configs/boundary_bundle_cpu.yaml); training log: trainer_state.json, drawn as learning_curve.png (training
loss; loss and boundary F1 on the NAIP validation tiles against the step). The MAgSeg model's per-class figures
refined with this model, beside both baselines and the ceiling: `magseg/assets/tiny-magseg/README.md`.

Fields mIoU after refinement (default threshold 0.3) of the truth's own class mask at the model's 8 px grid
(the ceiling any model at that grid meets) and of "field everywhere" (`eval.json`):

| data | boundary map | truth at grid | field everywhere |
|---|---|---|---|
{rows}

`magseg eval|map|serve|refine --boundary none` refines with the image fallback alone.
"""


MODEL_CARD = """# tiny-magseg

A ~4.8M-parameter Gemma3-architecture image-text-to-text model trained from scratch on magseg's synthetic
smallholder landscapes and 20 real NAIP tiles, bundled so the demo and the tests have a real model that
writes RRLE masks. It is small: it shows the method end to end on CPU.

Recipe (one command; each stage resumes; ~75 min on 2 CPU cores): `.venv/bin/python
scripts/train_tiny_model.py --work runs/tiny --naip ../shared/data/naip-fields --align-steps {align_steps}
--sft-steps {sft_steps} --grpo-steps {grpo_steps} --boundary-steps 3000 --bundle-boundary
magseg/assets/tiny-boundary --bundle magseg/assets/tiny-magseg`
- data: `magseg synth` seed 1, 160 scenes of 512 px at 0.5 m (karnal), 64 samples each, class-balanced
  (half the patches over a pixel of a non-majority class), random flips/turns and colour jitter; NAIP
  (1 m): 20 training tiles (`naip_split` in the script holds 10 out), 192 samples each from 512 px windows,
  patches at least 60% labelled (0 there means "not annotated"). p = 64 px, g = 8, scene context 64 px
  + patch crop 64 px (one image token per 8 px cell); scenes larger than 512 px are seen as 512 px windows
  in training and inference alike (`window` in magseg.json);
- model: `magseg.model.build_tiny_gemma3` defaults (SigLIP 128 x 4 layers, text 256 x 4 layers, 64 image tokens);
- pre-alignment (`magseg.train.align`): {align_steps} steps, vision tower + projector trained so that each
  crop token predicts its cell's class through a throwaway linear head (class-weighted cross-entropy);
- SFT: full fine-tuning of the language model (vision frozen), lr 2e-3 cosine, batch 8, {sft_steps} steps, CPU;
- GRPO: {grpo_steps} steps from the SFT model, reward mean DICE, 4 prompts x 8 rollouts, beta 0.04, lr 1e-4, vision frozen.

Bundled weights: **{stage}**. Learning curve: `learning_curve.png` (`learning_curve.json`).

Held-out synthetic scenes (`magseg synth` seed 99, 4 scenes of 1024 px, greedy, default refinement: the
bundled boundary model fused with the image fallback; "compare" is the SFT model; `eval.json`):

```
{table}
```

Pixel DICE per class (the same scenes and methods):

```
{dice}
```

NAIP validation tiles (10 tiles never trained on; pixel classifier fitted on the 20 training tiles;
`eval_naip.json`; the truth holds only fields, so every tree/cloud/pond pixel the model writes counts
against its mean DICE):

```
{naip_table}
```

```
{naip_dice}
```
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=Path, default=Path("runs/tiny"))
    ap.add_argument("--naip", type=Path, default=None, help="naip-fields folder (images/ + masks/)")
    ap.add_argument("--scenes", type=int, default=160)
    ap.add_argument("--align-steps", type=int, default=1500)
    ap.add_argument("--sft-steps", type=int, default=3000)
    ap.add_argument("--grpo-steps", type=int, default=0)
    ap.add_argument("--boundary-steps", type=int, default=0, help="train the EPOC boundary model too")
    ap.add_argument("--bundle-boundary", type=Path, default=None, help="copy the boundary model + card here")
    ap.add_argument("--bundle", type=Path, default=None, help="copy the final model + card here")
    args = ap.parse_args()
    w = args.work.resolve()
    t0 = time.time()
    if not (w / "synth").exists():
        write_dataset(w / "synth", args.scenes, 512, 0.5, TRAIN_SEED, cloud_fraction=0.3)
        print(f"[{time.time() - t0:.0f}s] synth done", flush=True)
    sources, configs = [w / "synth"], [SYNTH]
    naip_val = None
    if args.naip is not None:
        train_ids, val_ids = naip_split(args.naip)
        if not (w / "naip-train").exists():
            link_tiles(args.naip, train_ids, w / "naip-train")
            link_tiles(args.naip, val_ids, w / "naip-val")
        sources.append(w / "naip-train")
        configs.append(NAIP)
        naip_val = w / "naip-val"
    if not (w / "samples").exists():
        write_samples(sources, w / "samples", configs, seed=TRAIN_SEED, val_fraction=0.03)
        print(f"[{time.time() - t0:.0f}s] samples done", flush=True)
    if not (w / "base").exists():
        build_tiny_gemma3(w / "base", seed=0)
    base = {"preset": "tiny", "model": str(w / "base"), "data": str(w / "samples"), "seed": 0}
    if not (w / "align" / "model.safetensors").exists():
        align = {"steps": args.align_steps, "output_dir": str(w / "align")}
        run_align(config_from_dict({**base, "eval_split": "val", "align": align}),
                  log=lambda e: print(f"[{time.time() - t0:.0f}s] align {e}", flush=True))  # fmt: skip
    if not (w / "sft" / "config.json").exists():
        sft = {"max_steps": args.sft_steps, "save_steps": 500, "logging_steps": 50,
               "output_dir": str(w / "sft"), "freeze_vision": True}  # fmt: skip
        run_sft(config_from_dict({**base, "model": str(w / "align"), "sft": sft}))
        print(f"[{time.time() - t0:.0f}s] sft done", flush=True)
    if args.grpo_steps > 0 and not (w / "grpo" / "config.json").exists():
        grpo = {"init": str(w / "sft"), "max_steps": args.grpo_steps, "save_steps": 50, "logging_steps": 10,
                "output_dir": str(w / "grpo"), "freeze_vision": True, "learning_rate": 1e-4,
                "prompts_per_step": 4, "num_generations": 8, "max_completion_length": 256}  # fmt: skip
        run_grpo(config_from_dict({**base, "model": str(w / "align"), "grpo": grpo}))
        print(f"[{time.time() - t0:.0f}s] grpo done", flush=True)
    if args.boundary_steps > 0 and not (w / "boundary" / "config.json").exists():
        # the EPOC boundary model on the same training data (scenes, not samples), NAIP val held out
        boundary_sources = (
            [{"path": str(w / "synth")}, {"path": str(w / "naip-train"), "sparse": True, "weight": 1.5}]
            if naip_val
            else None
        )
        val = [{"path": str(naip_val), "sparse": True}] if naip_val else []
        run_boundary(load_boundary_config(BOUNDARY_CONFIG, output_dir=str(w / "boundary"), steps=args.boundary_steps,
                                          sources=boundary_sources or [{"path": str(w / "synth")}], val_sources=val))  # fmt: skip
        print(f"[{time.time() - t0:.0f}s] boundary done", flush=True)
    if args.bundle_boundary is not None:
        if not (w / "heldout").exists():
            write_dataset(w / "heldout", 4, 1024, 0.5, HELDOUT_SEED, cloud_fraction=0.3)
        bundle_boundary(w, args.bundle_boundary, boundary_report(w, naip_val), args.boundary_steps)
    if args.bundle is not None:
        steps = {"align_steps": args.align_steps, "sft_steps": args.sft_steps, "grpo_steps": args.grpo_steps}
        bundle(w, args.bundle, naip_val, steps)


if __name__ == "__main__":
    main()
