"""Expected calibration error, the least confident share's error rate, the diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from magseg.confidence import reliability, reliability_png


def test_ece_and_error_ratio_by_hand() -> None:
    conf = np.array([0.15, 0.15, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95])
    hit = np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)
    r = reliability(conf, hit, n_bins=10, low_share=0.2)
    # bin 1: conf 0.15, matched 0.5; bin 9: conf 0.95, matched 5/6
    assert np.isclose(r.ece, 0.4 * 0.35 + 0.6 * abs(0.95 - 5 / 6))
    assert [b["n"] for b in r.bins] == [4, 6]
    assert r.low_error == 1.0  # the two least confident (stable order): both missed
    assert np.isclose(r.rest_error, 1 / 8) and np.isclose(r.error_ratio or 0, 8.0)
    assert reliability(np.array([]), np.array([], dtype=bool)).n == 0
    assert reliability(np.array([0.2, 0.9]), np.array([False, True]), low_share=0.5).error_ratio is None


def test_diagram_is_a_png(tmp_path: Path) -> None:
    r = reliability(np.linspace(0, 1, 50), np.linspace(0, 1, 50) > 0.5)
    reliability_png(r, tmp_path / "r.png")
    with Image.open(tmp_path / "r.png") as img:
        assert img.format == "PNG" and img.width > 100
