"""The bundled tiny model segments: on unseen synthetic scenes it beats what no model can do."""

from __future__ import annotations

from pathlib import Path

from magseg.evaluate import run_eval
from magseg.evaluate.run import BUNDLED_MODEL
from magseg.inference.meta import read_model_meta


def test_bundled_model_is_small_and_carded() -> None:
    weights = BUNDLED_MODEL / "model.safetensors"
    assert weights.is_file() and weights.stat().st_size <= 25 * 2**20
    meta = read_model_meta(BUNDLED_MODEL)
    assert meta is not None and (meta.patch, meta.grid) == (64, 8)
    assert "Recipe" in (BUNDLED_MODEL / "README.md").read_text()


def test_bundled_model_beats_field_everywhere(synth_folder: Path) -> None:
    # seed-5 scenes were never seen in training (seed 1). An untrained model writes text that decodes to
    # noise or one class; the trained one must write valid RRLE and see more than "field everywhere".
    report = run_eval(synth_folder, batch_size=16)
    assert report["decode_valid_rate"] >= 0.95
    floor = report["baselines"]["field_everywhere"]["mean_dice"]
    assert report["mean_dice"] > floor + 0.05
    assert report["field"]["mean_iou"] is not None and report["field"]["mean_iou"] > 0.1
