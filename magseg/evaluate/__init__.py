"""Evaluation: patch inference over labelled scenes, refinement ablation, baselines, tables and JSON."""

from magseg.evaluate.baselines import (
    PixelClassifier,
    field_everywhere,
    pixel_features,
    scene_gsd,
    synthetic_training_scenes,
    to_patch_grid,
)
from magseg.evaluate.report import comparison_table, dice_table, format_report
from magseg.evaluate.run import BUNDLED_MODEL, evaluate_scenes, fit_baseline_classifier, run_eval
from magseg.evaluate.scoring import MethodScores, iou_difference, pooled_scores

__all__ = [
    "BUNDLED_MODEL",
    "MethodScores",
    "PixelClassifier",
    "comparison_table",
    "dice_table",
    "evaluate_scenes",
    "field_everywhere",
    "fit_baseline_classifier",
    "format_report",
    "iou_difference",
    "pixel_features",
    "pooled_scores",
    "run_eval",
    "scene_gsd",
    "synthetic_training_scenes",
    "to_patch_grid",
]
