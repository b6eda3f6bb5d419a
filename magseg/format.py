"""The sample format: what a model's prompts look like, shared by training, evaluation, mapping and serving.

Samples are written in it (magseg.samples), the model card records it (magseg.inference.meta), and every
predictor builds its prompts from it (magseg.inference): it lives here, beside magseg.prompts, below all.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from magseg.codec import GRID_METHODS
from magseg.errors import InputError

__all__ = ["ModelFormat", "encode_jpeg"]


@dataclass(frozen=True)
class ModelFormat:
    """What a model's prompts look like: patch, grid, images. Samples are built in it; inference reads it back."""

    patch: int = 64  # p: patch side in pixels
    grid: int = 8  # g: the RRLE grid side
    context_size: int = 256  # the scene image is resized to this side (as in the samples)
    crop_size: int | None = None  # the patch crop is resized to this side (None: its own p pixels)
    with_crop: bool = True  # the patch crop is given as a second image
    jpeg_quality: int = 90  # images pass through JPEG as the samples' images did
    window: int | None = None  # scenes larger than this are predicted as windows of this side
    # > 0: trained with neighbours' edge cells in that share of prompts; inference then runs a checkerboard
    # of two batched passes, the second reading its neighbours' decoded edges (magseg.inference.neighbours)
    neighbours: float = 0.0
    # how a cell of the target grid got its class (magseg.codec.GRID_METHODS); models trained before the
    # rule could be chosen record none and were trained with "majority"
    grid_method: str = "majority"

    def check(self) -> None:
        if self.grid_method not in GRID_METHODS:
            raise InputError(
                f"unknown grid method {self.grid_method!r}; use one of {', '.join(GRID_METHODS)}"
            )
        if self.patch < 1 or self.grid < 1 or self.grid > self.patch:
            raise InputError(f"need 1 <= grid ({self.grid}) <= patch ({self.patch}); fix --patch/--grid")
        if self.window is not None and (self.window < self.patch or self.window % self.patch):
            raise InputError(f"window ({self.window}) must be a multiple of the patch ({self.patch})")
        if self.context_size < 1 or (self.crop_size is not None and self.crop_size < 1):
            raise InputError("context and crop sizes must be positive pixel counts")

    @classmethod
    def of(cls, config: Any) -> ModelFormat:
        """The format fields of any config that has them (e.g. magseg.samples.SampleConfig)."""
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelFormat:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def encode_jpeg(array_hwc: np.ndarray, size: int | None, quality: int) -> dict[str, Any]:
    """An (H, W, 3) image as JPEG bytes in datasets' Image encoding, resized to ``size`` square when given.

    Training samples and inference prompts both pass their images through this, so the model sees the
    same compression and resampling at both ends.
    """
    img = Image.fromarray(array_hwc)
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return {"bytes": buf.getvalue(), "path": None}
