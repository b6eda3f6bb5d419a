"""The bundled tiny model segments: on unseen synthetic scenes it beats what no model can do."""

from __future__ import annotations

from pathlib import Path

from magseg.bundled import BUNDLED_BOUNDARY, boundary_choice
from magseg.confidence import CALIBRATION_FILE, load_calibrator
from magseg.evaluate import run_eval
from magseg.evaluate.run import BUNDLED_MODEL, evaluate_baselines
from magseg.inference.meta import read_model_meta, resolve_config
from magseg.refine import FusedBoundary, load_boundary_model, scene_boundary
from magseg.sources import list_scenes


def test_bundled_model_is_small_and_carded() -> None:
    weights = BUNDLED_MODEL / "model.safetensors"
    assert weights.is_file() and weights.stat().st_size <= 25 * 2**20
    meta = read_model_meta(BUNDLED_MODEL)
    assert meta is not None and (meta.patch, meta.grid) == (64, 8)
    assert "Recipe" in (BUNDLED_MODEL / "README.md").read_text()


def test_bundled_model_beats_field_everywhere(synth_folder: Path, tmp_path: Path) -> None:
    # seed-5 scenes were never seen in training (seed 1). An untrained model writes text that decodes to
    # noise or one class; the trained one must write valid RRLE and see more than "field everywhere".
    report = run_eval(synth_folder, batch_size=16, fit_confidence=tmp_path / CALIBRATION_FILE)
    assert report["decode_valid_rate"] >= 0.95
    floor = report["baselines"]["field_everywhere"]["mean_dice"]
    assert report["mean_dice"] > floor + 0.05
    # and above the per-pixel classifier on these scenes (0.757 vs 0.735 when bundled; field everywhere
    # 0.358): a model that collapses to writing mostly "field" falls far below it
    assert report["mean_dice"] > report["baselines"]["pixel_classifier"]["mean_dice"]
    assert report["field"]["mean_iou"] is not None and report["field"]["mean_iou"] > 0.1
    # its shipped calibrator is checked on these unseen scenes: the least confident fifth holds more errors
    fields = report["confidence"]["fields"]
    assert fields["n"] > 10 and 0.0 <= fields["ece"] <= 1.0
    assert fields["low_error"] > fields["rest_error"]
    # and a new one fitted on them lands beside its reliability diagram, ready for load_calibrator
    assert report["confidence_fit"]["instances"] >= fields["n"]
    assert (
        load_calibrator(tmp_path) is not None and (tmp_path / CALIBRATION_FILE).with_suffix(".png").is_file()
    )


def test_bundled_boundary_model_is_small_carded_and_the_default() -> None:
    weights = BUNDLED_BOUNDARY / "model.safetensors"
    assert weights.is_file() and weights.stat().st_size <= 10 * 2**20
    assert "Recipe" in (BUNDLED_BOUNDARY / "README.md").read_text()
    assert boundary_choice(None) == str(BUNDLED_BOUNDARY)
    model = load_boundary_model(BUNDLED_BOUNDARY, device="cpu")
    assert isinstance(scene_boundary(model, gsd=0.5), FusedBoundary)  # fused with the image fallback
    assert model.resolution is None  # native pixel scale: any tile size


def test_bundled_boundary_model_cuts_fields_better_than_the_fallback(synth_folder: Path) -> None:
    # the truth's own mask at the model's grid, refined: only the boundary map differs (unseen seed-5 scenes)
    inference, _ = resolve_config(BUNDLED_MODEL)
    scenes = list_scenes(synth_folder)
    fallback = evaluate_baselines(scenes, inference, None)["truth_at_grid"]["field"]["mean_iou"]
    model = load_boundary_model(BUNDLED_BOUNDARY, device="cpu")
    fused = evaluate_baselines(scenes, inference, None, boundary=model)["truth_at_grid"]["field"]["mean_iou"]
    assert fused > fallback + 0.05
