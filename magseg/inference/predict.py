"""Patch inference on one scene: prompts in the training sample format -> engine -> decode -> stitch."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from magseg.classes import CLASSES
from magseg.codec import DecodeReport, cell_scores, decode, encode, grid_to_mask
from magseg.dtypes import check_dtype
from magseg.errors import InputError
from magseg.format import ModelFormat, encode_jpeg
from magseg.inference.engine import CountingHFEngine, Engine, generate_scored
from magseg.inference.meta import read_class_bias, resolve_config
from magseg.inference.neighbours import Edges, first_pass, merge_passes, second_pass_edges
from magseg.model.generate import Request, Scored, class_logit_bias
from magseg.patches import PatchLayout, stitch, window_origin
from magseg.prompts import PatchSpec, user_turn

# The very encoder the samples were built with, so inference images are the same JPEG bytes.


@dataclass
class ScenePrediction:
    """The stitched class mask of a scene and what it took: decode reports, tokens and timings."""

    semantic: np.ndarray  # (H, W) uint8 class ids
    origins: list[tuple[int, int]]  # (x0, y0) of each patch, in request order
    texts: list[str]
    grids: list[np.ndarray]  # decoded g x g grids
    reports: list[DecodeReport]
    tokens: list[int]  # generated tokens per patch (engine output ids)
    tokens_measured: bool  # False: counts were re-tokenised from text (an engine without ids)
    config: ModelFormat
    timings: dict[str, float] = field(default_factory=dict)  # prepare_s, generate_s, decode_s, total_s
    # (H, W) float32: the probability the model gave the tokens of each pixel's RRLE run (codec.cell_scores);
    # None when the engine reports no token probabilities
    confidence: np.ndarray | None = None

    @property
    def n_patches(self) -> int:
        return len(self.origins)

    @property
    def valid_rate(self) -> float:
        """Share of patches whose text was exact RRLE of the grid's shape."""
        return sum(r.valid for r in self.reports) / max(len(self.reports), 1)

    @property
    def tokens_per_patch(self) -> float:
        return float(np.mean(self.tokens)) if self.tokens else 0.0

    @property
    def patches_per_s(self) -> float:
        """Patches over the whole prediction time (prompts, generation, decoding, stitching)."""
        return self.n_patches / max(self.timings.get("total_s", 0.0), 1e-9)


def patch_origins(height: int, width: int, patch: int) -> list[tuple[int, int]]:
    """Disjoint p x p patches, row-major; the last row/column is moved inward to end at the scene edge.

    Training crops never leave the scene (their top-left is drawn over valid positions only), so an
    edge patch overlaps its neighbour rather than showing the model padding it never saw.
    """
    if height < patch or width < patch:
        raise InputError(f"scene {height}x{width} is smaller than the patch {patch}; use a smaller --patch")
    layout = PatchLayout(height, width, patch)
    return [(min(x0, width - patch), min(y0, height - patch)) for x0, y0 in layout.origins()]


def stitch_scored(
    scored: Sequence[Scored], origins: list[tuple[int, int]], shape: tuple[int, int], config: ModelFormat
) -> tuple[np.ndarray, list[tuple[np.ndarray, DecodeReport]], np.ndarray | None]:
    """A scene's completions decoded and stitched: (class mask, (grid, report) per patch, per-pixel token
    probability (float32; None unless every completion reports probabilities, codec.cell_scores))."""
    cell = (config.grid, config.grid)
    decoded = [decode(s.text, cell) for s in scored]
    semantic = stitch_grids([grid for grid, _ in decoded], origins, shape, config.patch)
    if not scored or any(s.tokens_text is None for s in scored):
        return semantic, decoded, None
    cells = [
        cell_scores(s.text, s.tokens_text or (), cell, report.valid)
        for s, (_, report) in zip(scored, decoded, strict=True)
    ]
    return semantic, decoded, stitch_grids(cells, origins, shape, config.patch, np.float32)


def stitch_grids(
    grids: list[np.ndarray],
    origins: list[tuple[int, int]],
    shape: tuple[int, int],
    patch: int,
    dtype: np.dtype | type = np.uint8,
) -> np.ndarray:
    """Expand each g x g grid to its p x p patch and place it; in overlaps the later patch wins."""
    height, width = shape
    layout = PatchLayout(height, width, patch)
    if origins == layout.origins():  # the scene is a whole number of patches
        return stitch(grids, layout, dtype)
    canvas = np.zeros((height, width), dtype=dtype)
    for grid, (x0, y0) in zip(grids, origins, strict=True):
        canvas[y0 : y0 + patch, x0 : x0 + patch] = grid_to_mask(grid, patch)
    return canvas


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
    image: np.ndarray, config: ModelFormat, edges: Mapping[tuple[int, int], Edges] | None = None
) -> tuple[list[PatchSpec], list[Request]]:
    """One request per patch, built exactly as magseg.samples builds a training sample's prompt.

    A scene larger than the model's window is seen window by window (magseg.patches.window_origin):
    each patch's context image and box are those of its window, as in training. The specs keep the
    patch's position in the whole scene. With ``edges`` (origin -> its neighbours' edge cells, the
    checkerboard's second pass, magseg.inference.neighbours) only those patches are built, each told them.
    """
    arr = check_scene_image(image)
    height, width = arr.shape[1:]
    hwc = np.ascontiguousarray(arr.transpose(1, 2, 0))
    contexts: dict[tuple[int, int, int, int], Image.Image] = {}
    specs: list[PatchSpec] = []
    requests: list[Request] = []
    for x0, y0 in patch_origins(height, width, config.patch):
        if edges is not None and (x0, y0) not in edges:
            continue
        win = window_origin(x0, y0, height, width, config.window)
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


def predict_scene(
    image: np.ndarray, engine: Engine, config: ModelFormat, processor: Any = None
) -> ScenePrediction:
    """Predict a scene's class mask: all its patches go to the engine together (one shared scene prefix).

    ``processor`` is only used to estimate token counts for an engine that does not report them.
    """
    return predict_scenes([image], engine, config, processor)[0]


def _two_passes(
    images: list[np.ndarray],
    built: list[tuple[list[PatchSpec], list[Request]]],
    engine: Engine,
    config: ModelFormat,
    processor: Any,
) -> tuple[list[Scored], bool]:
    """The checkerboard: the first colour of every scene in one batch, then the second colour, each patch
    told its decoded neighbours' edge cells; results in the scenes' patch order."""
    origins = [[(s.x0, s.y0) for s in specs] for specs, _ in built]
    first = [first_pass(o, config.patch) for o in origins]
    requests = [
        r for (_, reqs), f in zip(built, first, strict=True) for r, keep in zip(reqs, f, strict=True) if keep
    ]
    scored_a, measured = generate_scored(engine, requests, processor)
    second: list[Request] = []
    at = 0
    for image, o, f in zip(images, origins, first, strict=True):
        n = sum(f)
        edges = second_pass_edges(o, f, [s.text for s in scored_a[at : at + n]], config)
        at += n
        second += scene_requests(image, config, edges)[1]
    scored_b, measured_b = generate_scored(engine, second, processor)
    out: list[Scored] = []
    at_a = at_b = 0
    for f in first:
        n, m = sum(f), len(f) - sum(f)
        out += merge_passes(f, scored_a[at_a : at_a + n], scored_b[at_b : at_b + m])
        at_a, at_b = at_a + n, at_b + m
    return out, measured and measured_b


def predict_scenes(
    images: list[np.ndarray], engine: Engine, config: ModelFormat, processor: Any = None
) -> list[ScenePrediction]:
    """Predict several scenes with their patches in the same engine batches (the region job's model actor
    fills its batches from several tiles); each scene's masks are those it gets alone (tested).

    Timings are shared between the scenes in proportion to their patches.
    """
    config.check()
    t0 = time.perf_counter()
    built = [scene_requests(image, config) for image in images]
    t1 = time.perf_counter()
    if config.neighbours > 0:  # a checkerboard of two passes (magseg.inference.neighbours)
        scored, measured = _two_passes(images, built, engine, config, processor)
    else:
        scored, measured = generate_scored(engine, [r for _, reqs in built for r in reqs], processor)
    texts, tokens = [s.text for s in scored], [s.tokens for s in scored]
    t2 = time.perf_counter()
    total = sum(len(specs) for specs, _ in built)
    out: list[ScenePrediction] = []
    start = 0
    for specs, _ in built:
        t3 = time.perf_counter()
        end = start + len(specs)
        origins = [(s.x0, s.y0) for s in specs]
        shape = (specs[0].scene_height, specs[0].scene_width)
        semantic, decoded, confidence = stitch_scored(scored[start:end], origins, shape, config)
        grids = [grid for grid, _ in decoded]
        share = len(specs) / total
        timings = {"prepare_s": (t1 - t0) * share, "generate_s": (t2 - t1) * share}
        timings["decode_s"] = time.perf_counter() - t3
        timings["total_s"] = sum(timings.values())
        out.append(
            ScenePrediction(
                semantic=semantic,
                origins=origins,
                texts=texts[start:end],
                grids=grids,
                reports=[report for _, report in decoded],
                tokens=tokens[start:end],
                tokens_measured=measured,
                config=config,
                timings=timings,
                confidence=confidence,
            )
        )
        start = end
    return out


def default_max_new_tokens(processor: Any, grid: int) -> int:
    """Room for the longest RRLE of a g x g grid (every cell its own run) in this tokenizer, plus slack."""
    worst = np.add.outer(np.arange(grid), np.arange(grid)) % len(CLASSES)
    tok = getattr(processor, "tokenizer", processor)
    n = len(tok(encode(worst), add_special_tokens=False)["input_ids"])
    return int(n * 1.25) + 8


class Predictor:
    """A model ready for scenes: engine + the sample format it was trained on."""

    def __init__(self, engine: Engine, config: ModelFormat, processor: Any = None, name: str = "") -> None:
        self.engine = engine
        self.config = config
        self.processor = processor
        self.name = name

    @classmethod
    def from_pretrained(
        cls,
        model_path: str | os.PathLike[str],
        *,
        max_new_tokens: int | None = None,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str | None = None,
        class_bias: Mapping[str, float] | None = None,
        **overrides: Any,
    ) -> Predictor:
        """Load a local model (or LoRA folder); its magseg.json sets the format and the decoding's class
        bias (``class_bias`` given wins; {} decodes with none), ``overrides`` win over the format.
        ``dtype`` (one of magseg.dtypes.DTYPES; None: the checkpoint's own) casts the weights: "bfloat16"
        runs the tiny model 1.3-1.5x faster on a CPU with AMX, with slightly different masks (README,
        "Benchmarks")."""
        from magseg.model import load_model

        config, _ = resolve_config(model_path, **overrides)
        model, processor = load_model(model_path, device=device, dtype=check_dtype(dtype))
        limit = max_new_tokens or default_max_new_tokens(processor, config.grid)
        bias = read_class_bias(model_path) if class_bias is None else class_bias
        engine = CountingHFEngine(
            model,
            processor,
            max_new_tokens=limit,
            batch_size=batch_size,
            logit_bias=class_logit_bias(processor.tokenizer, bias),
        )
        return cls(engine, config, processor, name=str(model_path))

    @classmethod
    def from_vllm(
        cls, model_path: str | os.PathLike[str], *, max_new_tokens: int | None = None, **overrides: Any
    ) -> Predictor:
        """The same model served by vLLM on a GPU (a merged model folder; see VLLMEngine)."""
        from transformers import AutoProcessor

        from magseg.inference.vllm_engine import VLLMEngine

        config, _ = resolve_config(model_path, **overrides)
        processor = AutoProcessor.from_pretrained(os.fspath(model_path))
        limit = max_new_tokens or default_max_new_tokens(processor, config.grid)
        bias = class_logit_bias(processor.tokenizer, read_class_bias(model_path))
        engine = VLLMEngine(model_path, processor, max_new_tokens=limit, logit_bias=bias)
        return cls(engine, config, processor, name=str(model_path))

    @classmethod
    def for_engine(
        cls,
        model_path: str | os.PathLike[str],
        engine: str = "hf",
        *,
        batch_size: int = 8,
        max_new_tokens: int | None = None,
        dtype: str | None = None,
    ) -> Predictor:
        """The model behind an engine name: "vllm" (GPU hosts, see from_vllm; vLLM picks its own dtype),
        "hf" (from_pretrained) or "hf-generate": the hf model decoded by transformers' own generate with no
        prefix shared (the same greedy tokens, slower: the reference the engine's speed-ups are measured
        against)."""
        if engine == "vllm":
            return cls.from_vllm(model_path, max_new_tokens=max_new_tokens)
        if engine not in ("hf", "hf-generate"):
            raise InputError(f"engine {engine!r} is not one of hf, hf-generate, vllm")
        predictor = cls.from_pretrained(
            model_path, batch_size=batch_size, max_new_tokens=max_new_tokens, dtype=dtype
        )
        if engine == "hf-generate":
            predictor.engine.share_prefix = predictor.engine.lean = False  # type: ignore[attr-defined]
        return predictor

    def predict(self, image: np.ndarray) -> ScenePrediction:
        return predict_scene(image, self.engine, self.config, self.processor)

    def predict_many(self, images: list[np.ndarray]) -> list[ScenePrediction]:
        """Several scenes, their patches batched together; each result as ``predict`` gives it alone."""
        return predict_scenes(images, self.engine, self.config, self.processor)
