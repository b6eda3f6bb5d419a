"""One labelled scene: an RGB image and its label raster on the same grid."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from magseg.labels import LabelRaster


@dataclass
class LabelledScene:
    """An RGB image (3, H, W) uint8 with instance and class labels on its grid."""

    scene_id: str
    image: np.ndarray
    labels: LabelRaster

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.image.shape[1]), int(self.image.shape[2]))


@dataclass
class SceneRef:
    """A scene found on disk, loaded only when asked (folders can hold thousands)."""

    scene_id: str
    image_path: Path
    loader: Callable[[], LabelledScene] = field(repr=False)

    def load(self) -> LabelledScene:
        return self.loader()
