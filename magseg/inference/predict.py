"""Patch inference on one scene: prompts in the training sample format -> engine -> decode -> stitch."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from magseg.classes import CLASSES
from magseg.codec import DecodeReport, cell_scores, decode, encode, grid_to_mask
from magseg.decoding import check_share
from magseg.dtypes import check_dtype
from magseg.errors import InputError
from magseg.format import ModelFormat
from magseg.inference.engine import CountingHFEngine, Engine, generate_scored
from magseg.inference.meta import read_class_bias, read_rereads, resolve_config
from magseg.inference.neighbours import first_pass, merge_passes, second_pass_edges
from magseg.inference.requests import scene_requests
from magseg.inference.rereads import Reread, merge_scored, reread_requests
from magseg.model.generate import Request, Scored, class_logit_bias
from magseg.patches import PatchLayout, stitch
from magseg.prompts import PatchSpec


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
    # the seam re-reads written into ``semantic`` (magseg.inference.rereads): their (x0, y0) and tokens
    reread_origins: list[tuple[int, int]] = field(default_factory=list)
    reread_tokens: list[int] = field(default_factory=list)

    @property
    def n_patches(self) -> int:
        """The scene's patches (its grid); re-reads are counted apart (``reread_origins``)."""
        return len(self.origins)

    @property
    def output_tokens(self) -> int:
        """Every token the model wrote for this scene: its patches' and its re-reads'."""
        return int(sum(self.tokens) + sum(self.reread_tokens))

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


def predict_scene(
    image: np.ndarray, engine: Engine, config: ModelFormat, processor: Any = None, rereads: float = 0.0
) -> ScenePrediction:
    """Predict a scene's class mask: all its patches go to the engine together (one shared scene prefix).

    ``processor`` is only used to estimate token counts for an engine that does not report them;
    ``rereads``: the share of seam re-reads (magseg.inference.rereads; 0: none).
    """
    return predict_scenes([image], engine, config, processor, rereads)[0]


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


Stitched = tuple[np.ndarray, list[tuple[np.ndarray, DecodeReport]], np.ndarray | None]


def _reread_scenes(
    images: list[np.ndarray],
    stitched: list[Stitched],
    origins: list[list[tuple[int, int]]],
    engine: Engine,
    config: ModelFormat,
    processor: Any,
    share: float,
) -> tuple[list[Stitched], list[list[Reread]], list[list[int]], bool]:
    """The seam re-reads of every scene in one engine call, merged into each scene's stitched mask (and
    token probabilities): (stitched, re-reads, their tokens, per scene; whether counts were measured)."""
    built = [
        reread_requests(image, semantic, o, config, share)
        for image, (semantic, _, _), o in zip(images, stitched, origins, strict=True)
    ]
    plans = [plan for plan, _, _ in built]
    requests = [r for _, reqs, _ in built for r in reqs]
    rows = [n for _, _, scene_rows in built for n in scene_rows]  # an engine that can stops there
    scored, measured = generate_scored(engine, requests, processor, rows) if requests else ([], True)
    out: list[Stitched] = []
    tokens: list[list[int]] = []
    at = 0
    for (semantic, decoded, confidence), (plan, _, rows_k) in zip(stitched, built, strict=True):
        mine = scored[at : at + len(plan)]
        at += len(plan)
        merged, merged_conf = merge_scored(
            semantic, confidence, plan, mine, config.patch, config.grid, rows_k
        )
        out.append((merged, decoded, merged_conf))
        tokens.append([s.tokens for s in mine])
    return out, plans, tokens, measured


def predict_scenes(
    images: list[np.ndarray],
    engine: Engine,
    config: ModelFormat,
    processor: Any = None,
    rereads: float = 0.0,
) -> list[ScenePrediction]:
    """Predict several scenes with their patches in the same engine batches (the region job's model actor
    fills its batches from several tiles); each scene's masks are those it gets alone (tested). With
    ``rereads`` > 0, a second engine call re-reads up to that share of each scene's patches over its
    disagreeing seams (magseg.inference.rereads), again batched across the scenes.

    Timings are shared between the scenes in proportion to their patches.
    """
    config.check()
    share = check_share(rereads)
    t0 = time.perf_counter()
    built = [scene_requests(image, config) for image in images]
    t1 = time.perf_counter()
    if config.neighbours > 0:  # a checkerboard of two passes (magseg.inference.neighbours)
        scored, measured = _two_passes(images, built, engine, config, processor)
    else:
        scored, measured = generate_scored(engine, [r for _, reqs in built for r in reqs], processor)
    texts, tokens = [s.text for s in scored], [s.tokens for s in scored]
    t2 = time.perf_counter()
    origins = [[(s.x0, s.y0) for s in specs] for specs, _ in built]
    stitched: list[Stitched] = []
    decode_s: list[float] = []
    start = 0
    for specs, o in zip((specs for specs, _ in built), origins, strict=True):
        t3 = time.perf_counter()
        shape = (specs[0].scene_height, specs[0].scene_width)
        stitched.append(stitch_scored(scored[start : start + len(specs)], o, shape, config))
        decode_s.append(time.perf_counter() - t3)
        start += len(specs)
    plans: list[list[Reread]] = [[] for _ in images]
    again: list[list[int]] = [[] for _ in images]
    t4 = time.perf_counter()
    if share > 0:
        stitched, plans, again, measured_again = _reread_scenes(
            images, stitched, origins, engine, config, processor, share
        )
        measured = measured and measured_again
    reread_s = time.perf_counter() - t4
    total = sum(len(o) for o in origins)
    out: list[ScenePrediction] = []
    start = 0
    for k, o in enumerate(origins):
        end = start + len(o)
        semantic, decoded, confidence = stitched[k]
        share_k = len(o) / total
        timings = {"prepare_s": (t1 - t0) * share_k, "generate_s": (t2 - t1 + reread_s) * share_k}
        timings["decode_s"] = decode_s[k]
        timings["total_s"] = sum(timings.values())
        out.append(
            ScenePrediction(
                semantic=semantic,
                origins=o,
                texts=texts[start:end],
                grids=[grid for grid, _ in decoded],
                reports=[report for _, report in decoded],
                tokens=tokens[start:end],
                tokens_measured=measured,
                config=config,
                timings=timings,
                confidence=confidence,
                reread_origins=[(p.x0, p.y0) for p in plans[k]],
                reread_tokens=again[k],
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

    def __init__(
        self,
        engine: Engine,
        config: ModelFormat,
        processor: Any = None,
        name: str = "",
        rereads: float = 0.0,
    ) -> None:
        self.engine = engine
        self.config = config
        self.processor = processor
        self.name = name
        self.rereads = check_share(rereads)  # the share of seam re-reads (magseg.inference.rereads)

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
        rereads: float | None = None,
        **overrides: Any,
    ) -> Predictor:
        """Load a local model (or LoRA folder); its magseg.json sets the format and the decoding's class
        bias (``class_bias`` given wins; {} decodes with none) and its share of seam re-reads (``rereads``
        given wins; 0 runs none), ``overrides`` win over the format.
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
        share = read_rereads(model_path) if rereads is None else rereads
        return cls(engine, config, processor, name=str(model_path), rereads=share)

    @classmethod
    def from_vllm(
        cls,
        model_path: str | os.PathLike[str],
        *,
        max_new_tokens: int | None = None,
        rereads: float | None = None,
        **overrides: Any,
    ) -> Predictor:
        """The same model served by vLLM on a GPU (a merged model folder; see VLLMEngine)."""
        from transformers import AutoProcessor

        from magseg.inference.vllm_engine import VLLMEngine

        config, _ = resolve_config(model_path, **overrides)
        processor = AutoProcessor.from_pretrained(os.fspath(model_path))
        limit = max_new_tokens or default_max_new_tokens(processor, config.grid)
        bias = class_logit_bias(processor.tokenizer, read_class_bias(model_path))
        engine = VLLMEngine(model_path, processor, max_new_tokens=limit, logit_bias=bias)
        share = read_rereads(model_path) if rereads is None else rereads
        return cls(engine, config, processor, name=str(model_path), rereads=share)

    @classmethod
    def for_engine(
        cls,
        model_path: str | os.PathLike[str],
        engine: str = "hf",
        *,
        batch_size: int = 8,
        max_new_tokens: int | None = None,
        dtype: str | None = None,
        rereads: float | None = None,
    ) -> Predictor:
        """The model behind an engine name: "vllm" (GPU hosts, see from_vllm; vLLM picks its own dtype),
        "hf" (from_pretrained) or "hf-generate": the hf model decoded by transformers' own generate with no
        prefix shared (the same greedy tokens, slower: the reference the engine's speed-ups are measured
        against). ``rereads``: the share of seam re-reads (None: the model card's)."""
        if engine == "vllm":
            return cls.from_vllm(model_path, max_new_tokens=max_new_tokens, rereads=rereads)
        if engine not in ("hf", "hf-generate"):
            raise InputError(f"engine {engine!r} is not one of hf, hf-generate, vllm")
        predictor = cls.from_pretrained(
            model_path, batch_size=batch_size, max_new_tokens=max_new_tokens, dtype=dtype, rereads=rereads
        )
        if engine == "hf-generate":
            predictor.engine.share_prefix = predictor.engine.lean = False  # type: ignore[attr-defined]
        return predictor

    def predict(self, image: np.ndarray) -> ScenePrediction:
        return predict_scene(image, self.engine, self.config, self.processor, self.rereads)

    def predict_many(self, images: list[np.ndarray]) -> list[ScenePrediction]:
        """Several scenes, their patches batched together; each result as ``predict`` gives it alone."""
        return predict_scenes(images, self.engine, self.config, self.processor, self.rereads)
