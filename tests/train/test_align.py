"""Pre-alignment: the vision tower and projector learn per-token cell classes; nothing else changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from magseg.errors import InputError
from magseg.model import load_model
from magseg.samples import SampleConfig, write_samples
from magseg.train import config_from_dict, run_align, run_sft
from magseg.train.align import class_weights


@pytest.fixture(scope="module")
def grid4_samples(tmp_path_factory: pytest.TempPathFactory, labelled_folder: Path) -> Path:
    # the tiny test model has 4x4 image tokens: one token per cell of a 4x4 RRLE grid
    out = tmp_path_factory.mktemp("align") / "samples"
    config = SampleConfig(patch=64, grid=4, per_scene=12, context_size=32, crop_size=32, balance=0.5)
    write_samples([labelled_folder], out, config, seed=2)
    return out


def test_align_trains_vision_and_projector_only(
    tiny_model: Path, grid4_samples: Path, tmp_path: Path
) -> None:
    seen: list[dict] = []
    config = config_from_dict(
        {
            "model": str(tiny_model),
            "data": str(grid4_samples),
            "eval_split": "train",
            "align": {"steps": 30, "batch_size": 8, "logging_steps": 10, "learning_rate": 3e-3},
        }  # fmt: skip
    )
    out = run_align(config, tmp_path / "align", log=seen.append)
    before, after = load_file(tiny_model / "model.safetensors"), load_file(out / "model.safetensors")
    assert before.keys() == after.keys()  # the head is thrown away: same architecture
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any("vision_tower" in k for k in changed) and any("multi_modal_projector" in k for k in changed)
    assert not any("language_model" in k or "lm_head" in k for k in changed)
    assert [e["step"] for e in seen] == [10, 20, 30] and seen[-1]["loss"] < seen[0]["loss"]
    assert "cell_accuracy" in seen[-1] and "dice_field" in seen[-1]
    assert json.loads((out / "align_history.json").read_text()) == seen
    model, _ = load_model(out)  # loads like any model folder
    assert model is not None


def test_sft_can_keep_the_aligned_vision_frozen(
    tiny_model: Path, grid4_samples: Path, tmp_path: Path
) -> None:
    sft = {"max_steps": 2, "batch_size": 2, "logging_steps": 1, "save_steps": 1000, "freeze_vision": True}
    config = config_from_dict(
        {"preset": "tiny", "model": str(tiny_model), "data": str(grid4_samples), "sft": sft}
    )
    out = run_sft(config, tmp_path / "sft")
    before, after = load_file(tiny_model / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and not any("vision_tower" in k or "multi_modal_projector" in k for k in changed)


def test_align_refuses_a_grid_without_one_token_per_cell(
    tiny_model: Path, tiny_samples: Path, tmp_path: Path
) -> None:
    config = config_from_dict({"model": str(tiny_model), "data": str(tiny_samples), "align": {"steps": 1}})
    with pytest.raises(InputError, match="one image token per RRLE cell"):
        run_align(config, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_class_weights_favour_rare_classes() -> None:
    targets = torch.tensor([1] * 90 + [2] * 9 + [5])
    w = class_weights(targets, 6)
    assert w[0] == 0 and w[5] > w[2] > w[1] > 0
    assert torch.isclose(w[w > 0].mean(), torch.tensor(1.0))


def test_align_runs_as_a_training_kind(tiny_model: Path, grid4_samples: Path, tmp_path: Path) -> None:
    from magseg.train.ray_job import load_job_config, run_local

    config, settings = load_job_config(
        Path(__file__).resolve().parents[2] / "jobs/configs/align_tiny_cpu.yaml",
        "align",
        model=str(tiny_model),
        data=str(grid4_samples),
    )
    config.align.output_dir = str(tmp_path / "aligned")
    assert settings.workers == 1 and config.align.steps == 20
    out = run_local("align", config)
    assert out == tmp_path / "aligned" and (out / "model.safetensors").is_file()
