"""The model card: the sample format (magseg.format) a model was trained with, written beside it, read back."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from magseg import __version__
from magseg.atomic import atomic_path
from magseg.decoding import MAX_REREADS
from magseg.errors import InputError
from magseg.format import ModelFormat

#: The model card file written next to the weights (or the adapter).
META_NAME = "magseg.json"


def write_model_card_meta(
    model_dir: str | os.PathLike[str], config: Any, extra: dict[str, Any] | None = None
) -> Path:
    (
        """Write ``model_dir``/magseg.json: the samples' config (a dataclass, e.g. SampleConfig; its format fields
    are what inference reads back) the model was trained on, plus ``extra``."""
        ""
    )
    folder = Path(model_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such model folder; save the model before writing its card")
    meta = {"magseg_version": __version__, "samples": asdict(config), **(extra or {})}
    path = folder / META_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    return path


def _card(folder: Path) -> dict[str, Any] | None:
    """The parsed magseg.json of ``folder`` (None when it has none), or a one-line error when malformed."""
    card = folder / META_NAME
    if not card.is_file():
        return None
    try:
        meta = json.loads(card.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{card}: not valid JSON ({exc}); rewrite it with write_model_card_meta") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("samples"), dict):
        raise InputError(f"{card}: has no 'samples' mapping; rewrite it with write_model_card_meta")
    return meta


def _from_card(folder: Path) -> dict[str, Any] | None:
    meta = _card(folder)
    return None if meta is None else meta["samples"]


def _from_training(folder: Path) -> dict[str, Any] | None:
    """The sample config of the data a finished run trained on (train_config.yaml -> samples.json)."""
    cfg = folder / "train_config.yaml"
    if not cfg.is_file():
        return None
    data = (yaml.safe_load(cfg.read_text()) or {}).get("data")
    samples = Path(str(data)) / "samples.json" if data else None
    if samples is None or not samples.is_file():
        return None
    config = json.loads(samples.read_text()).get("config")
    return config if isinstance(config, dict) else None


def _candidates(model_dir: str | os.PathLike[str]) -> list[Path]:
    """Where a model's card may be: its folder, an adapter's base model, a checkpoint's run folder."""
    folder = Path(model_dir)
    candidates = [folder]
    adapter_cfg = folder / "adapter_config.json"
    if adapter_cfg.is_file():
        base = json.loads(adapter_cfg.read_text()).get("base_model_name_or_path")
        if base:
            candidates.append(Path(base))
    if folder.name.startswith("checkpoint-"):
        candidates.append(folder.parent)
    return candidates


def read_model_meta(model_dir: str | os.PathLike[str]) -> ModelFormat | None:
    """The sample format recorded with a model, or None when the folder records none.

    Looks for magseg.json in the folder, then in the base model of an adapter folder; failing that, for
    a finished training run's train_config.yaml pointing at a samples folder (its samples.json). A
    checkpoint-N folder also looks in its run folder (the parent).
    """
    candidates = _candidates(model_dir)
    for reader in (_from_card, _from_training):
        for cand in candidates:
            values = reader(cand)
            if values is not None:
                return ModelFormat.from_dict(values)
    return None


def read_class_bias(model_dir: str | os.PathLike[str]) -> dict[str, float]:
    """The per-class logit bias the model's card asks greedy decoding to use ({} when none: the model's own
    argmax). It is tuned on calibration scenes after training (``magseg eval --class-bias``) and lives in
    magseg.json under ``decoding.class_bias``, so eval, mapping and serve decode the model alike."""
    for cand in _candidates(model_dir):
        meta = _card(cand)
        if meta is None:
            continue
        decoding = meta.get("decoding") or {}
        bias = (decoding.get("class_bias") or {}) if isinstance(decoding, dict) else None
        if not isinstance(bias, dict) or not all(isinstance(v, int | float) for v in bias.values()):
            raise InputError(
                f"{cand / META_NAME}: decoding.class_bias must map class names to numbers; fix the card"
            )
        return {str(k): float(v) for k, v in bias.items()}
    return {}


def read_rereads(model_dir: str | os.PathLike[str]) -> float:
    """The share of seam re-reads the model's card asks inference to run (``decoding.rereads``, chosen on
    calibration scenes; magseg.inference.rereads), 0.0 when it names none: eval, mapping and serve alike."""
    for cand in _candidates(model_dir):
        meta = _card(cand)
        if meta is None:
            continue
        decoding = meta.get("decoding") or {}
        value = decoding.get("rereads", 0.0) if isinstance(decoding, dict) else None
        if not isinstance(value, int | float) or not 0 <= value <= MAX_REREADS:
            raise InputError(
                f"{cand / META_NAME}: decoding.rereads must be a share in [0, {MAX_REREADS:g}]; fix the card"
            )
        return float(value)
    return 0.0


def resolve_config(model_dir: str | os.PathLike[str], **overrides: Any) -> tuple[ModelFormat, str]:
    """The model's recorded config with ``overrides`` (None values ignored) applied; and where it came from."""
    recorded = read_model_meta(model_dir)
    base = recorded if recorded is not None else ModelFormat()
    given = {k: v for k, v in overrides.items() if v is not None}
    config = dataclasses.replace(base, **given)
    config.check()
    source = "model folder" if recorded is not None else "defaults"
    return config, source + (" + flags" if given else "")
