"""Per-field confidence: what the model's token probabilities and the boundary map say of each instance,
calibrated on held-out scenes so that 0.8 means "matched at IoU >= 0.5 eight times in ten"."""

from magseg.confidence.calibrate import CALIBRATION_FILE, Calibrator, load_calibrator
from magseg.confidence.features import FEATURES, instance_features
from magseg.confidence.outcomes import matched_predictions
from magseg.confidence.reliability import Reliability, reliability, reliability_png
from magseg.confidence.scene import instance_confidence

__all__ = [
    "CALIBRATION_FILE",
    "FEATURES",
    "Calibrator",
    "Reliability",
    "instance_confidence",
    "instance_features",
    "load_calibrator",
    "matched_predictions",
    "reliability",
    "reliability_png",
]
