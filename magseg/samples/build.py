"""Draw random p x p patches of a labelled scene and turn each into a prompt and an RRLE target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from magseg.codec import GRID_METHODS, encode, mask_to_grid
from magseg.format import encode_jpeg
from magseg.prompts import PatchSpec, assistant_turn, edge_text, user_turn
from magseg.samples.draw import colour_jitter, dihedral, draw_patch, draw_window
from magseg.samples.pseudo import label_woods
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
    window: int | None = None  # scenes larger than this are cut to random windows of this side first
    balance: float = 0.0  # share of patches placed over a pixel of a non-majority class
    min_labelled: float = 0.0  # redraw patches with less labelled (class > 0) share: sparse labels
    augment: bool = False  # random flip/90° turn of the window, image and mask together
    jitter: float = 0.0  # colour jitter strength (gain, offset, contrast), 0 = none
    # share of samples whose prompt gives the true classes of the cells just outside the patch (what the
    # checkerboard's second pass reads from its neighbours, magseg.inference.neighbours); 0: never
    neighbours: float = 0.0
    # sparse real labels (0 = not annotated): unannotated woods are labelled tree (magseg.samples.pseudo)
    woods: bool = False

    def check(self) -> None:
        if self.patch < 1 or self.grid < 1 or self.grid > self.patch:
            raise ValueError(f"need 1 <= grid ({self.grid}) <= patch ({self.patch})")
        if self.per_scene < 1:
            raise ValueError(f"per_scene must be >= 1, got {self.per_scene}")
        if self.window is not None and (self.window < self.patch or self.window % self.patch):
            raise ValueError(f"window ({self.window}) must be a multiple of the patch ({self.patch})")
        if not (
            0.0 <= self.balance <= 1.0 and 0.0 <= self.min_labelled <= 1.0 and 0.0 <= self.neighbours <= 1.0
        ):
            raise ValueError("balance, min_labelled and neighbours are shares in [0, 1]")
        if self.grid_method not in GRID_METHODS:
            raise ValueError(
                f"unknown grid method {self.grid_method!r}; use one of {', '.join(GRID_METHODS)}"
            )


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


def patch_target(
    semantic: np.ndarray, x0: int, y0: int, patch: int, grid: int, method: str = "majority"
) -> str:
    """The RRLE answer for the p x p patch at (x0, y0) of a class mask, at a g x g grid."""
    window = semantic[y0 : y0 + patch, x0 : x0 + patch]
    return encode(mask_to_grid(window, grid, method=method))


def truth_edges(
    semantic: np.ndarray, x0: int, y0: int, patch: int, grid: int, method: str = "majority"
) -> tuple[str, str, str, str]:
    """The true classes of the cells just outside each side of a patch (left, top, right, bottom), one cell
    deep, at the patch's cell size; "none" beyond the mask."""
    cell = patch // grid
    h, w = semantic.shape
    rows, cols = slice(y0, y0 + patch), slice(x0, x0 + patch)

    def line(window: np.ndarray, shape: tuple[int, int]) -> str:
        return edge_text(mask_to_grid(window, shape, method=method).ravel())

    return (
        line(semantic[rows, x0 - cell : x0], (grid, 1)) if x0 >= cell else "none",
        line(semantic[y0 - cell : y0, cols], (1, grid)) if y0 >= cell else "none",
        line(semantic[rows, x0 + patch : x0 + patch + cell], (grid, 1)) if x0 + patch + cell <= w else "none",
        line(semantic[y0 + patch : y0 + patch + cell, cols], (1, grid)) if y0 + patch + cell <= h else "none",
    )


def _plain(config: SampleConfig) -> bool:
    """True when samples are drawn as before windows, balance and augmentation existed (same draws)."""
    return (
        config.window is None
        and config.balance == 0
        and config.min_labelled == 0
        and not (config.augment or config.jitter)
    )


def _view(
    scene: LabelledScene, labels: np.ndarray, config: SampleConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The scene window a sample is drawn from, augmented: (H, W, 3) image and (H, W) class mask."""
    height, width = scene.shape
    wx, wy, w, h = draw_window(height, width, config.window, rng)
    image = scene.image[:, wy : wy + h, wx : wx + w]
    semantic = labels[wy : wy + h, wx : wx + w]
    if config.augment:
        op = int(rng.integers(0, 8))
        image, semantic = dihedral(image, op), dihedral(semantic, op)
    image = colour_jitter(image, rng, config.jitter)
    return np.ascontiguousarray(image.transpose(1, 2, 0)), semantic


def scene_samples(scene: LabelledScene, config: SampleConfig, rng: np.random.Generator) -> list[Sample]:
    """Draw ``config.per_scene`` samples from one scene.

    Plain configs draw top-left corners uniformly over the whole scene. With a window, balance or
    augmentation each sample first draws its own (augmented) scene window, then its patch in it.
    """
    config.check()
    height, width = scene.shape
    if height < config.patch or width < config.patch:
        raise ValueError(f"scene {scene.scene_id} is {height}x{width}, smaller than the patch {config.patch}")
    plain = _plain(config)
    labels = label_woods(scene.image, scene.labels.semantic) if config.woods else scene.labels.semantic
    if plain:
        hwc = np.ascontiguousarray(scene.image.transpose(1, 2, 0))
        semantic = labels
        context = encode_jpeg(hwc, config.context_size, config.jpeg_quality)
    samples = []
    for _ in range(config.per_scene):
        if plain:
            x0 = int(rng.integers(0, width - config.patch + 1))
            y0 = int(rng.integers(0, height - config.patch + 1))
        else:
            hwc, semantic = _view(scene, labels, config, rng)
            context = encode_jpeg(hwc, config.context_size, config.jpeg_quality)
            x0, y0 = draw_patch(
                semantic, config.patch, rng, balance=config.balance, min_labelled=config.min_labelled
            )
        spec = PatchSpec(x0, y0, config.patch, hwc.shape[1], hwc.shape[0], config.grid)
        if config.neighbours > 0 and rng.random() < config.neighbours:  # no draw otherwise: same samples
            spec = replace(
                spec, neighbours=truth_edges(semantic, x0, y0, config.patch, config.grid, config.grid_method)
            )
        target = patch_target(semantic, x0, y0, config.patch, config.grid, config.grid_method)
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
