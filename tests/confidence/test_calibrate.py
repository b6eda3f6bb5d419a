"""The logistic calibrator: fits, round-trips, refuses what it cannot use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from magseg.confidence import CALIBRATION_FILE, FEATURES, Calibrator, load_calibrator, reliability
from magseg.errors import InputError


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes drawn from a known logistic law of the first feature."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] + 1.5)))
    return x, rng.random(n) < p


def test_fit_is_calibrated_out_of_sample(tmp_path: Path) -> None:
    cal = Calibrator.fit(*_data(4000, 0), scenes=3)
    assert cal.fitted["instances"] == 4000 and cal.fitted["scenes"] == 3
    assert abs(cal.coef[0]) > 5 * max(abs(c) for c in cal.coef[1:])  # the informative feature
    x, y = _data(4000, 1)
    check = reliability(cal.predict(x), y)
    assert check.ece < 0.05
    assert check.error_ratio is not None and check.error_ratio > 2
    cal.save(tmp_path / CALIBRATION_FILE)
    again = load_calibrator(tmp_path)
    assert again is not None and np.allclose(again.predict(x), cal.predict(x))
    assert load_calibrator(tmp_path / "elsewhere") is None and load_calibrator(None) is None


def test_refuses_too_few_or_one_sided_outcomes() -> None:
    x, _ = _data(50, 2)
    with pytest.raises(InputError, match="too few or all alike"):
        Calibrator.fit(x, np.ones(50, dtype=bool))
    with pytest.raises(InputError, match="need features"):
        Calibrator.fit(x[:, :3], np.arange(50) % 2)


def test_load_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / CALIBRATION_FILE
    path.write_text("{not json")
    with pytest.raises(InputError, match="--fit-confidence"):
        load_calibrator(tmp_path)
    cal = Calibrator.fit(*_data(200, 3))
    cal.save(path)
    path.write_text(path.read_text().replace('"token_mean"', '"other"'))
    with pytest.raises(InputError, match="calibrated on features"):
        load_calibrator(tmp_path)
