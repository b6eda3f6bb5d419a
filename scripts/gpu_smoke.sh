#!/usr/bin/env bash
# GPU smoke check: the ONE command a GPU host runs after installing magseg (CUDA torch; vLLM optional).
# Builds a tiny Gemma3 and a few samples from a synthetic scene, then checks on cuda with bf16:
#   3 SFT steps (LoRA), 2 GRPO steps (HF generate), 2 GRPO steps with vLLM colocated (if vllm imports),
#   and 3 SFT steps under Ray Train on one GPU worker (NCCL).
# Prints OK / FAIL / SKIP per check and exits non-zero if any check failed.
# Usage: scripts/gpu_smoke.sh [WORK_DIR]     (default: a fresh temp dir, removed afterwards)
# Env:   PYTHON (default <repo>/.venv/bin/python, else python3); MAGSEG_SMOKE_CPU=1 runs the same checks
#        on CPU in fp32 (plumbing only; the bf16/cuda checks then SKIP) for hosts without a GPU.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-$here/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
if [[ $# -ge 1 ]]; then
    work="$1"; mkdir -p "$work"
else
    work="$(mktemp -d -t magseg-gpu-smoke.XXXXXX)"; trap 'rm -rf "$work"' EXIT
fi
cd "$here" || exit 2
export TOKENIZERS_PARALLELISM=false RAY_USAGE_STATS_ENABLED=0 RAY_ENABLE_AUTO_CONNECT=0
# Ray writes its auth token under ~ and its session under /tmp/ray unless told otherwise.
export HOME="$work/home" RAY_TMPDIR="$work/ray"
mkdir -p "$HOME" "$RAY_TMPDIR"

"$PYTHON" - "$work" <<'PY'
import json, math, os, sys, time, traceback
from pathlib import Path

work = Path(sys.argv[1])
results: list[tuple[str, str, str]] = []


def check(name, fn):
    t0 = time.perf_counter()
    try:
        note = fn() or ""
        status = "SKIP" if str(note).startswith("skip") else "OK"
    except Exception as exc:  # a smoke test reports every failure and goes on
        traceback.print_exc()
        status, note = "FAIL", f"{type(exc).__name__}: {exc}"
    line = f"{status:4}  {name:16} {time.perf_counter() - t0:6.1f} s  {note}"
    results.append((status, name, note))
    print(line, flush=True)


import torch

cpu_ok = os.environ.get("MAGSEG_SMOKE_CPU") == "1"
cuda = torch.cuda.is_available()


def gpu():
    if not cuda:
        if cpu_ok:
            return "skip: no CUDA (MAGSEG_SMOKE_CPU=1: the checks below run on CPU in fp32)"
        raise RuntimeError("torch.cuda.is_available() is False: install a CUDA build of torch")
    if not torch.cuda.is_bf16_supported():
        raise RuntimeError(f"{torch.cuda.get_device_name()} does not support bf16")
    return f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}"


check("cuda+bf16", gpu)
if not cuda and not cpu_ok:
    print("FAIL: no GPU; nothing else to check")
    sys.exit(1)

from magseg.model.tiny import build_tiny_gemma3
from magseg.samples import SampleConfig, write_samples
from magseg.train import build_grpo_trainer, build_sft_trainer, config_from_dict
from magseg.train.common import train_and_save

model_dir, samples, synth = work / "model", work / "samples", work / "synth"


def data():
    import subprocess

    subprocess.run(
        [sys.executable, "-m", "magseg", "synth", "--out", str(synth), "--scenes", "1", "--size", "256"],
        check=True,
        capture_output=True,
    )
    build_tiny_gemma3(model_dir, vision_hidden=32, vision_layers=1, text_hidden=64, text_layers=1,
                      image_size=32, patch_size=8, mm_tokens_per_image=16)
    counts = write_samples([synth], samples, SampleConfig(patch=64, grid=8, per_scene=8, context_size=64))
    return f"tiny Gemma3 + samples {counts}"


def config(**grpo):
    quick = {"logging_steps": 1, "save_steps": 1000}
    return config_from_dict({
        "model": str(model_dir), "data": str(samples),
        "lora": {"r": 4, "alpha": 8},  # LoRA as in the seed's GPU runs, tiny rank
        "sft": {"max_steps": 3, "batch_size": 2, **quick},
        "grpo": {"init": str(work / "sft"), "max_steps": 2, "prompts_per_step": 2, "num_generations": 2,
                 "max_completion_length": 16, **quick, **grpo},
    })


def finite_losses(trainer, key="loss"):
    logs = [h for h in trainer.state.log_history if key in h]
    bad = [h[key] for h in logs if not math.isfinite(h[key])]
    if not logs or bad:
        raise RuntimeError(f"{key} not finite or never logged: {bad or 'no logs'}")
    return logs


def on_device(trainer):
    want_bf16 = cuda
    if trainer.args.bf16 != want_bf16:
        raise RuntimeError(f"TrainingArguments.bf16 is {trainer.args.bf16}, expected {want_bf16}")
    device = next(trainer.model.parameters()).device.type
    if device != ("cuda" if cuda else "cpu"):
        raise RuntimeError(f"model on {device}")
    return f"bf16={trainer.args.bf16} on {device}"


def sft():
    trainer = build_sft_trainer(config(), work / "sft")
    where = on_device(trainer)
    train_and_save(trainer, config(), work / "sft")
    logs = finite_losses(trainer)
    return f"{where}; {trainer.state.global_step} steps, loss {logs[0]['loss']:.3f} -> {logs[-1]['loss']:.3f}"


def grpo(use_vllm=False):
    def run():
        if use_vllm:
            try:
                import vllm
            except ImportError:
                return "skip: vllm is not installed (pip install -e '.[vllm]' on GPU hosts)"
            if not cuda:
                return "skip: vLLM needs CUDA"
            # colocate mode runs vLLM inside this process as a 1-process torch.distributed group
            for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                         "MASTER_PORT": "29533"}.items():
                os.environ.setdefault(k, v)
        cfg = config(use_vllm=use_vllm, vllm_mode="colocate")
        out = work / ("grpo_vllm" if use_vllm else "grpo")
        trainer = build_grpo_trainer(cfg, out)
        where = on_device(trainer)
        if use_vllm and not getattr(trainer, "use_vllm", False):
            raise RuntimeError("GRPOTrainer did not enable vLLM")
        train_and_save(trainer, cfg, out)
        logs = finite_losses(trainer, "reward")
        return f"{where}; {trainer.state.global_step} steps, reward {logs[-1]['reward']:.3f}" + (
            f", vllm {vllm.__version__}" if use_vllm else "")
    return run


def ray_train():
    import ray

    from magseg.train.ray_train import RaySettings, run_ray_train

    ray.init(include_dashboard=False, num_cpus=4, _temp_dir=os.environ["RAY_TMPDIR"])
    try:
        settings = RaySettings(workers=1, use_gpu=cuda, storage=str(work / "ray"), name="smoke-sft")
        result, model = run_ray_train("sft", config(), settings)
    finally:
        ray.shutdown()
    info = json.loads((Path(model) / "ray_run.json").read_text())
    if info["steps"] != 3:
        raise RuntimeError(f"ran {info['steps']} steps, expected 3")
    backend = "nccl" if cuda else "gloo"
    return f"1 worker ({backend}), {info['steps_per_s']:.2f} steps/s, model at {model}"


check("data", data)
if results[-1][0] == "OK":
    check("sft-bf16", sft)
    if results[-1][0] == "OK":
        check("grpo-bf16", grpo())
        check("grpo-vllm", grpo(use_vllm=True))
    check("ray-train", ray_train)

failed = [name for status, name, _ in results if status == "FAIL"]
counts = {s: sum(r[0] == s for r in results) for s in ("OK", "SKIP", "FAIL")}
print(f"\n{'FAIL' if failed else 'OK'}: {counts['OK']} ok, {counts['SKIP']} skipped, {counts['FAIL']} failed"
      + (f" ({', '.join(failed)})" if failed else ""))
sys.exit(1 if failed else 0)
PY
