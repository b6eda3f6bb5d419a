"""A scene's instances and their confidence: features (magseg.confidence.features) through the calibrator."""

from __future__ import annotations

import numpy as np

from magseg.confidence.calibrate import Calibrator
from magseg.confidence.features import instance_features

__all__ = ["instance_confidence"]


def instance_confidence(
    calibrator: Calibrator,
    instance: np.ndarray,
    semantic: np.ndarray,
    token_conf: np.ndarray,
    boundary: np.ndarray | None,
    gsd: float,
) -> dict[int, float]:
    """Calibrated P(matched at IoU >= 0.5) of every instance id of the raster."""
    ids, x = instance_features(instance, semantic, token_conf, boundary, gsd)
    return dict(zip(ids.tolist(), calibrator.predict(x).tolist(), strict=True)) if ids.size else {}
