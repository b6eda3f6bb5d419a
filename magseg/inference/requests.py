"""Prompts per patch: a scene's patches as engine requests, built exactly as the training samples were.

Every predictor (magseg.inference.predict, the seam re-reads, the tile server) builds its requests here,
so inference images are the very JPEG bytes and windows the samples had (magseg.format, magseg.prompts).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from magseg.errors import InputError
from magseg.format import ModelFormat, encode_jpeg
from magseg.inference.neighbours import Edges
from magseg.model.generate import Request
from magseg.patches import PatchLayout, window_origin
from magseg.prompts import PatchSpec, user_turn

__all__ = ["check_scene_image", "patch_origins", "scene_requests"]


def patch_origins(height: int, width: int, patch: int) -> list[tuple[int, int]]:
    """Disjoint p x p patches, row-major; the last row/column is moved inward to end at the scene edge.

    Training crops never leave the scene (their top-left is drawn over valid positions only), so an
    edge patch overlaps its neighbour rather than showing the model padding it never saw.
    """
    if height < patch or width < patch:
        raise InputError(f"scene {height}x{width} is smaller than the patch {patch}; use a smaller --patch")
    layout = PatchLayout(height, width, patch)
    return [(min(x0, width - patch), min(y0, height - patch)) for x0, y0 in layout.origins()]


def _as_pil(jpeg: dict[str, Any]) -> Image.Image:
    img = Image.open(io.BytesIO(jpeg["bytes"]))
    img.load()
    return img


def check_scene_image(image: np.ndarray) -> np.ndarray:
    """The scene as a (3, H, W) uint8 array, or an InputError saying what is wrong with it."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[0] != 3 or arr.dtype != np.uint8:
        raise InputError(
            f"the scene must be a (3, H, W) uint8 RGB array, got {arr.shape} {arr.dtype}; read it as RGB"
        )
    return arr


def scene_requests(
    image: np.ndarray,
    config: ModelFormat,
    edges: Mapping[tuple[int, int], Edges] | None = None,
    origins: Sequence[tuple[int, int]] | None = None,
) -> tuple[list[PatchSpec], list[Request]]:
    """One request per patch, built exactly as magseg.samples builds a training sample's prompt.

    A scene larger than the model's window is seen window by window (magseg.patches.window_origin):
    each patch's context image and box are those of its window, as in training. The specs keep the
    patch's position in the whole scene. With ``edges`` (origin -> its neighbours' edge cells, the
    checkerboard's second pass, magseg.inference.neighbours) only those patches are built, each told them;
    with ``origins`` (any offsets: the seam re-reads, magseg.inference.rereads) those patches instead.
    """
    arr = check_scene_image(image)
    height, width = arr.shape[1:]
    hwc = np.ascontiguousarray(arr.transpose(1, 2, 0))
    contexts: dict[tuple[int, int, int, int], Image.Image] = {}
    specs: list[PatchSpec] = []
    requests: list[Request] = []
    for x0, y0 in patch_origins(height, width, config.patch) if origins is None else origins:
        if edges is not None and (x0, y0) not in edges:
            continue
        win = window_origin(x0, y0, height, width, config.window, config.patch)
        wx, wy, w, h = win
        if win not in contexts:
            view = np.ascontiguousarray(hwc[wy : wy + h, wx : wx + w])
            contexts[win] = _as_pil(encode_jpeg(view, config.context_size, config.jpeg_quality))
        told = None if edges is None else edges[(x0, y0)]
        local = PatchSpec(x0 - wx, y0 - wy, config.patch, w, h, config.grid, told)
        images = [contexts[win]]
        if config.with_crop:
            crop = hwc[y0 : y0 + config.patch, x0 : x0 + config.patch]
            images.append(_as_pil(encode_jpeg(crop, config.crop_size, config.jpeg_quality)))
        specs.append(PatchSpec(x0, y0, config.patch, width, height, config.grid))
        requests.append((images, [user_turn(local, with_crop=config.with_crop)]))
    return specs, requests
