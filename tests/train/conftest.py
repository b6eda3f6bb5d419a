"""Fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model.tiny import samples_dir, tiny_model_dir


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_samples(tmp_path_factory: pytest.TempPathFactory, labelled_folder: Path) -> Path:
    return samples_dir(tmp_path_factory, labelled_folder)
