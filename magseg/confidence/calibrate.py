"""A logistic calibrator from instance features to P(matched at IoU >= 0.5), stored beside the model.

Fitted on labelled scenes the model never trained on (``magseg eval --fit-confidence``) and saved as
``confidence.json`` in the model folder, with what it was fitted on; map, eval and serve read it from there.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

from magseg.atomic import atomic_path
from magseg.confidence.features import FEATURES
from magseg.errors import InputError

__all__ = ["CALIBRATION_FILE", "Calibrator", "load_calibrator"]

#: The calibrator's file name in a model folder.
CALIBRATION_FILE = "confidence.json"


@dataclass(frozen=True)
class Calibrator:
    """p = sigmoid(intercept + coef . (x - mean) / scale), x the instance features (FEATURES order)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    fitted: dict[str, Any] = field(default_factory=dict)  # instances, matched share, scenes, boundary

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (n,) of features (n, k)."""
        arr = np.asarray(x, dtype=np.float64).reshape(-1, len(self.features))
        z = (arr - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.asarray(self.coef) + self.intercept)))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, l2: float = 1.0, **fitted: Any) -> Calibrator:
        """Maximum-likelihood logistic regression (L2 ``l2`` on the standardised weights)."""
        arr = np.asarray(x, dtype=np.float64)
        target = np.asarray(y, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(FEATURES) or len(arr) != len(target):
            raise InputError(
                f"need features (n, {len(FEATURES)}) and n outcomes, got {arr.shape}, {target.shape}"
            )
        if len(arr) < 10 or target.min() == target.max():
            raise InputError(
                f"{len(arr)} instances, {int(target.sum())} matched: too few or all alike to calibrate on; "
                "give more labelled scenes"
            )
        mean = arr.mean(axis=0)
        scale = np.where(arr.std(axis=0) > 1e-9, arr.std(axis=0), 1.0)
        z = (arr - mean) / scale

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            logits = z @ w[1:] + w[0]
            p = 1.0 / (1.0 + np.exp(-logits))
            nll = np.sum(np.logaddexp(0.0, logits) - target * logits) + 0.5 * l2 * w[1:] @ w[1:]
            grad = np.concatenate([[np.sum(p - target)], z.T @ (p - target) + l2 * w[1:]])
            return float(nll), grad

        w = minimize(loss, np.zeros(arr.shape[1] + 1), jac=True, method="L-BFGS-B").x
        info = {"instances": len(arr), "matched_share": float(target.mean()), **fitted}
        return cls(FEATURES, tuple(mean), tuple(scale), tuple(w[1:]), float(w[0]), info)

    def save(self, path: str | os.PathLike[str]) -> None:
        with atomic_path(Path(path)) as tmp:
            Path(tmp).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibrator:
        try:
            raw = json.loads(Path(path).read_text())
            made = cls(**{**raw, **{k: tuple(raw[k]) for k in ("features", "mean", "scale", "coef")}})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise InputError(
                f"{path}: not a confidence calibration ({exc}); refit it with magseg eval --fit-confidence"
            ) from exc
        if made.features != FEATURES:
            raise InputError(
                f"{path}: calibrated on features {made.features}, this magseg computes {FEATURES}; refit it "
                "with magseg eval --fit-confidence"
            )
        return made


def load_calibrator(model_path: str | os.PathLike[str] | None) -> Calibrator | None:
    """The calibrator saved in a model folder, or None when it has none."""
    if model_path is None:
        return None
    path = Path(model_path) / CALIBRATION_FILE
    return Calibrator.load(path) if path.is_file() else None
