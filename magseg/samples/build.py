"""Draw random p x p patches of a labelled scene and turn each into a prompt and an RRLE target."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

from magseg.codec import encode, mask_to_grid
from magseg.prompts import PatchSpec, assistant_turn, user_turn
from magseg.sources import LabelledScene


@dataclass(frozen=True)
class SampleConfig:
    """How samples are drawn; the defaults suit the tiny model (8 px cells at p = 64, g = 8)."""

    patch: int = 64  # p: patch side in pixels
    grid: int = 8  # g: the RRLE grid side (g = p: full resolution)
    per_scene: int = 16  # samples drawn from each scene
    context_size: int = 256  # the scene image is stored resized to this side (the model resizes again)
    crop_size: int | None = None  # the patch crop is stored at this side (None: its own p pixels)
    with_crop: bool = True  # also give the model the patch crop as a second image
    grid_method: str = "majority"
    jpeg_quality: int = 90

    def check(self) -> None:
        if self.patch < 1 or self.grid < 1 or self.grid > self.patch:
            raise ValueError(f"need 1 <= grid ({self.grid}) <= patch ({self.patch})")
        if self.per_scene < 1:
            raise ValueError(f"per_scene must be >= 1, got {self.per_scene}")


@dataclass
class Sample:
    """One training sample, in the conversational prompt/completion form TRL's trainers read."""

    scene_id: str
    x0: int
    y0: int
    patch: int
    grid: int
    images: list[dict[str, Any]]  # {"bytes": JPEG, "path": None}: datasets' Image feature encoding
    prompt: list[dict[str, Any]]
    completion: list[dict[str, Any]]
    solution: str  # the RRLE target again, as plain text: GRPO's reward reads it

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def encode_jpeg(array_hwc: np.ndarray, size: int | None, quality: int) -> dict[str, Any]:
    """An (H, W, 3) image as JPEG bytes in datasets' Image encoding, resized to ``size`` square when given."""
    img = Image.fromarray(array_hwc)
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return {"bytes": buf.getvalue(), "path": None}


def patch_target(
    semantic: np.ndarray, x0: int, y0: int, patch: int, grid: int, method: str = "majority"
) -> str:
    """The RRLE answer for the p x p patch at (x0, y0) of a class mask, at a g x g grid."""
    window = semantic[y0 : y0 + patch, x0 : x0 + patch]
    return encode(mask_to_grid(window, grid, method=method))  # type: ignore[arg-type]


def scene_samples(scene: LabelledScene, config: SampleConfig, rng: np.random.Generator) -> list[Sample]:
    """Draw ``config.per_scene`` samples from one scene (top-left corners uniform over valid positions)."""
    config.check()
    height, width = scene.shape
    if height < config.patch or width < config.patch:
        raise ValueError(f"scene {scene.scene_id} is {height}x{width}, smaller than the patch {config.patch}")
    hwc = np.ascontiguousarray(scene.image.transpose(1, 2, 0))
    context = encode_jpeg(hwc, config.context_size, config.jpeg_quality)
    samples = []
    for _ in range(config.per_scene):
        x0 = int(rng.integers(0, width - config.patch + 1))
        y0 = int(rng.integers(0, height - config.patch + 1))
        spec = PatchSpec(x0, y0, config.patch, width, height, config.grid)
        target = patch_target(scene.labels.semantic, x0, y0, config.patch, config.grid, config.grid_method)
        images = [context]
        if config.with_crop:
            crop = hwc[y0 : y0 + config.patch, x0 : x0 + config.patch]
            images.append(encode_jpeg(crop, config.crop_size, config.jpeg_quality))
        samples.append(
            Sample(
                scene_id=scene.scene_id,
                x0=x0,
                y0=y0,
                patch=config.patch,
                grid=config.grid,
                images=images,
                prompt=[user_turn(spec, with_crop=config.with_crop)],
                completion=[assistant_turn(target)],
                solution=target,
            )
        )
    return samples
