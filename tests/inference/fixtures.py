"""Builders shared by the inference and evaluation tests: a tiny random model with a card, synthetic scenes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from magseg.inference import write_model_card_meta
from magseg.samples import SampleConfig
from magseg.synth import write_dataset
from tests.model.tiny import tiny_model_dir

#: The sample format the test model is said to be trained on (the tiny recipe's, at test sizes).
CARD = SampleConfig(patch=64, grid=8, context_size=64, with_crop=True)

_cache: dict[str, Path] = {}


def carded_model(factory: pytest.TempPathFactory) -> Path:
    """A copy of the tests' tiny random Gemma3 with a magseg.json card (the shared one stays untouched)."""
    if "model" not in _cache:
        out = factory.mktemp("carded") / "model"
        shutil.copytree(tiny_model_dir(factory), out)
        write_model_card_meta(out, CARD)
        _cache["model"] = out
    return _cache["model"]


def synth_scenes(factory: pytest.TempPathFactory) -> Path:
    """Two 256 px synthetic scenes at 0.5 m (seed 5: not the baseline's training seed)."""
    if "synth" not in _cache:
        _cache["synth"] = write_dataset(factory.mktemp("evsynth") / "synth", 2, 256, 0.5, seed=5)
    return _cache["synth"]
