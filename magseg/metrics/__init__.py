"""Scoring: the seed's instance metrics (merged IoU, FNR, FPR), FTW-style matching, and mean DICE."""

from magseg.metrics.dice import dice_per_class, mean_dice
from magseg.metrics.files import score_files
from magseg.metrics.ftw import greedy_match, precision_recall_f1
from magseg.metrics.instances import label_instances, score_instances
from magseg.metrics.layers import score_layers
from magseg.metrics.report import format_table, scores_to_json
from magseg.metrics.scores import ClassScores

__all__ = [
    "ClassScores",
    "dice_per_class",
    "format_table",
    "greedy_match",
    "label_instances",
    "mean_dice",
    "precision_recall_f1",
    "score_files",
    "score_instances",
    "score_layers",
    "scores_to_json",
]
