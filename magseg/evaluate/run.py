"""`magseg eval`'s engine: model(s), ablation and baselines over labelled scenes, scored identically."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from magseg.bundled import BUNDLED_MODEL, boundary_choice
from magseg.codec import mask_to_grid
from magseg.confidence import (
    FEATURES,
    Calibrator,
    instance_features,
    load_calibrator,
    matched_predictions,
    reliability,
    reliability_png,
)
from magseg.errors import InputError
from magseg.evaluate.baselines import (
    PixelClassifier,
    field_everywhere,
    scene_gsd,
    synthetic_training_scenes,
    to_patch_grid,
)
from magseg.evaluate.scoring import MethodScores, iou_difference
from magseg.inference import ModelFormat, Predictor
from magseg.inference.meta import read_class_bias
from magseg.metrics import mean_dice
from magseg.metrics.seams import SeamCounts
from magseg.model import resolve_model_path
from magseg.refine import (
    BoundaryModel,
    RefineResult,
    load_boundary_model,
    merge_threshold,
    refine,
    scene_boundary,
)
from magseg.sources import LabelledScene, SceneRef, list_scenes

#: The bundled tiny model's training seed (scripts/train_tiny_model.py); baseline fitting uses it too.
DEFAULT_TRAIN_SEED = 1

Progress = Callable[[str], None]


class _ModelRun:
    """One model's predictions over the scenes: its scores refined and not, and its inference figures."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.refined = MethodScores()
        self.raw = MethodScores()
        self.patches = self.valid = self.tokens = self.rereads = 0
        self.seconds = 0.0
        self.tokens_measured = True
        self.patch_dice: list[float] = []
        self.seams = SeamCounts()
        self.seams_refined = SeamCounts()  # the same seams on the refined mask (what a layer is cut from)
        self.features: list[np.ndarray] = []  # per refined instance (magseg.confidence.FEATURES)
        self.matched: list[np.ndarray] = []  # ... and whether it matched the truth at IoU >= 0.5
        self.calibrator: Calibrator | None = None

    def add_confidence(
        self, done: RefineResult, token_conf: np.ndarray, scene: LabelledScene, gsd: float
    ) -> None:
        """The refined instances' confidence features and their outcome against the truth."""
        ids, x = instance_features(done.instance, done.semantic, token_conf, done.boundary, gsd)
        truth = scene.labels
        hit = matched_predictions(ids, done.instance, done.semantic, truth.instance, truth.semantic)
        self.features.append(x)
        self.matched.append(hit)

    def confidence_summary(self) -> dict[str, Any] | None:
        """Calibration of the model's confidence on these scenes (all instances and fields alone)."""
        if not self.features or self.calibrator is None:
            return None
        x, y = np.concatenate(self.features), np.concatenate(self.matched)
        p = self.calibrator.predict(x)
        fields = x[:, FEATURES.index("is_field")] > 0.5
        return {
            "fields": reliability(p[fields], y[fields]).as_dict(),
            "all": reliability(p, y).as_dict(),
            "calibration": self.calibrator.fitted,
        }

    def add_patch_dice(
        self, grids: Sequence[np.ndarray], origins: Sequence[tuple[int, int]], truth: np.ndarray
    ) -> None:
        """The GRPO reward on held-out greedy output: each decoded grid vs the truth at the same grid."""
        p = self.predictor.config.patch
        for grid, (x0, y0) in zip(grids, origins, strict=True):
            target = mask_to_grid(
                truth[y0 : y0 + p, x0 : x0 + p], grid.shape, self.predictor.config.grid_method
            )
            self.patch_dice.append(mean_dice(grid, target))

    def summary(self) -> dict[str, Any]:
        out = self.refined.summary()
        out["decode_valid_rate"] = self.valid / max(self.patches, 1)
        out["patch_dice"] = float(np.mean(self.patch_dice)) if self.patch_dice else None
        out.update(self.seams.summary())  # stitching artifacts: seam disagreement beyond the truth's
        refined = self.seams_refined.summary()
        out["seam_excess_refined"] = refined["seam_excess"]
        out["cell_excess_refined"] = refined["cell_excess"]
        out["confidence"] = self.confidence_summary()
        out["tokens_per_patch"] = self.tokens / max(self.patches, 1)  # re-reads' tokens included
        out["rereads"] = {"share": self.predictor.rereads, "patches": self.rereads}
        out["patches_per_s"] = self.patches / max(self.seconds, 1e-9)
        out["refinement_off"] = self.raw.summary()
        out["model"] = self.predictor.name
        out["n_patches"] = self.patches
        out["tokens_measured"] = self.tokens_measured
        out["config"] = asdict(self.predictor.config)
        return out


def _score_pair(
    scores: tuple[MethodScores, MethodScores],
    semantic: np.ndarray,
    scene: LabelledScene,
    prob: np.ndarray,
    gsd: float,
    snap_px: int,
    merge_below: float,
) -> RefineResult:
    """Score a stitched mask refined (into ``scores[0]``) and as is (into ``scores[1]``); returns the refined."""
    truth = scene.labels
    done = refine(semantic, scene.image, boundary=prob, gsd=gsd, snap_px=snap_px, merge_below=merge_below)
    scores[0].add(done.instance, done.semantic, truth.instance, truth.semantic)
    # refinement off: the stitched mask as is, instances = connected components per class
    plain = refine(semantic)
    scores[1].add(plain.instance, plain.semantic, truth.instance, truth.semantic)
    return done


Baselines = dict[str, tuple[MethodScores, MethodScores]]


def _new_baselines(classifier: PixelClassifier | None) -> Baselines:
    names = ["field_everywhere"] + (["pixel_classifier"] if classifier is not None else [])
    return {name: (MethodScores(), MethodScores()) for name in names + [CEILING]}


#: Not a baseline but the ceiling: the truth's own class mask at the model's grid, refined alike.
CEILING = "truth_at_grid"


def _score_baselines(
    baselines: Baselines,
    scene: LabelledScene,
    prob: np.ndarray,
    gsd: float,
    config: ModelFormat,
    classifier: PixelClassifier | None,
    merge_below: float,
) -> None:
    """Each baseline's mask at the model's grid, refined and scored like the model's."""
    for name, (refined, raw) in baselines.items():
        if name == "field_everywhere":
            semantic = field_everywhere(scene.shape)
        elif name == CEILING:
            semantic = to_patch_grid(scene.labels.semantic, config)
        else:
            assert classifier is not None
            semantic = to_patch_grid(classifier.predict(scene.image), config)
        _score_pair((refined, raw), semantic, scene, prob, gsd, config.patch // config.grid, merge_below)


def _edges(boundary: BoundaryModel | None, scene: LabelledScene, gsd: float) -> tuple[np.ndarray, float]:
    """The scene's boundary map and the merge threshold its model asks of refine (its ``merge_below``)."""
    edges = scene_boundary(boundary, gsd)
    return edges.predict(scene.image), merge_threshold(edges)


def _baseline_summaries(baselines: Baselines) -> dict[str, Any]:
    return {
        name: {**refined.summary(), "refinement_off": raw.summary()}
        for name, (refined, raw) in baselines.items()
    }


def evaluate_baselines(
    scenes: Sequence[SceneRef],
    config: ModelFormat,
    classifier: PixelClassifier | None,
    boundary: BoundaryModel | None = None,
) -> dict[str, Any]:
    """The baselines alone over ``scenes`` (at ``config``'s grid, refined with ``boundary``, default: the
    image fallback): for reports that score a model another way (the demo scores its region layer)."""
    baselines = _new_baselines(classifier)
    for ref in scenes:
        scene = ref.load()
        gsd = scene_gsd(scene.labels)
        prob, merge = _edges(boundary, scene, gsd)
        _score_baselines(baselines, scene, prob, gsd, config, classifier, merge)
    return _baseline_summaries(baselines)


def evaluate_scenes(
    scenes: Sequence[SceneRef],
    predictor: Predictor,
    *,
    compare: Predictor | None = None,
    classifier: PixelClassifier | None = None,
    boundary: BoundaryModel | None = None,
    log: Progress | None = None,
    fit_confidence: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the model (and ``compare``) and the baselines on every scene; return the report dict.

    The model's refined instances are scored for confidence against the truth: with ``fit_confidence``
    a calibrator is fitted on them and saved there; a calibrator in the model folder is checked on them
    (expected calibration error, the least confident fifth's error rate).

    Every method's stitched mask goes through the same refinement (boundary map computed once per
    scene, snapping by one RRLE cell of the main model) and the same scoring.
    """
    if not scenes:
        raise InputError("no scenes to evaluate; give a folder of labelled scenes")
    runs = [_ModelRun(predictor)] + ([_ModelRun(compare)] if compare is not None else [])
    for run in runs:
        run.calibrator = load_calibrator(run.predictor.name) if Path(run.predictor.name).is_dir() else None
    baselines = _new_baselines(classifier)
    refine_s = 0.0
    for i, ref in enumerate(scenes):
        scene = ref.load()
        gsd = scene_gsd(scene.labels)
        prob, merge = _edges(boundary, scene, gsd)  # once per scene, shared by every method
        for run in runs:
            pred = run.predictor.predict(scene.image)
            run.patches += pred.n_patches
            run.valid += sum(r.valid for r in pred.reports)
            run.tokens += pred.output_tokens
            run.rereads += len(pred.reread_origins)
            run.seconds += pred.timings["total_s"]
            run.tokens_measured &= pred.tokens_measured
            run.add_patch_dice(pred.grids, pred.origins, scene.labels.semantic)
            cfg = run.predictor.config
            cell = cfg.patch // cfg.grid
            run.seams.add(pred.semantic, scene.labels.semantic, pred.origins, cfg.patch, cell)
            t0 = time.perf_counter()
            done = _score_pair((run.refined, run.raw), pred.semantic, scene, prob, gsd, cell, merge)
            refine_s += time.perf_counter() - t0
            run.seams_refined.add(done.semantic, scene.labels.semantic, pred.origins, cfg.patch, cell)
            if pred.confidence is not None:
                run.add_confidence(done, pred.confidence, scene, gsd)
            if log is not None:
                log(
                    f"{ref.scene_id} [{i + 1}/{len(scenes)}] {Path(run.predictor.name).name}: "
                    f"{pred.n_patches} patches, {pred.patches_per_s:.1f} patches/s, valid {pred.valid_rate:.0%}"
                )
        _score_baselines(baselines, scene, prob, gsd, predictor.config, classifier, merge)
    report = runs[0].summary()
    if compare is not None:
        report["compare"] = runs[1].summary()
    report["baselines"] = _baseline_summaries(baselines)
    model_iou = runs[0].refined.scene_iou()  # is the model's lead on fields real or scene luck?
    for name, (refined, _) in baselines.items():
        report["baselines"][name]["fields_miou_model_minus"] = iou_difference(model_iou, refined.scene_iou())
    report["ceiling"] = report["baselines"].pop(CEILING)
    report["n_scenes"] = len(scenes)
    report["refine_s"] = refine_s
    if fit_confidence is not None:
        report["confidence_fit"] = _fit_confidence(runs[0], fit_confidence, len(scenes))
    return report


def _fit_confidence(run: _ModelRun, path: str | os.PathLike[str], n_scenes: int) -> dict[str, Any]:
    """Fit the model's confidence calibrator on these scenes' instances and save it (and its diagram)."""
    if not run.features:
        raise InputError("the model's engine reports no token probabilities: nothing to calibrate on")
    x, y = np.concatenate(run.features), np.concatenate(run.matched)
    fitted = Calibrator.fit(x, y, scenes=n_scenes, model=Path(run.predictor.name).name)
    fitted.save(path)
    fields = x[:, FEATURES.index("is_field")] > 0.5
    check = reliability(fitted.predict(x)[fields], y[fields])
    reliability_png(check, Path(path).with_suffix(".png"), title="fields, calibration scenes (in-sample)")
    return {"path": str(path), **fitted.fitted, "in_sample_ece_fields": check.ece}


def boundary_label(model: BoundaryModel | None, path: str | None) -> str:
    """How a report names its refinement's boundary map."""
    if model is None:
        return "image fallback"
    fused = " + image fallback (max)" if getattr(model, "fuse_image_fallback", False) else ""
    merge = merge_threshold(model)
    merged = f", pieces parted by a border under {merge:g} merged" if merge > 0 else ""
    return f"{path}{fused}{merged}"


def _check_model(path: Path, what: str) -> None:
    if path == BUNDLED_MODEL and not path.exists():
        raise InputError(
            f"{path}: no bundled model yet; train one (scripts/train_tiny_model.py) and pass --model PATH"
        )
    if not path.is_dir():
        raise InputError(f"{path}: no such {what} folder; pass a model folder saved with save_pretrained")
    resolve_model_path(path)  # raises a one-line InputError when it is not a model or adapter folder


def _synth_seed(data: Path) -> int | None:
    meta = data / "synth.json"
    if not meta.is_file():
        return None
    seed = json.loads(meta.read_text()).get("seed")
    return int(seed) if isinstance(seed, int) else None


def fit_baseline_classifier(
    train_data: str | os.PathLike[str] | None,
    eval_data: Path,
    gsd: float,
    seed: int = DEFAULT_TRAIN_SEED,
    scenes: int = 8,
    size: int = 256,
) -> tuple[PixelClassifier, str]:
    """The per-pixel baseline fitted on ``train_data`` (up to ``scenes`` scenes) or on fresh synthetic scenes.

    The synthetic default uses ``seed`` unless the evaluation data is a synth folder of that very seed.
    """
    if train_data is not None:
        refs = list_scenes(train_data)[:scenes]
        return PixelClassifier(seed=seed).fit(r.load() for r in refs), f"{len(refs)} scenes of {train_data}"
    if _synth_seed(eval_data) == seed:
        seed += 1
    gsd = max(round(gsd, 1), 0.1)  # the synthetic look changes little within 0.1 m
    fitted = PixelClassifier(seed=seed).fit(synthetic_training_scenes(scenes, size, gsd, seed))
    return fitted, f"{scenes} synthetic scenes, seed {seed}, {size} px at {gsd:.2f} m"


def run_eval(
    data: str | os.PathLike[str],
    model: str | os.PathLike[str] | None = None,
    *,
    compare: str | os.PathLike[str] | None = None,
    boundary: str | os.PathLike[str] | None = None,
    train_data: str | os.PathLike[str] | None = None,
    train_seed: int = DEFAULT_TRAIN_SEED,
    max_scenes: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    log: Progress | None = None,
    fit_confidence: str | os.PathLike[str] | None = None,
    class_bias: Mapping[str, float] | None = None,
    rereads: float | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Evaluate a model folder (default: the bundled one) on a labelled-scene folder; see evaluate_scenes.

    ``overrides`` (patch, grid, context_size, crop_size, with_crop; None = as recorded with the model)
    apply to ``model`` and ``compare`` alike; ``class_bias`` and ``rereads`` (None: the model card's) to
    ``model`` only.
    """
    model_path = Path(model) if model is not None else BUNDLED_MODEL
    _check_model(model_path, "model")
    if compare is not None:
        _check_model(Path(compare), "--compare model")
    if max_scenes is not None and max_scenes < 1:
        raise InputError(f"--max-scenes {max_scenes}: must be at least 1")
    if batch_size < 1:
        raise InputError(f"--batch-size {batch_size}: must be at least 1")
    data_path = Path(data)
    refs = list_scenes(data_path)[:max_scenes]
    boundary = boundary_choice(boundary)
    boundary_model = load_boundary_model(boundary) if boundary is not None else None
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "device": device,
        "dtype": dtype,
    }
    predictor = Predictor.from_pretrained(
        model_path, **kwargs, class_bias=class_bias, rereads=rereads, **overrides
    )
    other = Predictor.from_pretrained(compare, **kwargs, **overrides) if compare is not None else None
    first = refs[0].load()
    classifier, fitted_on = fit_baseline_classifier(
        train_data, data_path, scene_gsd(first.labels), train_seed
    )
    if log is not None:
        log(f"pixel classifier fitted on {fitted_on}")
    report = evaluate_scenes(
        refs,
        predictor,
        compare=other,
        classifier=classifier,
        boundary=boundary_model,
        log=log,
        fit_confidence=fit_confidence,
    )
    report["data"] = str(data_path)
    report["class_bias"] = class_bias if class_bias is not None else read_class_bias(model_path)
    report["boundary"] = boundary_label(boundary_model, boundary)
    report["baselines"]["pixel_classifier"]["fitted_on"] = fitted_on
    return report
