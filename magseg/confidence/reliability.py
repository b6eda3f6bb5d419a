"""How well a confidence is calibrated: expected calibration error, the reliability diagram, and whether the
least confident share of fields holds the errors (where a reviewer should look first)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from magseg.viz import line_chart_png

__all__ = ["Reliability", "reliability", "reliability_png"]


@dataclass(frozen=True)
class Reliability:
    """ECE over equal-width bins, the bins themselves, and the error rate of the least confident share."""

    ece: float
    n: int
    matched_share: float
    bins: list[dict[str, float]]  # lo, hi, n, confidence (mean), matched (share)
    low_share: float  # the share of least confident fields compared with the rest
    low_error: float  # error rate (not matched) among them
    rest_error: float  # error rate among the others
    error_ratio: float | None  # low_error / rest_error (None when the rest make no error)

    def as_dict(self) -> dict[str, object]:
        return {
            "ece": self.ece,
            "n": self.n,
            "matched_share": self.matched_share,
            "low_share": self.low_share,
            "low_error": self.low_error,
            "rest_error": self.rest_error,
            "error_ratio": self.error_ratio,
            "bins": self.bins,
        }


def reliability(
    confidence: np.ndarray, matched: np.ndarray, n_bins: int = 10, low_share: float = 0.2
) -> Reliability:
    """Calibration of ``confidence`` (n,) in [0, 1] against the outcomes ``matched`` (n,) booleans."""
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(matched, dtype=bool)
    n = len(conf)
    if n == 0:
        return Reliability(0.0, 0, 0.0, [], low_share, 0.0, 0.0, None)
    which = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    bins: list[dict[str, float]] = []
    ece = 0.0
    for b in range(n_bins):
        sel = which == b
        if not sel.any():
            continue
        mean_c, rate = float(conf[sel].mean()), float(hit[sel].mean())
        ece += sel.sum() / n * abs(mean_c - rate)
        bins.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "n": int(sel.sum()),
                "confidence": mean_c,
                "matched": rate,
            }
        )
    order = np.argsort(conf, kind="stable")
    k = max(int(round(low_share * n)), 1)
    low_err = float(1 - hit[order[:k]].mean())
    rest = hit[order[k:]]
    rest_err = float(1 - rest.mean()) if rest.size else 0.0
    ratio = low_err / rest_err if rest_err > 0 else None
    return Reliability(float(ece), n, float(hit.mean()), bins, low_share, low_err, rest_err, ratio)


def reliability_png(result: Reliability, path: str | os.PathLike[str], title: str = "") -> None:
    """The reliability diagram: matched share against mean confidence per bin, beside the diagonal."""
    series = {
        "perfectly calibrated": [(0.0, 0.0), (1.0, 1.0)],
        f"share matched at IoU >= 0.5 (ECE {result.ece:.3f})": [
            (b["confidence"], b["matched"]) for b in result.bins
        ],
    }
    line_chart_png(series, path, x_label="confidence", title=title or f"reliability, {result.n} instances")
