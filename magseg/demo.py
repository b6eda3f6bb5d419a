"""The demo: synthetic scenes -> RRLE patches -> stitch -> refine -> fiboa polygons -> scores.

Two writers of the patch RRLE run side by side: the bundled tiny model (what a model sees) and an oracle
that writes the true mask at the patch grid (the ceiling the g x g cells allow: the text round trip, what
coarse cells cost, and what refinement wins back).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from magseg.codec import decode, encode, mask_to_grid
from magseg.evaluate.scoring import ScenePair, pooled_scores
from magseg.labels import LabelRaster, write_label_raster
from magseg.metrics import format_table, mean_dice, scores_to_json
from magseg.patches import PatchLayout, crop_patch, stitch
from magseg.refine import refine
from magseg.sources import list_scenes
from magseg.synth import write_dataset
from magseg.vector import polygonize, write_layer
from magseg.viz import overlay, panels


@dataclass(frozen=True)
class DemoConfig:
    scenes: int = 2
    size: int = 512
    gsd: float = 0.5
    seed: int = 7
    patch: int = 64
    grid: int = 8
    model: bool = True  # also run the bundled tiny model on the scenes


def oracle_rrle(semantic: np.ndarray, layout: PatchLayout, grid: int) -> list[str]:
    """The RRLE a perfect model would write for each patch: the truth reduced to the g x g grid."""
    return [
        encode(mask_to_grid(crop_patch(semantic, x0, y0, layout.patch), grid)) for x0, y0 in layout.origins()
    ]


def run_demo(out: str | os.PathLike[str], config: DemoConfig, log: Callable[[str], None] = print) -> dict:
    """Run the demo into ``out``; returns the summary also written to ``out``/summary.json."""
    out = Path(out)
    t0 = time.perf_counter()
    log(f"1/4 synthesising {config.scenes} scenes of {config.size} px at {config.gsd} m ...")
    data = write_dataset(out / "synth", config.scenes, config.size, config.gsd, config.seed, overwrite=True)
    layers, summary_scenes = [], []
    coarse_pairs: list[ScenePair] = []
    refined_pairs: list[ScenePair] = []
    for ref in list_scenes(data):
        scene = ref.load()
        truth = scene.labels
        layout = PatchLayout(*scene.shape, config.patch)
        log(
            f"2/4 {ref.scene_id}: {len(layout)} patches -> RRLE at {config.grid}x{config.grid} -> decode -> stitch"
        )
        texts = oracle_rrle(truth.semantic, layout, config.grid)
        decoded = [decode(t, (config.grid, config.grid)) for t in texts]
        valid = sum(r.valid for _, r in decoded) / len(decoded)
        stitched = stitch([g for g, _ in decoded], layout)
        log(f"3/4 {ref.scene_id}: refine (image boundary fallback + watershed) and polygonize")
        coarse = refine(stitched)  # no image: connected components of the blocky mask
        refined = refine(stitched, scene.image, gsd=config.gsd, snap_px=config.patch // config.grid)
        labels = LabelRaster(refined.instance, refined.semantic, truth.transform, truth.crs)
        write_label_raster(out / "labels" / f"{ref.scene_id}.tif", labels)
        layer = polygonize(labels, min_area=10.0)
        layer["scene"] = ref.scene_id
        layers.append(layer.to_crs(4326))
        coarse_pairs.append(ScenePair(coarse.instance, coarse.semantic, truth.instance, truth.semantic))
        refined_pairs.append(ScenePair(refined.instance, refined.semantic, truth.instance, truth.semantic))
        summary_scenes.append({
            "scene": ref.scene_id, "patches": len(layout), "rrle_valid": valid,
            "mean_chars_per_patch": float(np.mean([len(t) for t in texts])),
            "mean_dice_coarse": mean_dice(stitched, truth.semantic),
            "mean_dice_refined": mean_dice(refined.semantic, truth.semantic),
        })  # fmt: skip
        if len(summary_scenes) == 1:
            panels(out / "quicklook.png", [
                ("image", scene.image.transpose(1, 2, 0)),
                ("truth", overlay(scene.image, truth.semantic, truth.instance)),
                (f"RRLE {config.grid}x{config.grid} per {config.patch} px patch", overlay(scene.image, stitched)),
                ("refined instances", overlay(scene.image, refined.semantic, refined.instance)),
            ])  # fmt: skip
    model_scores = _bundled_model_scores(data, config, log) if config.model else None
    log("4/4 writing the fiboa layer and scoring against the synthetic truth")
    fields = pd.concat(layers, ignore_index=True)
    fields["id"] = fields["scene"] + "/" + fields["id"]
    write_layer(gpd.GeoDataFrame(fields, crs=4326), out / "fields.parquet", collection="magseg-demo")

    coarse_scores, refined_scores = pooled_scores(coarse_pairs), pooled_scores(refined_pairs)
    summary = {
        "config": config.__dict__,
        "scenes": summary_scenes,
        "polygons": len(fields),
        "fields": int((fields["class"] == "field").sum()),
        "scores_coarse": scores_to_json(coarse_scores),
        "scores_refined": scores_to_json(refined_scores),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if model_scores is not None:
        summary["model"] = {k: v for k, v in model_scores.items() if k != "table"}
        log("\nbundled tiny model, refined:\n" + model_scores["table"])
    log("\noracle RRLE, coarse (connected components of the stitched cells):\n" + format_table(coarse_scores))
    log("\noracle RRLE, refined (EPOC-style boundary + watershed):\n" + format_table(refined_scores))
    fld_c, fld_r = coarse_scores["field"].mean_iou, refined_scores["field"].mean_iou
    log(f"\noracle fields mIoU coarse {fld_c:.3f} -> refined {fld_r:.3f}; {summary['fields']} field polygons")
    log(f"outputs: {out}/fields.parquet (fiboa), {out}/labels/, {out}/quicklook.png, {out}/summary.json")
    return summary


def _bundled_model_scores(data: Path, config: DemoConfig, log: Callable[[str], None]) -> dict | None:
    """Run the bundled model over the demo scenes with magseg eval's machinery; None when it is missing."""
    from magseg.evaluate import comparison_table, run_eval
    from magseg.evaluate.run import BUNDLED_MODEL

    if not BUNDLED_MODEL.is_dir():
        log(f"note: no bundled model at {BUNDLED_MODEL}; showing the oracle only")
        return None
    log(f"model: the bundled tiny model writes the RRLE of every patch ({BUNDLED_MODEL.name})")
    report = run_eval(data, BUNDLED_MODEL, batch_size=16)
    return {
        "mean_dice": report["mean_dice"],
        "patch_dice": report["patch_dice"],
        "decode_valid_rate": report["decode_valid_rate"],
        "tokens_per_patch": report["tokens_per_patch"],
        "patches_per_s": report["patches_per_s"],
        "field": report["field"],
        "table": comparison_table(report),
    }
