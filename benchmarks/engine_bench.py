"""The model stage's cost: the project's engine against a naive loop on the same scene, same masks.

On one 512 px synthetic scene (the region job's read window: 64 patches) with the bundled model, CPU:
- naive: one plain ``model.generate`` call per patch (its prompt rendered alone, nothing reused);
- before: the region job's engine as it was (batches of 16 patches, no prefix sharing);
- engine: what the region job runs now (batches of 64, the scene prefix prefilled once, magseg's lean
  greedy loop instead of generate);
- engine as the region job runs it: two tiles' patches in batches of 128 (the model actor's cross-tile
  batching; MapConfig.batch_size 128); the ratios are this row's.
Reported: patches/s (median of 3 runs after a warm-up, naive too), ratios to naive and to before, whether every patch's RRLE equals naive's, and the
prefill tokens per patch against the patch-specific part of a prompt (goal: <= +10 %), and what keeping
each token's probability (per-field confidence, magseg.confidence) costs: the model stage's time with it
over the time without (goal: <= 1.1).
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
from magseg.inference.predict import scene_requests
from magseg.model.generate import render_prompts
from magseg.sources import list_scenes
from magseg.synth import write_dataset

#: Timed runs of each engine setting (after one warm-up); the median is reported.
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


def run(quick: bool = False) -> list[dict[str, object]]:
    torch.set_num_threads(int(os.environ.get("MAGSEG_BENCH_THREADS", "2")))
    work = Path(tempfile.mkdtemp(prefix="enginebench"))
    try:
        scenes = _scenes(work, 2)
        scene = scenes[0]
        rows: list[dict[str, object]] = []
        naive_p = Predictor.from_pretrained(BUNDLED_MODEL, batch_size=1)
        _naive(naive_p, scene)  # warm up, as every engine row is
        naive_runs = [_naive(naive_p, scene) for _ in range(REPEATS)]
        naive_texts, naive_s = naive_runs[0][0], float(np.median([s for _, s in naive_runs]))
        n = len(naive_texts)
        naive_rate = n / naive_s
        rows.append(
            {"bench": "naive: generate per patch", "patches": n, "patches_per_s": round(naive_rate, 1)}
        )

        def measured(
            label: str,
            batch: int,
            share: bool,
            images: list[np.ndarray],
            lean: bool = True,
            scores: bool = True,
        ) -> dict[str, object]:
            predictor = Predictor.from_pretrained(BUNDLED_MODEL, batch_size=batch)
            predictor.engine.share_prefix = share  # type: ignore[attr-defined]
            predictor.engine.scores = scores  # type: ignore[attr-defined]
            predictor.engine.lean = lean  # type: ignore[attr-defined]
            predictor.predict(images[0])  # warm up (first-call allocations)
            engine = predictor.engine
            engine.prefill_tokens = engine.prompt_tokens = 0  # type: ignore[attr-defined]
            times = []
            for _ in range(REPEATS):
                t0 = time.perf_counter()
                preds = predictor.predict_many(images) if len(images) > 1 else [predictor.predict(images[0])]
                times.append(time.perf_counter() - t0)
            seconds = float(np.median(times))
            patches = sum(p.n_patches for p in preds)
            return {
                "bench": label,
                "patches": patches,
                "patches_per_s": round(patches / seconds, 1),
                "same_as_naive": preds[0].texts == naive_texts,
                "prefill_tokens_per_patch": round(engine.prefill_tokens / patches / REPEATS, 1),  # type: ignore[attr-defined]
                "prompt_tokens_per_patch": round(engine.prompt_tokens / patches / REPEATS, 1),  # type: ignore[attr-defined]
            }

        before = measured("before: batches of 16, generate, no sharing", 16, False, [scene], lean=False)
        rows.append(before)
        now = measured("engine: batches of 64, shared prefix, lean loop", 64, True, [scene])
        rows.append(now)
        job = measured("engine as the region job runs it: 2 tiles a call, batches of 128", 128, True, scenes)
        rows.append(job)
        bare = measured("the same without token probabilities (no per-field confidence)", 128, True, scenes,
                        scores=False)  # fmt: skip
        rows.append(bare)
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
            }
        )
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
