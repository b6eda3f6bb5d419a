"""Small synthetic datasets shared by the synth tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from magseg.synth import write_dataset

SEED = 5


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 256 px scenes at Karnal, half of them cloudy on average."""
    out = tmp_path_factory.mktemp("synth") / "run"
    return write_dataset(out, scenes=4, size=256, gsd=0.5, seed=SEED, cloud_fraction=0.5)
