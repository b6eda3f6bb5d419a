"""Load a local image-text-to-text checkpoint (safetensors only, nothing downloaded), optionally with LoRA."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, ProcessorMixin

from magseg.errors import InputError


def _adapter_base(folder: Path) -> Path | None:
    """The local base model an adapter folder names, or None when ``folder`` is not an adapter."""
    cfg = folder / "adapter_config.json"
    if not cfg.is_file():
        return None
    base = json.loads(cfg.read_text()).get("base_model_name_or_path")
    return Path(base) if base else None


#: Weight files load_model reads (safetensors only: nothing pickled is ever loaded).
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
ADAPTER_WEIGHTS = ("adapter_model.safetensors",)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _check_model_dir(path: Path) -> None:
    """A one-line InputError unless ``path`` holds an image-text-to-text model load_model can load:
    a config transformers reads, of an image-text-to-text architecture, and safetensors weights."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    if not path.is_dir():
        raise InputError(
            f"{path}: not a model folder (no such folder); give a folder saved with save_pretrained"
        )
    if not (path / "config.json").is_file():
        raise InputError(
            f"{path}: not a model folder (no config.json); give a folder saved with save_pretrained"
        )
    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: config.json is not a model config transformers can read ({_first_line(exc)}); "
            "give a folder saved with save_pretrained"
        ) from None
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise InputError(
            f"{path}: a {config.model_type!r} model is not image-text-to-text (MAgSeg reads images, writes "
            "RRLE text): give a Gemma3-style model folder"
        )
    if not any((path / name).is_file() for name in WEIGHTS):
        raise InputError(f"{path}: no weights ({' or '.join(WEIGHTS)}); save the model with save_pretrained")


def resolve_model_path(path: str | os.PathLike[str]) -> tuple[Path, Path | None]:
    """Split ``path`` into (base model folder, adapter folder or None), checked: a one-line InputError
    when it is not a model (or adapter) load_model can load, before anything is loaded or written.

    A LoRA output folder (adapter_config.json, no config.json) stands for its base model plus itself,
    so ``load_model("runs/sft")`` works on what ``run_sft`` writes either way.
    """
    folder = Path(path)
    if not (folder / "config.json").is_file():
        base = _adapter_base(folder)
        if base is not None:
            _check_model_dir(base)
            if not any((folder / name).is_file() for name in ADAPTER_WEIGHTS):
                raise InputError(f"{folder}: an adapter folder without {ADAPTER_WEIGHTS[0]}; save it again")
            return base, folder
    _check_model_dir(folder)
    return folder, None


def load_processor(path: str | os.PathLike[str]) -> ProcessorMixin:
    """The processor saved beside a model or adapter (an adapter folder from run_sft holds one too)."""
    folder = Path(path)
    source = folder if (folder / "processor_config.json").is_file() else resolve_model_path(folder)[0]
    return AutoProcessor.from_pretrained(source, local_files_only=True)


def load_model(
    path: str | os.PathLike[str],
    *,
    adapter: str | os.PathLike[str] | None = None,
    merge: bool = False,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
    trust_remote_code: bool = False,
    trainable: bool = False,
) -> tuple[Any, ProcessorMixin]:
    """Load ``(model, processor)`` from a local folder; ``adapter`` attaches a PEFT LoRA (merged if ``merge``).

    ``dtype`` None keeps the checkpoint's own dtype; ``trainable`` keeps the adapter's weights trainable
    (GRPO continues the SFT adapter).
    """
    base, implied_adapter = resolve_model_path(path)
    if adapter is not None and implied_adapter is not None:
        raise InputError(
            f"{path}: is itself an adapter folder; give its base model as the path, or drop --adapter"
        )
    adapter_dir = Path(adapter) if adapter is not None else implied_adapter
    if adapter_dir is not None and not (adapter_dir / "adapter_config.json").is_file():
        raise InputError(f"{adapter_dir}: not a PEFT adapter folder (no adapter_config.json)")
    model: Any = AutoModelForImageTextToText.from_pretrained(
        base,
        dtype=dtype if dtype is not None else "auto",
        use_safetensors=True,
        local_files_only=True,
        trust_remote_code=trust_remote_code,
    )
    if adapter_dir is not None:
        from peft import PeftModel  # peft is imported only when an adapter is used

        model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable and not merge)
        if merge:
            model = model.merge_and_unload()
    if device is not None:
        model = model.to(device)
    if not trainable:
        model.eval()
    processor = load_processor(adapter_dir if adapter_dir is not None else base)
    return model, processor
