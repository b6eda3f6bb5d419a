"""Tests of load_model: local folders only, LoRA attached or merged, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model

from magseg.bundled import BUNDLED_MODEL
from magseg.errors import InputError
from magseg.model import load_model, resolve_model_path
from magseg.train.config import LANGUAGE_LINEARS
from tests.conftest import run_magseg

CONFIGS = Path(__file__).resolve().parents[2] / "jobs" / "configs"


@pytest.fixture(scope="module")
def adapter(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, processor = load_model(tiny_model)
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=LANGUAGE_LINEARS))
    with torch.no_grad():  # a non-zero B so that the adapter changes the output
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("adapter") / "lora"
    peft_model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([[2, 5, 20, 21, 22]])).logits


def test_loads_model_and_processor(tiny_model: Path) -> None:
    model, processor = load_model(tiny_model, dtype=torch.float32)
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    assert not model.training
    assert processor.tokenizer.pad_token == "<pad>"


def test_adapter_attached_merged_or_implied(tiny_model: Path, adapter: Path) -> None:
    base, _ = load_model(tiny_model)
    attached, _ = load_model(tiny_model, adapter=adapter)
    merged, _ = load_model(tiny_model, adapter=adapter, merge=True)
    implied, _ = load_model(adapter)  # an adapter folder stands for base + adapter
    assert isinstance(attached, PeftModel) and isinstance(implied, PeftModel)
    assert not isinstance(merged, PeftModel)
    assert not torch.allclose(_logits(base), _logits(attached))
    torch.testing.assert_close(_logits(attached), _logits(merged), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(_logits(attached), _logits(implied))


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not a model folder \(no config.json\)") as err:
        load_model(tmp_path)
    assert "\n" not in str(err.value)


def test_bad_adapter_folder(tiny_model: Path, tmp_path: Path, adapter: Path) -> None:
    with pytest.raises(InputError, match="not a PEFT adapter folder"):
        load_model(tiny_model, adapter=tmp_path)
    with pytest.raises(InputError, match="is itself an adapter folder"):
        load_model(adapter, adapter=adapter)


def test_adapter_whose_base_is_gone(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"base_model_name_or_path": "/nowhere/base"}')
    with pytest.raises(InputError, match="/nowhere/base: not a model folder"):
        load_model(tmp_path)


def _bad_folder(root: Path, kind: str) -> Path:
    """A folder that looks like a model but is not one magseg can load."""
    folder = root / kind
    folder.mkdir()
    config = {
        "empty-config": {},
        "text-only": {"model_type": "gpt2", "n_layer": 1},
        "no-weights": json.loads((BUNDLED_MODEL / "config.json").read_text()),
    }[kind]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


BAD_MODELS = {
    "empty-config": "not a model config",
    "text-only": "not image-text-to-text",
    "no-weights": "no weights",
}


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_bad_model_folders_are_one_line_errors(kind: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=BAD_MODELS[kind]) as err:
        resolve_model_path(_bad_folder(tmp_path, kind))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_every_command_refuses_a_bad_model_before_writing(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _bad_folder(tmp_path, kind)
    out = tmp_path / "out"
    commands = {
        "map": ["map", "--bbox", "10", "45", "10.001", "45.001", "--stac", str(tmp_path), "--out", str(out)],
        "eval": ["eval", "--data", str(tmp_path)],
        "serve": ["serve", "--stac", str(tmp_path)],
        "train": ["train", "sft", "--config", str(CONFIGS / "sft_tiny_cpu.yaml"), "--local"],
    }
    for name, argv in commands.items():
        status, _, stderr = run_magseg(monkeypatch, capsys, *argv, "--model", str(model))
        assert status == 2, (name, stderr)
        assert stderr.startswith("error: ") and stderr.count("\n") == 1, (name, stderr)
        assert BAD_MODELS[kind] in stderr and not out.exists(), (name, stderr)
