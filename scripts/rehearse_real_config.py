"""Rehearse the real Gemma3-4B / 12B job configs on a CPU, before anyone spends GPU hours on them.

The model has the real architecture (magseg.model.shapes: the SigLIP 896 px tower, 256 image tokens, the
text widths and attention layout, Gemma's vocabulary size and special-token ids, Gemma3's chat template
and image processor) cut to 2 text layers and 1 vision layer, random weights, no download. It goes
through the same code as the real run, from the real config files with only sizes and lengths cut:

1. SFT with LoRA, one step (jobs/configs/sft_gemma3_<size>.yaml);
2. GRPO, one step of 2 rollouts from that adapter (jobs/configs/grpo_gemma3_<size>.yaml; HF generate
   instead of vLLM, which needs a GPU);
3. one tile mapped by the region job (jobs/configs/map_gemma3_4b_gpu.yaml; the hf engine);
4. one XYZ tile served by the Ray Serve app (jobs/configs/serve_gemma3_4b_gpu.yaml; the hf engine).

Usage: python scripts/rehearse_real_config.py [--size 4b|12b] [--work runs/rehearsal]
It prints one line per stage with its time and exits non-zero on the first failure (about 5 minutes for
4b on 2 cores; 12b needs ~8 GB of memory).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: Sizes and lengths cut for a CPU; everything else is the config file's.
PATCH, GRID = 128, 16  # the seed's 16 x 16 RRLE grid
MAX_NEW = 8  # tokens a random model writes per patch (it never stops by itself)
TILE_PX, MARGIN_PX = 256, 0  # one 256 px window: 4 patches (the GPU config maps 1152 px windows)


def _stage(name: str, run: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = run()
    print(f"{name}: ok in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def build(work: Path, size: str) -> tuple[Path, Path]:
    """The model and a labelled synthetic scene folder with samples in the seed's format."""
    from magseg.inference.meta import write_model_card_meta
    from magseg.model.shapes import build_gemma3_shaped
    from magseg.samples import SampleConfig, write_samples
    from magseg.synth import write_dataset

    model = build_gemma3_shaped(work / f"gemma3-{size}-shaped", size)
    scenes = write_dataset(work / "synth", 2, 512, 0.5, seed=3, overwrite=True)
    fmt = SampleConfig(patch=PATCH, grid=GRID, per_scene=2, context_size=896)
    write_samples(
        [scenes], work / "samples", fmt, seed=3, val_fraction=0.5, overwrite=True
    )  # seed 3: one each
    write_model_card_meta(model, fmt)  # the base model maps in the samples' format too (--skip train)
    return model, scenes


def train(work: Path, size: str, model: Path) -> Path:
    """One SFT step (LoRA, the config's settings) and one GRPO step of 2 rollouts from its adapter."""
    from magseg.train.ray_job import load_job_config, run_local

    sft, _ = load_job_config(ROOT / f"jobs/configs/sft_gemma3_{size}.yaml", "sft", model=str(model),
                             data=str(work / "samples"))  # fmt: skip
    sft.dtype = "float32"  # bf16 matmuls crawl on most CPUs; the GPU run keeps the config's bf16
    sft.sft.max_steps, sft.sft.batch_size, sft.sft.grad_accum = 1, 1, 1
    sft.sft.output_dir = str(work / "sft")
    adapter = _stage("SFT, 1 step with LoRA", lambda: run_local("sft", sft))
    grpo, _ = load_job_config(ROOT / f"jobs/configs/grpo_gemma3_{size}.yaml", "grpo", model=str(model),
                              data=str(work / "samples"))  # fmt: skip
    grpo.dtype = "float32"
    grpo.grpo.init, grpo.grpo.output_dir = str(adapter), str(work / "grpo")
    grpo.grpo.max_steps, grpo.grpo.prompts_per_step, grpo.grpo.num_generations = 1, 1, 2
    grpo.grpo.max_completion_length, grpo.grpo.use_vllm = MAX_NEW, False
    return _stage("GRPO, 1 step of 2 rollouts", lambda: run_local("grpo", grpo))  # type: ignore[no-any-return]


def _gpu_settings(name: str) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((ROOT / "jobs/configs" / name).read_text())
    return values


def map_tile(work: Path, model: Path, scenes: Path) -> None:
    """The region job over one window of the scene, with the GPU config's settings but the hf engine."""
    from magseg.mapping.config import MapConfig
    from magseg.mapping.pipeline import run_region
    from magseg.stac import open_catalog

    values = _gpu_settings("map_gemma3_4b_gpu.yaml")
    item = open_catalog(scenes).search()[0]
    w, s, e, n = item.bbox
    dx, dy = (e - w) / 8, (n - s) / 8
    values.update(
        bbox=(w + 3 * dx, s + 3 * dy, w + 4 * dx, s + 4 * dy), stac=str(scenes), out=str(work / "map"),
        model=str(model), collections=None, engine="hf", tile_px=TILE_PX, margin_px=MARGIN_PX,
        gpus_per_actor=0.0, cpus_per_actor=1.0, threads_per_actor=2, max_new_tokens=MAX_NEW,
    )  # fmt: skip
    refine = values.pop("refine", {})
    from magseg.mapping.tile import RefineSettings

    config = MapConfig(**values, refine=RefineSettings(**refine))
    shutil.rmtree(work / "map", ignore_errors=True)
    summary = _stage("map: one tile, hf engine", lambda: run_region(config, log=lambda _: None))
    assert summary["tiles"]["ok"] >= 1 and summary["patches"] >= 1, summary


def serve_tile(work: Path, model: Path, scenes: Path) -> None:
    """One XYZ tile from the Ray Serve app, with the GPU serve config's args but the hf engine."""
    import httpx
    import morecantile
    import ray
    from ray import serve

    from magseg.serve.app import build_app
    from magseg.stac import open_catalog

    args = dict(_gpu_settings("serve_gemma3_4b_gpu.yaml")["applications"][0]["args"])
    args.update(
        stac=str(scenes), model=str(model), collections=None, engine="hf", tile_px=TILE_PX,
        margin_px=MARGIN_PX, model_gpus=0.0, model_cpus=1.0, model_threads=2, cache_dir=None,
        server_replicas=1, autoscaling=None, max_new_tokens=MAX_NEW,
    )  # fmt: skip
    item = open_catalog(scenes).search()[0]
    w, s, e, n = item.bbox
    tile = morecantile.tms.get("WebMercatorQuad").tile((w + e) / 2, (s + n) / 2, 18)

    def run() -> None:
        if not ray.is_initialized():  # the map stage leaves its local Ray running
            ray.init(address="local", include_dashboard=False, configure_logging=False)
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": 8765})
            serve.run(build_app(args), name="rehearsal", route_prefix="/")
            answer = httpx.get(f"http://127.0.0.1:8765/tiles/18/{tile.x}/{tile.y}.geojson", timeout=600)
            assert answer.status_code == 200, answer.text
            json.loads(answer.text)
        finally:
            serve.shutdown()
            ray.shutdown()

    _stage("serve: one XYZ tile, hf engine", run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("4b", "12b"), default="4b")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "rehearsal")
    parser.add_argument("--skip", default="", help="comma-separated stages to skip: train,map,serve")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    args.work.mkdir(parents=True, exist_ok=True)
    model, scenes = _stage(
        f"build: Gemma3-{args.size} shapes, 2 text + 1 vision layers", lambda: build(args.work, args.size)
    )
    mapped = model
    if "train" not in skip:
        mapped = train(args.work, args.size, model)  # the GRPO adapter maps and serves (LoRA on its base)
    if "map" not in skip:
        map_tile(args.work, mapped, scenes)
    if "serve" not in skip:
        serve_tile(args.work, mapped, scenes)
    print(f"rehearsal of Gemma3-{args.size} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
