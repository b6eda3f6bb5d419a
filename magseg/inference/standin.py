"""A stand-in for the model in scale drills: it writes the RRLE of a known class mask, as the model would.

The truth's patches go through the same text round trip as a model's answers (encode to RRLE, decode,
stitch), so a drill exercises every stage of the pipeline but generation. It writes no tokens.
"""

from __future__ import annotations

import time

import numpy as np

from magseg.codec import decode, encode, mask_to_grid
from magseg.errors import InputError
from magseg.format import ModelFormat
from magseg.inference.predict import ScenePrediction, stitch_grids
from magseg.inference.requests import patch_origins

__all__ = ["TruthPredictor"]


class TruthPredictor:
    """Predicts a scene by writing its given class mask's RRLE (each cell's class by the format's grid rule)."""

    def __init__(self, config: ModelFormat, name: str = "truth") -> None:
        self.config = config
        self.name = name

    def predict(self, image: np.ndarray, truth: np.ndarray) -> ScenePrediction:
        """``truth``: the (H, W) class ids of ``image``'s (3, H, W) pixels."""
        t0 = time.perf_counter()
        mask = np.asarray(truth)
        if mask.shape != np.asarray(image).shape[1:]:
            raise InputError(
                f"truth mask {mask.shape} does not match the image {np.asarray(image).shape[1:]}"
            )
        p, g = self.config.patch, self.config.grid
        height, width = mask.shape
        origins = patch_origins(height, width, p)
        texts = [
            encode(mask_to_grid(mask[y : y + p, x : x + p], g, self.config.grid_method)) for x, y in origins
        ]
        decoded = [decode(text, (g, g)) for text in texts]
        grids = [grid for grid, _ in decoded]
        semantic = stitch_grids(grids, origins, (height, width), p)
        total = time.perf_counter() - t0
        return ScenePrediction(
            semantic=semantic,
            origins=origins,
            texts=texts,
            grids=grids,
            reports=[report for _, report in decoded],
            tokens=[0] * len(texts),
            tokens_measured=False,
            config=self.config,
            timings={"prepare_s": 0.0, "generate_s": 0.0, "decode_s": total, "total_s": total},
        )
