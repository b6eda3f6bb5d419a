"""Where a training patch comes from: its scene window, its position (class-balanced or uniform), and
the augmentation that keeps image and mask consistent (flips, 90° turns, colour jitter).

Training scenes larger than the configured window are cut to random windows of that side, as inference
cuts larger scenes into windows (magseg.patches.window_origin): the scene context always covers the
ground a training scene covered.
"""

from __future__ import annotations

import numpy as np


def draw_window(
    height: int, width: int, window: int | None, rng: np.random.Generator
) -> tuple[int, int, int, int]:
    """A random window (x0, y0, w, h) of at most ``window`` pixels a side (the whole scene when smaller)."""
    if window is None:
        return 0, 0, width, height
    w, h = min(window, width), min(window, height)
    return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h


def draw_patch(
    semantic: np.ndarray,
    patch: int,
    rng: np.random.Generator,
    *,
    balance: float = 0.0,
    min_labelled: float = 0.0,
    tries: int = 20,
) -> tuple[int, int]:
    """A patch's top-left corner in a class mask.

    With probability ``balance`` the patch is placed over a random pixel of a class drawn uniformly from
    the classes present other than the most common one (so trees, ponds, wells are seen as often as
    fields); otherwise uniformly. Patches whose labelled share (class > 0) is below ``min_labelled`` are
    drawn again (up to ``tries`` times): for sparse labels where 0 means "not annotated".
    """
    height, width = semantic.shape
    counts = np.bincount(semantic.ravel(), minlength=1)
    present = [int(c) for c in np.flatnonzero(counts) if c != int(np.argmax(counts))]
    x0 = y0 = 0
    for _ in range(max(tries, 1)):
        if present and rng.random() < balance:
            cls = present[int(rng.integers(0, len(present)))]
            ys, xs = np.nonzero(semantic == cls)
            k = int(rng.integers(0, len(ys)))
            x0 = int(np.clip(xs[k] - rng.integers(0, patch), 0, width - patch))
            y0 = int(np.clip(ys[k] - rng.integers(0, patch), 0, height - patch))
        else:
            x0 = int(rng.integers(0, width - patch + 1))
            y0 = int(rng.integers(0, height - patch + 1))
        if min_labelled <= 0 or np.mean(semantic[y0 : y0 + patch, x0 : x0 + patch] > 0) >= min_labelled:
            break
    return x0, y0


def dihedral(array: np.ndarray, op: int) -> np.ndarray:
    """One of the 8 flips/turns of the last two axes (op 0 = identity), as a contiguous copy."""
    out = np.rot90(array, k=op % 4, axes=(-2, -1))
    if op >= 4:
        out = np.flip(out, axis=-1)
    return np.ascontiguousarray(out)


def colour_jitter(image_chw: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Per-band gain and offset plus a global contrast change; uint8 in, uint8 out."""
    if strength <= 0:
        return image_chw
    img = image_chw.astype(np.float32)
    mean = img.mean()
    contrast = 1.0 + rng.uniform(-strength, strength)
    gain = 1.0 + rng.uniform(-strength, strength, size=(img.shape[0], 1, 1))
    offset = rng.uniform(-40 * strength, 40 * strength, size=(img.shape[0], 1, 1))
    img = (img - mean) * contrast + mean
    return np.clip(img * gain + offset, 0, 255).astype(np.uint8)
