"""Run SFT, GRPO or boundary training inside Ray Train: N workers, checkpoints in storage, resume by name."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from magseg.errors import InputError

if TYPE_CHECKING:
    from ray.train import Result, ScalingConfig

#: What Ray Train can run: kind -> (module, HF trainer builder or "" for a plain loop, plain runner).
KINDS: dict[str, tuple[str, str, str]] = {
    "sft": ("magseg.train.sft", "build_sft_trainer", "run_sft"),
    "grpo": ("magseg.train.grpo", "build_grpo_trainer", "run_grpo"),
    "boundary": ("magseg.train.boundary", "", "run_boundary"),
    "align": ("magseg.train.align", "", "run_align"),
}

#: Inside a Ray checkpoint: the HF checkpoint folder (RayTrainReportCallback's layout) or the final model.
HF_CHECKPOINT = "checkpoint"
FINAL_MODEL = "model"
RUN_INFO = "ray_run.json"


@dataclass
class RaySettings:
    """The ``ray:`` section of a job config: workers, resources, where checkpoints go, the run name."""

    workers: int = 1
    use_gpu: bool | None = None  # None: GPUs when the cluster has them, CPU (gloo) otherwise
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 1.0  # only when use_gpu
    storage: str = "runs/ray"  # local folder or any pyarrow filesystem URI (s3://, gs://, ...)
    name: str | None = None  # default magseg-<kind>; same name + storage resumes the last checkpoint
    num_to_keep: int = 2  # Ray checkpoints kept in storage (the final model is always the latest)
    max_failures: int = 0  # worker failures recovered from the last checkpoint within one run
    check_resources: bool = True  # false on autoscaling clusters whose GPU nodes are not up yet

    def run_name(self, kind: str) -> str:
        return self.name or f"magseg-{kind}"

    def storage_uri(self) -> str:
        """An absolute local path (relative paths resolve against the current folder) or the URI as given."""
        return self.storage if "://" in self.storage else str(Path(self.storage).expanduser().resolve())


def ray_settings(values: dict[str, Any] | None, where: str = "config") -> RaySettings:
    """RaySettings from the ``ray:`` mapping of a job config, refusing unknown keys."""
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(RaySettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(
            f"{where} [ray]: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    settings = RaySettings(**values)
    if settings.workers < 1:
        raise InputError(f"{where} [ray]: workers must be >= 1, got {settings.workers}")
    return settings


def scaling_for(settings: RaySettings, resources: dict[str, float]) -> tuple[ScalingConfig, str]:
    """ScalingConfig and torch backend (nccl on GPU, gloo on CPU) that fit ``resources``.

    Ray would otherwise wait forever for workers the cluster cannot place (a GPU config on a CPU-only
    cluster, more CPUs than exist): fail at once with one line instead.
    """
    from ray.train import ScalingConfig

    n, gpus, cpus = settings.workers, float(resources.get("GPU", 0)), float(resources.get("CPU", 0))
    use_gpu = settings.use_gpu if settings.use_gpu is not None else gpus > 0
    need_gpu = n * settings.gpus_per_worker if use_gpu else 0.0
    need_cpu = n * settings.cpus_per_worker
    if settings.check_resources and need_gpu > gpus:
        raise InputError(
            f"{n} worker(s) x {settings.gpus_per_worker:g} GPU need {need_gpu:g} GPU(s) but the Ray cluster "
            f"has {gpus:g}; set ray.use_gpu: false (CPU, gloo), fewer workers, or run on a GPU cluster"
        )
    if settings.check_resources and need_cpu > cpus:
        raise InputError(
            f"{n} worker(s) x {settings.cpus_per_worker:g} CPU need {need_cpu:g} CPUs but the Ray cluster has "
            f"{cpus:g}; lower ray.workers or ray.cpus_per_worker"
        )
    per_worker = {"CPU": settings.cpus_per_worker}
    if use_gpu:
        per_worker["GPU"] = settings.gpus_per_worker
    scaling = ScalingConfig(num_workers=n, use_gpu=use_gpu, resources_per_worker=per_worker)
    return scaling, "nccl" if use_gpu else "gloo"


@dataclass
class Progress:
    """Steps run by this process, the step it started after, and the steps/s between them."""

    start_step: int | None = None
    steps: int = 0
    t0: float = 0.0
    t1: float = 0.0

    def begin(self, step: int) -> None:
        if self.start_step is None:
            self.start_step, self.t0 = step, time.perf_counter()

    def end(self, n: int = 1) -> None:
        self.steps += n
        self.t1 = time.perf_counter()

    def steps_per_s(self) -> float:
        return self.steps / (self.t1 - self.t0) if self.steps and self.t1 > self.t0 else 0.0


class StepMeter(TrainerCallback):
    """An HF callback feeding a Progress."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress.begin(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.progress.end()


def check_kind(kind: str, workers: int = 1) -> None:
    """Refuse an unknown kind, or one whose module is missing, without importing it (the driver stays light)."""
    if kind not in KINDS:
        raise InputError(f"unknown training kind {kind!r}; use one of {', '.join(KINDS)}")
    if importlib.util.find_spec(KINDS[kind][0]) is None:
        raise InputError(f"{KINDS[kind][0]} does not exist in this magseg; update magseg")
    if kind in ("boundary", "align") and workers > 1:  # neither wraps its model in DDP
        raise InputError(f"{kind} training runs in one process; set ray.workers: 1, not {workers}")


def _restore(scratch: Path) -> Path | None:
    """The run's last Ray checkpoint copied to ``scratch``, or None on a fresh run."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    return None if checkpoint is None else Path(checkpoint.to_directory(str(scratch / "restored")))


def _train_hf(kind: str, config: Any, restored: Path | None, out: Path, progress: Progress) -> int | None:
    """SFT / GRPO: the kind's HF trainer, Ray-prepared, resumed from the HF checkpoint; returns its step."""
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    module_name, builder, _ = KINDS[kind]
    build = getattr(importlib.import_module(module_name), builder)
    # RayTrainReportCallback reports (metrics + HF checkpoint) each time the trainer saves.
    trainer = prepare_trainer(build(config, out, callbacks=[RayTrainReportCallback(), StepMeter(progress)]))
    resume, step = None, None
    if restored is not None:
        resume = restored / HF_CHECKPOINT
        step = int(json.loads((resume / "trainer_state.json").read_text())["global_step"])
        print(f"magseg: resuming from global step {step}")
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.save_model(str(out))
    trainer.save_state()
    if trainer.is_world_process_zero():
        config.save(out / "train_config.yaml")
    for old in out.glob("checkpoint-*"):  # already in storage as Ray checkpoints
        shutil.rmtree(old, ignore_errors=True)
    return step


def config_of(kind: str, values: dict[str, Any]) -> Any:
    """The kind's config object from its plain-dict form (what travels to the workers)."""
    if kind == "boundary":
        from magseg.train.boundary import boundary_config_from_dict

        return boundary_config_from_dict(values)
    from magseg.train.config import config_from_dict

    return config_from_dict(values)


def train_loop(loop_config: dict[str, Any]) -> None:
    """The Ray Train worker function: resume, train, then report the final model as the last checkpoint."""
    import ray.train
    from ray.train import Checkpoint

    kind, name = loop_config["kind"], loop_config["name"]
    config = config_of(kind, loop_config["config"])
    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    # Each rank trains in its own local folder: rank 0 saves the model and optimizer, the others only
    # their RNG state; Ray merges what every rank reports into one checkpoint folder in storage.
    scratch = Path(tempfile.gettempdir()) / "magseg-ray" / loop_config["run_id"] / f"rank{rank}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        restored = _restore(scratch)
        if restored is not None and (restored / FINAL_MODEL).is_dir():
            print(f"magseg: run {name} already finished; its model is the latest checkpoint")
            return
        out, progress = scratch / "final" / FINAL_MODEL, Progress()
        if kind == "boundary":
            from magseg.train.ray_boundary import train_boundary

            resumed = train_boundary(config, restored, out, progress)
        elif kind == "align":  # minutes long: a restarted run starts over
            from magseg.train.align import run_align

            run_align(config, out)
            resumed = None
        else:
            resumed = _train_hf(kind, config, restored, out, progress)
        info = {
            "name": name,
            "workers": ctx.get_world_size(),
            "resumed_from_step": resumed,
            "first_step": None if progress.start_step is None else progress.start_step + 1,
            "steps": progress.steps,
            "steps_per_s": progress.steps_per_s(),
        }
        checkpoint = None
        if rank == 0:
            (out / RUN_INFO).write_text(json.dumps(info, indent=2))
            checkpoint = Checkpoint.from_directory(str(out.parent))
        metrics = {k: v for k, v in info.items() if isinstance(v, int | float)}
        ray.train.report({**metrics, "final": 1}, checkpoint=checkpoint)  # every rank: it is a barrier
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):  # the run's folder, once every local rank has left it
            scratch.parent.rmdir()


def _absolute(config: Any) -> Any:
    """Relative input paths resolved against the caller's folder (workers may run elsewhere)."""
    holders = [(config, "model"), (config, "data"), (getattr(config, "grpo", None), "init")]
    holders += [
        (src, "path") for src in [*getattr(config, "sources", []), *getattr(config, "val_sources", [])]
    ]
    for holder, key in holders:
        value = getattr(holder, key, None) if holder is not None else None
        if isinstance(value, str) and value and "://" not in value:
            setattr(holder, key, str(Path(value).expanduser().resolve()))
    return config


def publish_model(result: Result) -> str | None:
    """Copy the final model to ``<storage>/<name>/model`` (a stable path, e.g. GRPO's init); returns it."""
    import pyarrow.fs

    if result.checkpoint is None:
        return None
    fs = result.checkpoint.filesystem
    source = f"{result.checkpoint.path}/{FINAL_MODEL}"
    if fs.get_file_info(source).type != pyarrow.fs.FileType.Directory:
        return None
    target = f"{result.path}/{FINAL_MODEL}"
    fs.delete_dir_contents(target, missing_dir_ok=True)
    fs.create_dir(target)
    pyarrow.fs.copy_files(source, target, source_filesystem=fs, destination_filesystem=fs)
    return target


def run_ray_train(kind: str, config: Any, settings: RaySettings) -> tuple[Result, str | None]:
    """Train ``config`` of ``kind`` (sft | grpo | boundary) under Ray Train on the connected cluster.

    Connects with ``ray.init()`` when not connected: inside ``ray job submit`` that is the job's cluster,
    elsewhere a local one. A run with the same name and storage as an earlier one resumes from its last
    checkpoint. Returns Ray's result and where the final model was copied (``<storage>/<name>/model``).
    """
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    check_kind(kind, settings.workers)  # fail before starting anything
    if not ray.is_initialized():
        ray.init()
    scaling, backend = scaling_for(settings, ray.cluster_resources())
    name = settings.run_name(kind)
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "kind": kind,
            "config": _absolute(config).to_dict(),  # plain data: the controller need not import magseg
            "name": name,
            "run_id": uuid.uuid4().hex,
        },
        torch_config=TorchConfig(backend=backend),
        scaling_config=scaling,
        run_config=RunConfig(
            name=name,
            storage_path=settings.storage_uri(),
            checkpoint_config=CheckpointConfig(num_to_keep=settings.num_to_keep),
            failure_config=FailureConfig(max_failures=settings.max_failures),
        ),
    )
    result = trainer.fit()
    return result, publish_model(result)
