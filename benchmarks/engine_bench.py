"""The model stage's cost: the project's engine against a naive loop on the same scene, same masks.

On one 512 px synthetic scene (the region job's read window: 64 patches) with the bundled model, CPU:
- naive: one plain ``model.generate`` call per patch (its prompt rendered alone, nothing reused);
- before: the region job's engine as it was (batches of 16 patches, no prefix sharing);
- engine: what the region job runs now (batches of 64, the scene prefix prefilled once, magseg's lean
  greedy loop instead of generate);
- engine as the region job runs it: two tiles' patches in batches of 128 (the model actor's cross-tile
  batching; MapConfig.batch_size 128); the ratios are this row's.
Reported: patches/s (median of 3 rounds after a warm-up, naive too; each round runs every setting in turn), ratios to naive and to before, whether every patch's RRLE equals naive's, and the
prefill tokens per patch against the patch-specific part of a prompt (goal: <= +10 %), and what keeping
each token's probability (per-field confidence, magseg.confidence) costs: the model stage's time with it
over the time without (goal: <= 1.1); and the job's engine with its weights in bfloat16 (``--dtype``), whose
masks differ slightly from float32's: its speed against the float32 engine (``bf16_vs_engine``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from magseg.bundled import BUNDLED_MODEL
from magseg.inference import Predictor
from magseg.inference.requests import scene_requests
from magseg.model.generate import render_prompts
from magseg.sources import list_scenes
from magseg.synth import write_dataset

#: Rounds of timed runs (each round times every setting once, after one warm-up); medians are reported.
REPEATS = 3


def _scenes(root: Path, n: int) -> list[np.ndarray]:
    data = write_dataset(root / "synth", n, 512, 0.5, seed=11, overwrite=True)
    return [ref.load().image for ref in list_scenes(data)]


def _naive(predictor: Predictor, image: np.ndarray) -> tuple[list[str], float]:
    """One plain generate call per patch: the prompt rendered alone, prefilled whole, no cache reused."""
    engine = predictor.engine
    _, requests = scene_requests(image, predictor.config)
    texts: list[str] = []
    t0 = time.perf_counter()
    with torch.inference_mode():
        for request in requests:
            inputs = render_prompts(predictor.processor, [request])
            out = engine.model.generate(  # type: ignore[attr-defined]
                **inputs,
                max_new_tokens=engine.max_new_tokens,  # type: ignore[attr-defined]
                eos_token_id=engine.eos_token_id,  # type: ignore[attr-defined]
                pad_token_id=engine.pad_token_id,  # type: ignore[attr-defined]
                do_sample=False,
            )
            new = out[:, inputs["input_ids"].shape[1] :]
            texts += predictor.processor.batch_decode(new, skip_special_tokens=True)
    return texts, time.perf_counter() - t0


def _specific_tokens(predictor: Predictor, image: np.ndarray) -> int:
    """Tokens of a prompt from its patch box on (box text, crop image, end of turn): what no patch shares."""
    _, requests = scene_requests(image, predictor.config)
    tok = predictor.processor.tokenizer
    text = tok.decode(render_prompts(predictor.processor, requests[:1])["input_ids"][0])
    return len(tok(text[text.index("Patch <box>") :], add_special_tokens=False)["input_ids"])


class _Setting:
    """One engine setting on its own predictor, warmed up; ``once`` times one pass over the images."""

    def __init__(self, label: str, batch: int, share: bool, images: list[np.ndarray], *, lean: bool = True,
                 scores: bool = True, dtype: str | None = None) -> None:  # fmt: skip
        self.label, self.images = label, images
        # independent patches (rereads 0): the engine is compared per patch; the region bench prices re-reads
        self.predictor = Predictor.from_pretrained(BUNDLED_MODEL, batch_size=batch, dtype=dtype, rereads=0.0)
        engine = self.predictor.engine
        engine.share_prefix, engine.scores, engine.lean = share, scores, lean  # type: ignore[attr-defined]
        self.predictor.predict(images[0])  # warm up (first-call allocations)
        engine.prefill_tokens = engine.prompt_tokens = 0  # type: ignore[attr-defined]
        self.times: list[float] = []
        self.texts: list[str] = []
        self.patches = 0

    def once(self) -> None:
        t0 = time.perf_counter()
        preds = self.predictor.predict_many(self.images)
        self.times.append(time.perf_counter() - t0)
        self.texts, self.patches = preds[0].texts, sum(p.n_patches for p in preds)

    def row(self, naive_texts: list[str]) -> dict[str, object]:
        engine, runs = self.predictor.engine, len(self.times)
        return {
            "bench": self.label,
            "patches": self.patches,
            "patches_per_s": round(self.patches / float(np.median(self.times)), 1),
            "same_as_naive": self.texts == naive_texts,
            "prefill_tokens_per_patch": round(engine.prefill_tokens / self.patches / runs, 1),  # type: ignore[attr-defined]
            "prompt_tokens_per_patch": round(engine.prompt_tokens / self.patches / runs, 1),  # type: ignore[attr-defined]
        }


def run(quick: bool = False) -> list[dict[str, object]]:
    torch.set_num_threads(int(os.environ.get("MAGSEG_BENCH_THREADS", "2")))
    work = Path(tempfile.mkdtemp(prefix="enginebench"))
    try:
        scenes = _scenes(work, 2)
        scene = scenes[0]
        naive_p = Predictor.from_pretrained(BUNDLED_MODEL, batch_size=1, rereads=0.0)
        _naive(naive_p, scene)  # warm up, as every engine setting is
        settings = [
            _Setting("before: batches of 16, generate, no sharing", 16, False, [scene], lean=False),
            _Setting("engine: batches of 64, shared prefix, lean loop", 64, True, [scene]),
            _Setting("engine as the region job runs it: 2 tiles a call, batches of 128", 128, True, scenes),
            _Setting(
                "the same without token probabilities (no per-field confidence)",
                128,
                True,
                scenes,
                scores=False,
            ),  # fmt: skip
            _Setting(
                "the engine as the job runs it, weights in bfloat16 (--dtype; other masks)",
                128,
                True,
                scenes,
                dtype="bfloat16",
            ),  # fmt: skip
        ]
        # rounds interleave every setting, naive included, so a machine that speeds up or slows down
        # mid-run moves all of them alike and the ratios stay fair; each figure is its median round
        naive_times: list[float] = []
        for _ in range(REPEATS):
            naive_texts, seconds = _naive(naive_p, scene)
            naive_times.append(seconds)
            for setting in settings:
                setting.once()
        naive_rate = len(naive_texts) / float(np.median(naive_times))
        rows: list[dict[str, object]] = [
            {
                "bench": "naive: generate per patch",
                "patches": len(naive_texts),
                "patches_per_s": round(naive_rate, 1),
            }
        ]
        before, now, job, bare, bf16 = (setting.row(naive_texts) for setting in settings)
        rows += [before, now, job, bare, bf16]
        specific = _specific_tokens(naive_p, scene)
        rows.append(
            {
                "bench": "ratios",
                "engine_vs_naive": round(float(job["patches_per_s"]) / naive_rate, 2),  # type: ignore[arg-type]
                "engine_vs_before": round(float(job["patches_per_s"]) / float(before["patches_per_s"]), 2),  # type: ignore[arg-type]
                "patch_specific_tokens": specific,
                "prefill_vs_specific": round(float(now["prefill_tokens_per_patch"]) / specific, 3),  # type: ignore[arg-type]
                # goal <= 1.1: the time the model stage takes with probabilities over the time without
                "confidence_time_ratio": round(float(bare["patches_per_s"]) / float(job["patches_per_s"]), 3),  # type: ignore[arg-type]
                # bfloat16 weights (AMX on recent x86 CPUs) against the same engine in float32: not the same masks
                "bf16_vs_engine": round(float(bf16["patches_per_s"]) / float(job["patches_per_s"]), 2),  # type: ignore[arg-type]
            }
        )
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
