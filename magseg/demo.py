"""The demo: the region job on seeded synthetic scenes (≥ 1 km²) with the bundled model, scored against the truth.

Synthesise scenes into an embedded stac-geoparquet catalog -> `magseg map` over their bbox on a local
Ray (read tiles, the bundled tiny model writes every patch's RRLE, decode, stitch, refine, join seams)
-> fiboa layer, export, quick look, HTML map -> the layer rasterised back onto each scene's grid and
scored with the seed's metrics against the synthetic truth.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from rasterio.crs import CRS
from shapely.geometry import shape

from magseg.atomic import atomic_path
from magseg.bundled import BUNDLED_MODEL
from magseg.confidence import matched_predictions, reliability
from magseg.evaluate.report import (
    class_scores,
    confidence_lines,
    layer_seam_line,
    lead_lines,
    versus_table,
)
from magseg.evaluate.run import fit_baseline_classifier
from magseg.evaluate.scoring import MethodScores, SceneIoU, iou_difference
from magseg.inference.meta import resolve_config
from magseg.labels import rasterize_layer
from magseg.mapping import read_partitioned
from magseg.mapping.config import MapConfig
from magseg.mapping.pipeline import run_region
from magseg.metrics import format_table
from magseg.metrics.seams import SeamCounts, world_grid_origins
from magseg.sources import list_scenes
from magseg.stac import open_catalog
from magseg.synth import write_dataset
from magseg.vector import CONFIDENCE


@dataclass(frozen=True)
class DemoConfig:
    scenes: int = 4  # 2 x 2 scenes of 1024 px at 0.5 m: 1.05 km²
    size: int = 1024
    gsd: float = 0.5
    seed: int = 7
    location: str = "karnal"
    progress: bool = True  # the region job's progress bar
    verbose: bool = False  # library logs on the console instead of the run folder


@dataclass(frozen=True)
class PatchGrid:
    """Where a region job's patches lay: lines every ``spacing`` m from ``offset`` in ``crs``; ``cell`` m
    between the RRLE cell lines inside a patch."""

    crs: str
    spacing: float
    offset: float
    cell: float

    @classmethod
    def of_run(cls, run: dict[str, Any], patch_px: int, grid: int) -> PatchGrid | None:
        """The grid of a region run: patches start at each tile's read window (core minus margin); None
        when the tile core is not a whole number of patches (each tile's patches then lie apart)."""
        cfg = run["config"]
        if cfg["tile_px"] % patch_px:
            return None
        spacing = patch_px * cfg["gsd"]
        return cls(str(run["crs"]), spacing, -cfg["margin_px"] * cfg["gsd"] % spacing, spacing / grid)


def score_layer(
    layer: gpd.GeoDataFrame, data: Path, patches: PatchGrid | None = None
) -> tuple[dict[str, Any], MethodScores]:
    """The seed's per-class scores, pixel DICE per class and the mean DICE of ``layer`` against every
    scene's truth (the layout of `magseg eval`'s method summaries), and, when the layer carries
    magseg:confidence, how well it predicts which polygons match the truth at IoU >= 0.5 (``confidence``).
    With the region job's ``patches``, also the layer's excess disagreement across the patch seams and
    across the cell lines inside patches (``seams``; scenes on another grid are left out of it). Also returns
    the per-scene scores (for the intervals of one layer's lead over another)."""
    scores = MethodScores()
    seams = SeamCounts()
    conf: list[np.ndarray] = []
    hits: list[np.ndarray] = []
    fields: list[np.ndarray] = []
    for ref in list_scenes(data):
        truth = ref.load().labels
        pred = rasterize_layer(layer, truth.shape, truth.transform, truth.crs)
        scores.add(pred.instance, pred.semantic, truth.instance, truth.semantic)
        if patches is not None and truth.crs is not None and truth.crs == CRS.from_user_input(patches.crs):
            origins = world_grid_origins(truth.transform, truth.shape, patches.spacing, patches.offset)
            scale = abs(truth.transform.a)
            if origins is not None:
                step = round(patches.spacing / scale)
                seams.add(pred.semantic, truth.semantic, origins, step, round(patches.cell / scale))
        if CONFIDENCE in layer.columns and len(layer):
            ids = np.unique(pred.instance[pred.instance > 0])  # instance id i + 1: the layer's row i
            conf.append(layer[CONFIDENCE].to_numpy(np.float64)[ids - 1])
            fields.append(layer["class"].to_numpy()[ids - 1] == "field")
            hits.append(
                matched_predictions(ids, pred.instance, pred.semantic, truth.instance, truth.semantic)
            )
    out = scores.summary()
    if seams.pairs:
        out["seams"] = seams.summary()
    if conf:
        p, y, f = np.concatenate(conf), np.concatenate(hits), np.concatenate(fields)
        out["confidence"] = {"fields": reliability(p[f], y[f]).as_dict(), "all": reliability(p, y).as_dict()}
    return out, scores


#: The baselines the demo maps through the same region job as the model: (key, stand-in engine).
BASELINE_ENGINES = (
    ("field_everywhere", "field"),
    ("pixel_classifier", "classifier"),
    ("truth_at_grid", "truth"),
)


def map_baselines(
    data: Path,
    out: Path,
    map_config: MapConfig,
    patches: PatchGrid | None,
    config: DemoConfig,
    model: SceneIoU,
) -> dict[str, Any]:
    """Field everywhere, the pixel classifier (fitted on synthetic scenes of the training seed) and the
    truth at the model's grid (the ceiling), each mapped as a stand-in engine by the same region job as the
    model (same tiles, refinement, polygons, seam joins) and scored like the model's layer, with the model's
    fields mIoU lead over it (``fields_miou_model_minus``, as in `magseg eval`)."""
    classifier, _ = fit_baseline_classifier(None, data, config.gsd)
    classifier.save(out / "pixel_classifier.npz")
    scores: dict[str, Any] = {}
    for key, engine in BASELINE_ENGINES:
        run_dir = out / key
        shutil.rmtree(run_dir, ignore_errors=True)
        settings = replace(
            map_config, out=str(run_dir), engine=engine, classifier=str(out / "pixel_classifier.npz"),
            export=None, progress=False, pictures=False,
        )  # fmt: skip
        run_region(settings, log=lambda _: None)
        scores[key], per_scene = score_layer(read_partitioned(run_dir / "fields"), data, patches)
        scores[key]["fields_miou_model_minus"] = iou_difference(model, per_scene.scene_iou())
    return scores


def run_demo(
    out: str | os.PathLike[str], config: DemoConfig = DemoConfig(), log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the demo into ``out`` (replacing an earlier demo there); returns what summary.json holds."""
    out = Path(out)
    t0 = time.perf_counter()
    area = config.scenes * (config.size * config.gsd) ** 2 / 1e6
    log(f"1/3 synthesising {config.scenes} scenes of {config.size} px at {config.gsd} m ({area:.2f} km²) ...")
    data = write_dataset(
        out / "synth", config.scenes, config.size, config.gsd, config.seed, config.location, True
    )
    items = open_catalog(data).search()
    bbox = shapely.union_all([shape(it.geometry) for it in items]).bounds
    run_dir = out / "map"
    shutil.rmtree(run_dir, ignore_errors=True)  # the demo always maps afresh
    log(
        f"2/3 magseg map --bbox {' '.join(f'{v:.5f}' for v in bbox)} --stac {data} (bundled model, local Ray)"
    )
    t1 = time.perf_counter()
    map_config = MapConfig(
        bbox=bbox,
        stac=str(data),
        out=str(run_dir),
        model=str(BUNDLED_MODEL),
        export=str(out / "fields.gpkg"),
        progress=config.progress,
        verbose=config.verbose,
        collection_id="magseg-demo",
    )
    run = run_region(map_config, log=log)
    t2 = time.perf_counter()
    log(
        "3/3 the baselines through the same region job (field everywhere, pixel classifier, truth at the "
        "model's grid); every layer scored against the synthetic truth (rasterised onto each scene's grid)"
    )
    inference, _ = resolve_config(BUNDLED_MODEL)
    patches = PatchGrid.of_run(run, inference.patch, inference.grid)
    model, model_scenes = score_layer(read_partitioned(run_dir / "fields"), data, patches)
    baselines = map_baselines(data, out / "baselines", map_config, patches, config, model_scenes.scene_iou())
    t3 = time.perf_counter()
    summary = {
        "config": asdict(config),
        "area_km2": area,
        "bbox": list(bbox),
        "tiles": run["tiles"],
        "polygons": run["polygons"],
        "polygons_by_class": run["polygons_by_class"],
        "patches": run["patches"],
        "model_patches_per_s": run["model_patches_per_s"],
        "tokens_per_patch": run["tokens_per_patch"],
        "rereads": run.get("rereads", 0),
        "decode_valid_rate": run["decode_valid_rate"],
        "mean_dice": model["mean_dice"],
        "scores": model,
        "baselines": baselines,
        "seconds": {
            "synth": t1 - t0,
            "map": t2 - t1,
            "baselines": t3 - t2,
            "total": time.perf_counter() - t0,
        },
    }
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str))
    log(
        "\nbundled tiny model over the region, refined, against the synthetic truth:\n"
        + format_table(class_scores(model))
    )
    log(
        "\nbeside the baselines (each mapped by the same region job, refined and scored the same way):\n"
        + versus_table(model, baselines)
    )
    log("\n".join(lead_lines(baselines)))
    log("\n".join(confidence_lines(model)).strip("\n") or "the layer carries no confidence")
    log(layer_seam_line(model.get("seams")))
    log(
        f"\nmean DICE {model['mean_dice']:.3f}; {run['polygons']} polygons {run['polygons_by_class']}; "
        f"{run['patches']} patches (+{run.get('rereads', 0)} seam re-reads, {run['tokens_per_patch']:.1f} tokens "
        f"per patch) at {run['model_patches_per_s'] or 0:.1f} patches/s, "
        f"{run['decode_valid_rate']:.1%} valid RRLE; {summary['seconds']['total']:.0f} s in all"
    )
    log(
        f"outputs: {run_dir}/fields (partitioned fiboa GeoParquet), {out}/fields.gpkg, "
        f"{run_dir}/quicklook.png, {run_dir}/map.html, {run_dir}/run.json, {out}/summary.json"
    )
    return summary
