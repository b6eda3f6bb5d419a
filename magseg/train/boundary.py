"""EPOC boundary model: train a tiny SegFormer (built from config) on instance contours, resumable, Ray-free.

Plain torch loop (simpler to resume than HF Trainer for a custom pixel loss): every ``save_every`` steps
the model, optimiser and scheduler go to ``<output_dir>/checkpoint/state.pt``; each step's batch is drawn
from an RNG seeded by (seed, step), so a resumed run sees the same crops as an uninterrupted one.
The output folder is a `save_pretrained` SegFormer (safetensors) plus the preprocessor_config.json that
magseg.refine.SegformerBoundary reads (mean, std, size), so it loads with magseg.refine.load_boundary_model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
import yaml

from magseg.atomic import atomic_path
from magseg.configfile import read_yaml_mapping
from magseg.errors import InputError
from magseg.refine.boundary import IMAGENET_MEAN, IMAGENET_STD
from magseg.train.boundary_data import BoundaryScene, load_boundary_scenes, sample_batch

__all__ = [
    "BoundaryConfig",
    "BoundarySource",
    "boundary_config_from_dict",
    "build_boundary_model",
    "load_boundary_config",
    "run_boundary",
]

#: ImageNet statistics, SegFormer's convention: the trainer normalises as SegformerBoundary does.
IMAGE_MEAN, IMAGE_STD = IMAGENET_MEAN, IMAGENET_STD

#: ``callback(step, logs)``: called with the training logs every ``log_every`` steps and with the
#: validation logs after each validation (e.g. to forward them to ray.train.report).
Callback = Callable[[int, dict[str, float]], None]


@dataclass
class BoundarySource:
    """One labelled scene folder (any layout magseg.sources.list_scenes reads)."""

    path: str
    sparse: bool = False  # 0 = "not annotated" (naip-fields): supervise only on and near labelled pixels
    weight: float = 1.0  # share of the crops drawn from this folder, relative to the other sources
    include: list[str] | None = None  # scene ids to use (None: all), e.g. a training split
    exclude: list[str] = field(default_factory=list)


@dataclass
class BoundaryConfig:
    """Everything run_boundary needs; load from YAML with :func:`load_boundary_config`."""

    sources: list[BoundarySource] = field(default_factory=list)
    val_sources: list[BoundarySource] = field(default_factory=list)
    output_dir: str = "runs/boundary"
    seed: int = 0
    # targets and loss
    thickness: int = 3  # contour width in pixels (EPOC: about 3)
    near_px: int = 8  # sparse sources: pixels within this distance of a labelled one are supervised
    unlabelled_weight: float = 0.0  # sparse sources: weight of the other (unannotated) pixels
    pos_weight: float = 3.0  # BCE weight of boundary pixels (about 10-15% of the pixels are boundary)
    dice_weight: float = 0.0  # > 0 adds this times a soft dice loss on the boundary class
    # data
    crop: int = 256  # training crop, native pixels (a multiple of 32: SegFormer downsamples 32x)
    batch_size: int = 8
    jitter: float = 0.1  # brightness / contrast / colour gain jitter (fraction)
    # model: SegformerConfig (from config, nothing downloaded)
    hidden_sizes: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    depths: list[int] = field(default_factory=lambda: [1, 1, 1, 1])
    num_attention_heads: list[int] = field(default_factory=lambda: [1, 1, 2, 4])
    decoder_hidden_size: int = 64
    # The model is trained at native pixel scale, so inference should not rescale: SegformerBoundary
    # resizes every image to this size (written as preprocessor_config.json "size"): the scene size.
    # None: no resizing at all, any image is seen at native scale (padded to a multiple of 32).
    inference_size: int | None = 1024
    # refinement takes the pixelwise max of this model's map and the image fallback's (magseg.refine.
    # scene_boundary); written to preprocessor_config.json
    fuse_image_fallback: bool = False
    merge_below: float = 0.0  # refine merges pieces parted by a weaker border (preprocessor_config.json)
    # optimisation
    steps: int = 1000
    learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 50
    log_every: int = 20
    val_every: int = 200  # 0: validate only at the end
    val_crops: int = 8  # fixed crops per validation scene
    save_every: int = 100  # checkpoint period (steps); resume picks up from the last one
    device: str = "auto"  # auto | cpu | cuda
    num_threads: int | None = None  # torch CPU threads (None: torch's default)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _source(value: Any, where: str) -> BoundarySource:
    if isinstance(value, (str, os.PathLike)):
        return BoundarySource(path=str(value))
    if isinstance(value, BoundarySource):
        return value
    if not isinstance(value, dict):
        raise InputError(f"{where}: a source is a folder path or a mapping with 'path', got {value!r}")
    known = {f.name for f in dataclasses.fields(BoundarySource)}
    unknown = sorted(set(value) - known)
    if unknown or "path" not in value:
        raise InputError(f"{where}: a source needs 'path' and may have {', '.join(sorted(known))}")
    return BoundarySource(**value)


def _check(config: BoundaryConfig, where: str) -> BoundaryConfig:
    if not config.sources:
        raise InputError(f"{where}: no 'sources'; list at least one labelled scene folder")
    n = len(config.hidden_sizes)
    if n == 0 or len(config.depths) != n or len(config.num_attention_heads) != n:
        raise InputError(f"{where}: hidden_sizes, depths and num_attention_heads need the same length (> 0)")
    if any(h % a for h, a in zip(config.hidden_sizes, config.num_attention_heads, strict=True)):
        raise InputError(f"{where}: each hidden size must be divisible by its number of attention heads")
    stride = 4 * 2 ** (n - 1)
    if config.crop < stride or config.crop % stride:
        raise InputError(
            f"{where}: crop {config.crop} must be a positive multiple of {stride} (model stride)"
        )
    positive: dict[str, float] = {
        "steps": config.steps,
        "batch_size": config.batch_size,
        "thickness": config.thickness,
    }
    positive |= {"learning_rate": config.learning_rate, "log_every": config.log_every}
    positive |= {"save_every": config.save_every}
    if config.inference_size is not None and not config.inference_size > 0:
        raise InputError(
            f"{where}: inference_size must be > 0 or null (native scale), got {config.inference_size}"
        )
    for name, value in positive.items():
        if not value > 0:
            raise InputError(f"{where}: {name} must be > 0, got {value}")
    if config.pos_weight <= 0 or config.dice_weight < 0 or config.unlabelled_weight < 0:
        raise InputError(f"{where}: need pos_weight > 0, dice_weight >= 0 and unlabelled_weight >= 0")
    if config.device not in ("auto", "cpu", "cuda"):
        raise InputError(f"{where}: device {config.device!r}; use auto, cpu or cuda")
    for src in [*config.sources, *config.val_sources]:
        if src.weight <= 0:
            raise InputError(f"{where}: source {src.path} has weight {src.weight}; weights must be > 0")
    return config


def boundary_config_from_dict(values: dict[str, Any], where: str = "boundary config") -> BoundaryConfig:
    """Build and check a BoundaryConfig; sources may be plain folder paths or mappings (see BoundarySource)."""
    values = dict(values)
    known = {f.name for f in dataclasses.fields(BoundaryConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for key in ("sources", "val_sources"):
        items = values.get(key) or []
        if not isinstance(items, list):
            items = [items]
        values[key] = [_source(v, f"{where} [{key}]") for v in items]
    try:
        config = BoundaryConfig(**values)
    except TypeError as exc:  # pragma: no cover - dataclass signature errors are caught above
        raise InputError(f"{where}: {exc}") from exc
    return _check(config, where)


def load_boundary_config(path: str | os.PathLike[str], **overrides: Any) -> BoundaryConfig:
    """Read a YAML boundary-training config; top-level ``overrides`` (e.g. output_dir=...) win.

    Example (keys are BoundaryConfig's fields)::

        sources:
          - runs/synth                                  # a `magseg synth` folder: fully labelled
          - {path: data/naip-fields, sparse: true}      # 0 = not annotated
        crop: 256
        steps: 1500
        output_dir: runs/boundary
    """
    values = read_yaml_mapping(
        path, "a boundary training config", "write a YAML file (see magseg.train.boundary)"
    )
    values.update({k: v for k, v in overrides.items() if v is not None})
    return boundary_config_from_dict(values, str(path))


def build_boundary_model(config: BoundaryConfig) -> Any:
    """A randomly initialised one-label SegformerForSemanticSegmentation of the configured size."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    n = len(config.hidden_sizes)
    cfg = SegformerConfig(  # type: ignore[call-arg]  # PretrainedConfig takes num_labels / id2label
        num_channels=3,
        num_encoder_blocks=n,
        depths=list(config.depths),
        hidden_sizes=list(config.hidden_sizes),
        num_attention_heads=list(config.num_attention_heads),
        sr_ratios=[2 ** (n - 1 - i) for i in range(n)],  # 8, 4, 2, 1 for four stages
        patch_sizes=[7] + [3] * (n - 1),
        strides=[4] + [2] * (n - 1),
        mlp_ratios=[4] * n,
        decoder_hidden_size=config.decoder_hidden_size,
        num_labels=1,
        id2label={0: "boundary"},
        label2id={"boundary": 0},
    )
    return SegformerForSemanticSegmentation(cfg)


def _load_sources(
    sources: Sequence[BoundarySource], config: BoundaryConfig
) -> tuple[list[BoundaryScene], np.ndarray]:
    """All scenes of the sources and the probability of drawing each (source weight spread over its scenes)."""
    scenes: list[BoundaryScene] = []
    probs: list[float] = []
    for src in sources:
        part = load_boundary_scenes(
            src.path,
            sparse=src.sparse,
            include=src.include,
            exclude=src.exclude,
            thickness=config.thickness,
            near_px=config.near_px,
            unlabelled_weight=config.unlabelled_weight,
        )
        scenes += part
        probs += [src.weight / len(part)] * len(part)
    p = np.asarray(probs, dtype=np.float64)
    return scenes, p / p.sum()


def _loss(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, config: BoundaryConfig
) -> torch.Tensor:
    """Weighted BCE (boundary pixels x pos_weight) over the supervised pixels, plus optional soft dice."""
    pos = torch.tensor(config.pos_weight, device=logits.device)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none", pos_weight=pos)
    loss = (bce * weight).sum() / weight.sum().clamp_min(1.0)
    if config.dice_weight > 0:
        prob = torch.sigmoid(logits) * weight
        tgt = target * weight
        dice = (2 * (prob * tgt).sum() + 1.0) / (prob.sum() + tgt.sum() + 1.0)
        loss = loss + config.dice_weight * (1 - dice)
    return loss


def _forward(model: Any, images: np.ndarray, device: torch.device) -> torch.Tensor:
    """Normalise like SegformerBoundary, run the model, upsample the logits to the crop: (B, H, W)."""
    x = torch.from_numpy(images).to(device)
    mean = torch.tensor(IMAGE_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, device=device).view(1, 3, 1, 1)
    logits = model(pixel_values=(x - mean) / std).logits
    return F.interpolate(logits, size=images.shape[2:], mode="bilinear", align_corners=False)[:, 0]


def _validate(
    model: Any, batches: list[tuple[np.ndarray, ...]], config: BoundaryConfig, device: torch.device
) -> dict[str, float]:
    """Validation loss and boundary-pixel precision / recall / F1 at probability 0.5 (supervised pixels)."""
    model.eval()
    loss = tp = fp = fn = 0.0
    with torch.inference_mode():
        for images, targets, weights in batches:
            logits = _forward(model, images, device)
            tgt = torch.from_numpy(targets).to(device)
            wt = torch.from_numpy(weights).to(device)
            loss += float(_loss(logits, tgt, wt, config))
            pred = (logits > 0).float() * (wt > 0)
            tp += float((pred * tgt).sum())
            fp += float((pred * (1 - tgt)).sum())
            fn += float(((1 - pred) * tgt * (wt > 0)).sum())
    model.train()
    precision = tp / max(tp + fp, 1.0)
    recall = tp / max(tp + fn, 1.0)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return {
        "val_loss": loss / max(len(batches), 1),
        "val_precision": precision,
        "val_recall": recall,
        "val_f1": f1,
    }


def _lr_lambda(config: BoundaryConfig) -> Callable[[int], float]:
    """Linear warm-up then cosine decay to zero."""

    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        span = max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup_steps) / span)))

    return factor


def _save_model(model: Any, config: BoundaryConfig, out: Path) -> None:
    """save_pretrained (safetensors) + preprocessor_config.json, each file moved into ``out`` whole."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".model.", dir=out) as tmp_name:
        tmp = Path(tmp_name)
        model.save_pretrained(tmp, safe_serialization=True)
        proc = {
            "image_processor_type": "SegformerImageProcessor",
            "do_resize": config.inference_size is not None,
            "size": {"height": config.inference_size or 0, "width": config.inference_size or 0},
            "resample": 2,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "do_normalize": True,
            "image_mean": list(IMAGE_MEAN),
            "image_std": list(IMAGE_STD),
            "do_reduce_labels": False,
            "fuse_image_fallback": config.fuse_image_fallback,
            "merge_below": config.merge_below,
        }
        (tmp / "preprocessor_config.json").write_text(json.dumps(proc, indent=2) + "\n")
        for f in tmp.iterdir():
            f.chmod(0o644)  # some writers create private files; this is an ordinary output folder
            os.replace(f, out / f.name)


def run_boundary(
    config: BoundaryConfig,
    output_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[Callback] | None = None,
) -> Path:
    """Train the boundary model (resuming from ``<output_dir>/checkpoint`` if there is one); return the model folder.

    ``callbacks`` are plain callables ``callback(step, logs)`` (this is a torch loop, not an HF Trainer),
    called every ``log_every`` steps and after each validation. A finished run is not trained again.
    """
    config = _check(config, "boundary config")
    out = Path(output_dir or config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / "trainer_state.json"
    done = state_file.is_file() and json.loads(state_file.read_text()).get("step", 0) >= config.steps
    if done and (out / "config.json").is_file():
        return out
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    use_cuda = config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")

    scenes, probs = _load_sources(config.sources, config)
    val_batches: list[tuple[np.ndarray, ...]] = []
    if config.val_sources:
        val_scenes, _ = _load_sources(config.val_sources, config)
        vrng = np.random.default_rng([config.seed, 1 << 30])  # fixed crops, same at every validation
        for scene in val_scenes:
            val_batches.append(
                sample_batch([scene], np.ones(1), vrng, config.val_crops, config.crop, jitter=0.0)
            )

    torch.manual_seed(config.seed)
    model = build_boundary_model(config).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(config))
    ckpt = out / "checkpoint" / "state.pt"
    step = 0
    log: list[dict[str, float]] = []
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step, log = int(state["step"]), list(state["log"])
    config.save(out / "boundary_config.yaml")

    def emit(logs: dict[str, float]) -> None:
        log.append(logs)
        for cb in callbacks or ():
            cb(int(logs["step"]), logs)

    t0, running, seen = time.perf_counter(), 0.0, 0
    while step < config.steps:
        rng = np.random.default_rng([config.seed, step])  # the batch depends on (seed, step) only
        torch.manual_seed(config.seed * 1_000_003 + step)  # and so does dropout / drop-path
        images, targets, weights = sample_batch(
            scenes, probs, rng, config.batch_size, config.crop, config.jitter
        )
        logits = _forward(model, images, device)
        loss = _loss(
            logits, torch.from_numpy(targets).to(device), torch.from_numpy(weights).to(device), config
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        running, seen = running + float(loss.detach()), seen + 1
        if step % config.log_every == 0 or step == config.steps:
            elapsed = time.perf_counter() - t0
            emit(
                {
                    "step": step,
                    "loss": running / seen,
                    "lr": float(sched.get_last_lr()[0]),
                    "s_per_step": elapsed / seen,
                }
            )
            t0, running, seen = time.perf_counter(), 0.0, 0
        if val_batches and ((config.val_every and step % config.val_every == 0) or step == config.steps):
            emit({"step": step, **_validate(model, val_batches, config, device)})
        if step % config.save_every == 0 and step < config.steps:
            ckpt.parent.mkdir(exist_ok=True)
            state = {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "step": step,
                "log": log,
            }
            with atomic_path(ckpt) as tmp:
                torch.save(state, tmp)

    _save_model(model.cpu(), config, out)
    with atomic_path(state_file) as tmp:
        tmp.write_text(json.dumps({"step": step, "log": log}, indent=1) + "\n")
    shutil.rmtree(out / "checkpoint", ignore_errors=True)  # the run is done: keep the folder model-sized
    return out
