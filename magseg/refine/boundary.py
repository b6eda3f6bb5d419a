"""Boundary probability maps: a SegFormer boundary model (EPOC) or an image-gradient fallback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy import ndimage
from skimage import color

from magseg.bundled import boundary_choice
from magseg.errors import InputError

__all__ = [
    "BoundaryModel",
    "GradientBoundary",
    "OrientedBoundary",
    "SegformerBoundary",
    "FusedBoundary",
    "check_image",
    "choose_boundary_model",
    "load_boundary_model",
    "scene_boundary",
]

# ImageNet statistics: what SegformerImageProcessor uses unless a preprocessor_config.json says otherwise.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@runtime_checkable
class BoundaryModel(Protocol):
    """Anything that maps an RGB image (3, H, W) uint8 to a boundary probability (H, W) float32 in [0, 1]."""

    def predict(self, image: np.ndarray) -> np.ndarray: ...


def merge_threshold(model: BoundaryModel | None) -> float:
    """The merge threshold a boundary model asks of refinement (its ``merge_below``; none asked: 0, off)."""
    return float(getattr(model, "merge_below", 0.0))


def check_image(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a (3, H, W) array, or raise InputError naming what is wrong with it."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[0] != 3 or arr.shape[1] == 0 or arr.shape[2] == 0:
        raise InputError(f"the image must be (3, H, W) RGB, got shape {arr.shape}; give a 3-band raster")
    return arr


class GradientBoundary:
    """Image-gradient boundaries: Sobel magnitude of the smoothed image, per-channel max, robustly scaled.

    The smoothing is ``sigma_m`` metres (``sigma`` pixels overrides it) at ``gsd`` metres per pixel.
    Scaling divides by a high percentile of the magnitude (not the max) so that a few very sharp edges
    (roads, buildings) do not make every field edge look faint; the result is clipped to [0, 1].
    """

    def __init__(
        self,
        sigma: float | None = None,
        percentile: float = 98.0,
        *,
        sigma_m: float = 2.0,
        gsd: float = 1.0,
    ) -> None:
        if not (gsd > 0 and np.isfinite(gsd)):
            raise ValueError(f"need gsd > 0 metres per pixel, got {gsd}")
        px = sigma_m / gsd if sigma is None else sigma
        if px < 0 or not 0 < percentile <= 100:
            raise ValueError(f"need sigma >= 0 and 0 < percentile <= 100, got {px}, {percentile}")
        self.sigma = float(px)
        self.gsd = float(gsd)
        self.percentile = float(percentile)

    def predict(self, image: np.ndarray) -> np.ndarray:
        arr = check_image(image).astype(np.float32)
        mag = np.zeros(arr.shape[1:], dtype=np.float32)
        for band in arr:
            # smoothing first: crop rows and JPEG noise are finer than field edges
            smooth = ndimage.gaussian_filter(band, self.sigma) if self.sigma > 0 else band
            grad = np.hypot(ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1))
            np.maximum(mag, grad, out=mag)
        scale = float(np.percentile(mag, self.percentile))
        if scale <= 0:  # a flat image has no boundary anywhere
            return np.zeros_like(mag)
        return np.clip(mag / scale, 0.0, 1.0).astype(np.float32)


class OrientedBoundary:
    """Colour steps between long, narrow boxes either side of each pixel: field edges, not crop texture.

    For each of ``angles`` orientations (an even number) the image, in CIELAB, is averaged over two
    boxes ``length_m`` long and ``width_m`` wide lying either side of the pixel across that orientation;
    the response is the colour distance (ΔE) between the two means, and the map is the maximum over
    orientations, divided by its ``percentile`` and clipped to [0, 1]. Averaging colour BEFORE
    differencing is what removes texture: speckle, and crop rows closer than the box width, average
    out inside each box, whereas the Sobel magnitude of GradientBoundary keeps their energy; along the
    edge, long boxes follow straight field edges and bridge faint or broken stretches of them. Sizes are in metres at ``gsd`` metres per pixel; 8 m x
    2 m was chosen on NAIP at 1 m and synthetic scenes at 0.5 m (scripts/eval_refine_*.py).
    """

    def __init__(
        self,
        length_m: float = 8.0,
        width_m: float = 2.0,
        *,
        gsd: float = 1.0,
        angles: int = 8,
        percentile: float = 98.0,
        scale: float | None = None,
    ) -> None:
        if not (gsd > 0 and np.isfinite(gsd)):
            raise ValueError(f"need gsd > 0 metres per pixel, got {gsd}")
        if length_m <= 0 or width_m <= 0 or angles < 2 or angles % 2 or not 0 < percentile <= 100:
            raise ValueError(
                f"need length_m, width_m > 0, an even angles >= 2, 0 < percentile <= 100; got "
                f"{length_m}, {width_m}, {angles}, {percentile}"
            )
        self.gsd = float(gsd)
        self.length = max(1, int(round(length_m / gsd)))
        self.width = max(1, int(round(width_m / gsd)))
        self.angles = int(angles)
        self.percentile = float(percentile)
        if scale is not None and not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"need a positive scale (Lab units), got {scale}")
        self.scale = scale

    def step(self, image: np.ndarray) -> np.ndarray:
        """The unnormalised colour step (CIELAB units) across the strongest oriented edge at each pixel."""
        arr = check_image(image)
        lab = np.moveaxis(color.rgb2lab(np.moveaxis(arr, 0, -1)).astype(np.float32), -1, 0)  # (3, H, W)
        step = np.zeros(arr.shape[1:], dtype=np.float32)
        # each turned frame serves two orientations 90 degrees apart (its rows and its columns)
        for angle in np.arange(self.angles // 2) * 180.0 / self.angles:
            np.maximum(step, self._frame(lab, float(angle)), out=step)
        return step

    def image_scale(self, image: np.ndarray, valid: np.ndarray | None = None) -> float:
        """The ``percentile`` of an image's step: the scale ``predict`` divides by when none is fixed.

        ``valid`` (H, W) bool: only those pixels count, less a band of the step's reach along their edge
        (a window hanging over the imagery's edge: the empty part and the jump into it are no landscape);
        0.0 when none is left."""
        step = self.step(image)
        if valid is None:
            return float(np.percentile(step, self.percentile))
        keep = ndimage.binary_erosion(
            np.asarray(valid, dtype=bool), iterations=self.length + 1, border_value=1
        )
        return float(np.percentile(step[keep], self.percentile)) if keep.any() else 0.0

    def predict(self, image: np.ndarray) -> np.ndarray:
        step = self.step(image)
        # A fixed scale makes the map of a pixel independent of the window it was cut with: tiles of a
        # region agree along their seams. Without one, each image is scaled by its own percentile.
        scale = self.scale if self.scale is not None else float(np.percentile(step, self.percentile))
        if scale <= 0:  # a flat image has no boundary anywhere
            return np.zeros_like(step)
        return np.clip(step / scale, 0.0, 1.0).astype(np.float32)

    def _frame(self, lab: np.ndarray, angle: float) -> np.ndarray:
        """The stronger colour step across rows or across columns, in a frame turned by ``angle`` degrees."""
        h, w = lab.shape[1:]
        frame = lab if angle == 0 else ndimage.rotate(lab, angle, axes=(2, 1), order=1, mode="nearest")
        step = np.maximum(self._step(frame, across=1), self._step(frame, across=2))
        if angle == 0:
            return step
        back = ndimage.rotate(step, -angle, order=1, mode="nearest")
        oy, ox = (back.shape[0] - h) // 2, (back.shape[1] - w) // 2
        return back[oy : oy + h, ox : ox + w]

    def _step(self, frame: np.ndarray, across: int) -> np.ndarray:
        """ΔE between the two boxes either side of each pixel along axis ``across`` of (3, H, W)."""
        size = [1, self.length, self.length]
        size[across] = self.width
        mean = ndimage.uniform_filter(frame, size=size, mode="nearest")
        half = (self.width + 1) // 2  # box centres half a box either side: adjacent boxes
        n = mean.shape[across]
        before = np.take(mean, np.clip(np.arange(n) - half, 0, n - 1), axis=across)
        after = np.take(mean, np.clip(np.arange(n) + half, 0, n - 1), axis=across)
        return np.sqrt(((before - after) ** 2).sum(axis=0))


#: SegFormer's total downsampling (4 stages: 4, 2, 2, 2): native-scale inputs are padded to a multiple.
NATIVE_STRIDE = 32


class SegformerBoundary:
    """EPOC's boundary model: a one-label SegformerForSemanticSegmentation loaded from a local directory.

    The image is resized to ``resolution`` (the model's training size), normalised like
    SegformerImageProcessor, and the logit map is upsampled back to (H, W) before the sigmoid. A model
    trained at native pixel scale (preprocessor_config.json ``"do_resize": false``) sees every image as
    it is, edge-padded to a multiple of 32 (``resolution`` is None then): any tile size, one scale.
    """

    def __init__(
        self, path: str | os.PathLike[str], resolution: int | None = None, device: str | None = None
    ):
        import torch
        from transformers import SegformerForSemanticSegmentation

        root = Path(path)
        if not (root / "config.json").is_file():
            raise InputError(f"{root}: no config.json; give a directory written by save_pretrained")
        if not any(root.glob("*.safetensors")):
            raise InputError(f"{root}: no .safetensors weights; re-save the model with safe_serialization")
        model = SegformerForSemanticSegmentation.from_pretrained(
            root, use_safetensors=True, local_files_only=True
        )
        if model.config.num_labels != 1:
            raise InputError(
                f"{root}: the model has {model.config.num_labels} labels; a boundary model has exactly 1"
            )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        # transformers types .to() through a decorator mypy misreads; it takes a device string
        self.model = model.to(self.device).eval()  # type: ignore[arg-type]
        proc = _processor_config(root)
        self.mean = tuple(proc.get("image_mean", IMAGENET_MEAN))
        self.std = tuple(proc.get("image_std", IMAGENET_STD))
        native = proc.get("do_resize") is False and resolution is None
        self.resolution: int | None = None if native else int(resolution or _processor_size(proc) or 512)
        # trained models may ask to be fused with the image fallback (chosen on their training tiles)
        self.fuse_image_fallback = bool(proc.get("fuse_image_fallback", False))
        # and to merge the pieces of a field its map parts only weakly (magseg.refine.merge_weak_borders)
        self.merge_below = float(proc.get("merge_below", 0.0))

    def predict(self, image: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F  # noqa: N812

        arr = check_image(image)
        h, w = arr.shape[1:]
        x = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)[None].to(self.device)
        if self.resolution is None:  # native scale: pad to the model's stride, crop the logits back
            x = F.pad(x, (0, -w % NATIVE_STRIDE, 0, -h % NATIVE_STRIDE), mode="replicate")
        else:
            x = F.interpolate(
                x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False
            )
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        with torch.inference_mode():
            logits = self.model(pixel_values=(x - mean) / std).logits
            size = (h, w) if self.resolution is not None else tuple(x.shape[2:])
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)[..., :h, :w]
            prob = torch.sigmoid(logits[0, 0])
        return prob.float().cpu().numpy().astype(np.float32)


def choose_boundary_model(value: str | os.PathLike[str] | None, **kwargs: Any) -> BoundaryModel | None:
    """The trained boundary model a ``--boundary`` value names (see magseg.bundled.boundary_choice): the
    bundled one for None, none for "none" (refinement then uses the image fallback alone)."""
    chosen = boundary_choice(value)
    return load_boundary_model(chosen, **kwargs) if chosen else None


class FusedBoundary:
    """The pixelwise maximum of several boundary maps: a trained model's edges plus the image fallback's.

    A learned map finds edges the colour steps miss (synthetic bunds, faint field lines); the fallback
    keeps sharp colour steps a small model under-calls on imagery unlike its training data.
    """

    def __init__(self, *models: BoundaryModel) -> None:
        if not models:
            raise ValueError("FusedBoundary needs at least one boundary model")
        self.models = models
        # the trained model's merge threshold (chosen on its map fused so); the image fallback asks none
        self.merge_below = max(merge_threshold(m) for m in models)

    def predict(self, image: np.ndarray) -> np.ndarray:
        maps = [m.predict(image) for m in self.models]
        return np.maximum.reduce(maps).astype(np.float32)


def scene_boundary(model: BoundaryModel | None, gsd: float, scale: float | None = None) -> BoundaryModel:
    """The boundary model to use on imagery at ``gsd`` m/px: the image fallback (at ``scale``, see
    OrientedBoundary) when ``model`` is None, the model fused with that fallback when the model asks for
    it (``fuse_image_fallback`` in its preprocessor_config.json), else the model itself."""
    fallback = OrientedBoundary(gsd=gsd, scale=scale)
    if model is None:
        return fallback
    if getattr(model, "fuse_image_fallback", False):
        return FusedBoundary(model, fallback)
    return model


def _processor_config(root: Path) -> dict[str, Any]:
    """The preprocessor_config.json beside the weights, if any (mean, std and size of training)."""
    cfg = root / "preprocessor_config.json"
    if not cfg.is_file():
        return {}
    data: dict[str, Any] = json.loads(cfg.read_text())
    return data


def _processor_size(proc: dict[str, Any]) -> int | None:
    size = proc.get("size")
    if isinstance(size, int):
        return size
    if isinstance(size, dict) and "height" in size:
        return int(size["height"])
    return None


def load_boundary_model(path: str | os.PathLike[str] | None, **kwargs: Any) -> BoundaryModel:
    """Load the SegFormer boundary model at ``path``; None gives the image fallback (OrientedBoundary)."""
    if path is None:
        return OrientedBoundary(**kwargs)
    if not Path(path).is_dir():
        raise InputError(
            f"{path}: no such model directory; give a directory holding a trained boundary model"
        )
    return SegformerBoundary(path, **kwargs)
