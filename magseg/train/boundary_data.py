"""Boundary-model training data: instance contours as targets, loss weights, random augmented crops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

from magseg.errors import EmptyInputError, InputError
from magseg.sources import list_scenes

__all__ = ["BoundaryScene", "boundary_target", "load_boundary_scenes", "loss_weight", "sample_batch"]

_CROSS = ndimage.generate_binary_structure(2, 1)


@dataclass
class BoundaryScene:
    """One training scene: RGB (3, H, W) uint8, boundary target (H, W) uint8 0/1, loss weight (H, W) float32."""

    scene_id: str
    image: np.ndarray
    target: np.ndarray
    weight: np.ndarray


def boundary_target(instance: np.ndarray, thickness: int = 3) -> np.ndarray:
    """Contours of the labelled instances, about ``thickness`` pixels wide, as uint8 0/1.

    The inner contour of every instance (its pixels touching another id, background included) is dilated
    by ``(thickness - 1) // 2`` pixels: a field against background gets a ``thickness``-wide line
    straddling its edge; two touching fields get both inner contours, one pixel wider.
    """
    inst = np.asarray(instance)
    if inst.ndim != 2:
        raise InputError(f"an instance mask must be 2-D, got shape {inst.shape}")
    if thickness < 1:
        raise InputError(f"boundary thickness {thickness}: must be >= 1 pixel")
    edges = find_boundaries(inst, connectivity=1, mode="inner")  # instance pixels next to another id or 0
    grow = (thickness - 1) // 2
    if grow > 0 and edges.any():
        edges = ndimage.binary_dilation(edges, structure=_CROSS, iterations=grow)
    return edges.astype(np.uint8)


def loss_weight(
    instance: np.ndarray, sparse: bool, near_px: int = 8, unlabelled_weight: float = 0.0
) -> np.ndarray:
    """Per-pixel loss weight: 1 everywhere for fully labelled scenes (0 is checked background).

    For ``sparse`` scenes, where 0 means "not annotated" (naip-fields: roads, woods, farmsteads and a few
    unlabelled fields are 0), only annotated pixels and those within ``near_px`` of them (which holds the
    outer half of every contour) weigh 1; the rest weighs ``unlabelled_weight``, since an unlabelled field
    next to a labelled one would otherwise teach the model that its edges are not edges.
    """
    inst = np.asarray(instance)
    if not sparse:
        return np.ones(inst.shape, dtype=np.float32)
    annotated = inst > 0
    if not annotated.any():
        return np.full(inst.shape, unlabelled_weight, dtype=np.float32)
    near = ndimage.distance_transform_edt(~annotated) <= near_px
    return np.where(near, 1.0, unlabelled_weight).astype(np.float32)


def load_boundary_scenes(
    path: str,
    *,
    sparse: bool = False,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    thickness: int = 3,
    near_px: int = 8,
    unlabelled_weight: float = 0.0,
) -> list[BoundaryScene]:
    """Load the scenes of a labelled folder (magseg.sources.list_scenes) with their targets and weights.

    ``include`` (scene ids; None: all) and ``exclude`` pick a subset, e.g. the training split of a folder.
    """
    refs = list_scenes(path)
    known = {r.scene_id for r in refs}
    missing = sorted(set(include or ()) - known)
    if missing:
        raise InputError(f"{path}: no scene(s) {', '.join(missing[:3])}; check the include list")
    chosen = [r for r in refs if (include is None or r.scene_id in include) and r.scene_id not in exclude]
    if not chosen:
        raise EmptyInputError(f"{path}: include/exclude leave no scene; keep at least one")
    out = []
    for ref in chosen:
        scene = ref.load()
        inst = scene.labels.instance
        out.append(
            BoundaryScene(
                scene.scene_id,
                np.ascontiguousarray(scene.image, dtype=np.uint8),
                boundary_target(inst, thickness),
                loss_weight(inst, sparse, near_px, unlabelled_weight),
            )
        )
    return out


def _crop(scene: BoundaryScene, rng: np.random.Generator, size: int, tries: int) -> tuple[np.ndarray, ...]:
    """A random ``size`` crop (zero-padded, weight 0, where the scene is smaller); mostly supervised pixels."""
    h, w = scene.target.shape
    best: tuple[np.ndarray, ...] | None = None
    best_w = -1.0
    for _ in range(max(1, tries)):
        y = int(rng.integers(0, max(1, h - size + 1)))
        x = int(rng.integers(0, max(1, w - size + 1)))
        wt = scene.weight[y : y + size, x : x + size]
        frac = float(wt.mean()) if wt.size else 0.0
        if frac > best_w:
            best_w = frac
            best = (
                scene.image[:, y : y + size, x : x + size],
                scene.target[y : y + size, x : x + size],
                wt,
            )
        if frac >= 0.5:  # sparse scenes: avoid crops that are mostly unannotated (they teach nothing)
            break
    assert best is not None
    img, tgt, wt = best
    if img.shape[1:] != (size, size):
        ph, pw = size - img.shape[1], size - img.shape[2]
        img = np.pad(img, ((0, 0), (0, ph), (0, pw)))
        tgt = np.pad(tgt, ((0, ph), (0, pw)))
        wt = np.pad(wt, ((0, ph), (0, pw)))
    return img, tgt, wt


def sample_batch(
    scenes: Sequence[BoundaryScene],
    probs: np.ndarray,
    rng: np.random.Generator,
    batch: int,
    crop: int,
    jitter: float = 0.0,
    tries: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``batch`` random crops with random flips / 90-degree turns and brightness-contrast jitter.

    Returns images (B, 3, crop, crop) float32 in [0, 1], targets and weights (B, crop, crop) float32.
    Aerial images have no up: any rotation or mirror is another valid image.
    """
    images = np.empty((batch, 3, crop, crop), dtype=np.float32)
    targets = np.empty((batch, crop, crop), dtype=np.float32)
    weights = np.empty((batch, crop, crop), dtype=np.float32)
    for b, idx in enumerate(rng.choice(len(scenes), size=batch, p=probs)):
        img, tgt, wt = _crop(scenes[int(idx)], rng, crop, tries)
        k = int(rng.integers(4))
        img, tgt, wt = np.rot90(img, k, axes=(1, 2)), np.rot90(tgt, k), np.rot90(wt, k)
        if rng.random() < 0.5:
            img, tgt, wt = img[:, :, ::-1], tgt[:, ::-1], wt[:, ::-1]
        x = img.astype(np.float32) / 255.0
        if jitter > 0:  # the synthetic scenes' colours are not NAIP's: do not let the model rely on them
            gain = 1.0 + rng.uniform(-jitter, jitter, size=(3, 1, 1))
            mean = x.mean()
            x = np.clip((x - mean) * (1.0 + rng.uniform(-jitter, jitter)) + mean, 0, 1) * gain
        images[b] = np.clip(x, 0.0, 1.0)
        targets[b] = tgt
        weights[b] = wt
    return images, targets, weights
