"""Shared builders for model and training tests: one ~0.1M-parameter Gemma3 and a few samples per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from magseg.model.tiny import build_tiny_gemma3
from magseg.samples import SampleConfig, write_samples

#: Small enough for a few CPU training steps in about a second; same architecture as the real tiny.
TINY = {
    "vision_hidden": 32,
    "vision_layers": 1,
    "text_hidden": 64,
    "text_layers": 1,
    "image_size": 32,
    "patch_size": 8,
    "mm_tokens_per_image": 16,
}

_cache: dict[str, Path] = {}


def tiny_model_dir(factory: pytest.TempPathFactory) -> Path:
    if "model" not in _cache:
        _cache["model"] = build_tiny_gemma3(factory.mktemp("tiny") / "model", **TINY)  # type: ignore[arg-type]
    return _cache["model"]


def samples_dir(factory: pytest.TempPathFactory, labelled: Path) -> Path:
    if "samples" not in _cache:
        out = factory.mktemp("samples") / "samples"
        write_samples([labelled], out, SampleConfig(patch=64, grid=8, per_scene=4, context_size=64))
        _cache["samples"] = out
    return _cache["samples"]
