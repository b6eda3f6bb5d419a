"""The boundary model's targets, weights, config and a 3-step training run that SegformerBoundary loads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from magseg.errors import InputError
from magseg.refine import SegformerBoundary, load_boundary_model, refine
from magseg.train.boundary import (
    BoundaryConfig,
    BoundarySource,
    boundary_config_from_dict,
    load_boundary_config,
    run_boundary,
)
from magseg.train.boundary_data import boundary_target, load_boundary_scenes, loss_weight, sample_batch


def test_target_is_thick_where_instances_touch() -> None:
    inst = np.zeros((40, 40), dtype=np.int32)
    inst[5:35, 5:20] = 1
    inst[5:35, 20:35] = 2  # touches field 1 along column 19 | 20
    tgt = boundary_target(inst, thickness=3)
    row = tgt[20]
    # the shared edge: both inner contours (cols 19, 20) dilated by one pixel -> 18..21 all set
    assert row[18:22].tolist() == [1, 1, 1, 1]
    assert row[12] == 0 and row[27] == 0  # field interiors are not boundary
    # a field against background: a 3-pixel line straddling the edge (one pixel outside, two inside)
    assert row[3:8].tolist() == [0, 1, 1, 1, 0]
    assert tgt[0:3].sum() == 0 and tgt[:, 37:].sum() == 0
    thin = boundary_target(inst, thickness=1)
    assert thin[20, 18:22].tolist() == [0, 1, 1, 0] and thin.sum() < tgt.sum()


def test_target_of_empty_mask_and_bad_input() -> None:
    assert boundary_target(np.zeros((8, 8), dtype=np.int32)).sum() == 0
    with pytest.raises(InputError, match="2-D"):
        boundary_target(np.zeros((2, 8, 8), dtype=np.int32))
    with pytest.raises(InputError, match="thickness"):
        boundary_target(np.zeros((8, 8), dtype=np.int32), thickness=0)


def test_sparse_weight_supervises_only_near_annotations() -> None:
    inst = np.zeros((64, 64), dtype=np.int32)
    inst[10:20, 10:20] = 1
    dense = loss_weight(inst, sparse=False)
    assert dense.min() == 1.0
    w = loss_weight(inst, sparse=True, near_px=4, unlabelled_weight=0.1)
    assert w[15, 15] == 1.0 and w[15, 23] == 1.0  # inside, and 4 px outside the field
    assert w[15, 30] == pytest.approx(0.1) and w[60, 60] == pytest.approx(0.1)


def test_sample_batch_shapes_and_padding(labelled_folder: Path) -> None:
    scenes = load_boundary_scenes(str(labelled_folder), include=["scene0"])
    assert [s.scene_id for s in scenes] == ["scene0"]
    rng = np.random.default_rng(0)
    images, targets, weights = sample_batch(scenes, np.ones(1), rng, batch=3, crop=160, jitter=0.2)
    assert images.shape == (3, 3, 160, 160) and targets.shape == weights.shape == (3, 160, 160)
    assert images.min() >= 0.0 and images.max() <= 1.0
    # the 128 px scene is padded to 160: padded pixels carry no weight and no target
    assert weights.sum() == pytest.approx(3 * 128 * 128)
    assert set(np.unique(targets)) <= {0.0, 1.0} and targets.sum() > 0
    with pytest.raises(InputError, match="no scene"):
        load_boundary_scenes(str(labelled_folder), include=["nope"])


def _tiny(folder: Path, out: Path, steps: int = 3) -> BoundaryConfig:
    return boundary_config_from_dict(
        {
            "sources": [str(folder)],
            "val_sources": [{"path": str(folder), "include": ["scene1"], "sparse": True}],
            "output_dir": str(out),
            "hidden_sizes": [8, 8, 16, 16],
            "num_attention_heads": [1, 1, 1, 1],
            "decoder_hidden_size": 16,
            "crop": 64,
            "batch_size": 2,
            "steps": steps,
            "log_every": 1,
            "save_every": 2,
            "val_crops": 2,
            "inference_size": 128,
            "dice_weight": 0.5,
        }
    )


def test_three_steps_save_a_model_segformer_boundary_loads(labelled_folder: Path, tmp_path: Path) -> None:
    logs: list[tuple[int, dict[str, float]]] = []
    out = run_boundary(
        _tiny(labelled_folder, tmp_path / "ignored"),
        output_dir=tmp_path / "model",
        callbacks=[lambda step, d: logs.append((step, d))],
    )
    assert out == tmp_path / "model"
    assert (out / "model.safetensors").is_file() and not (out / "checkpoint").exists()
    proc = json.loads((out / "preprocessor_config.json").read_text())
    assert proc["size"] == {"height": 128, "width": 128} and len(proc["image_mean"]) == 3
    assert [s for s, d in logs if "loss" in d] == [1, 2, 3]
    assert any("val_f1" in d for _, d in logs) and all(np.isfinite(d.get("loss", 0.0)) for _, d in logs)

    model = load_boundary_model(out)
    assert isinstance(model, SegformerBoundary) and model.resolution == 128
    image = np.random.default_rng(0).integers(0, 255, (3, 96, 80), dtype=np.uint8)
    prob = model.predict(image)
    assert prob.shape == (96, 80) and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    sem = np.ones((96, 80), dtype=np.uint8)
    assert refine(sem, image, model=model).instance.shape == (96, 80)

    state = json.loads((out / "trainer_state.json").read_text())
    assert state["step"] == 3
    saved = load_boundary_config(out / "boundary_config.yaml")
    assert saved.hidden_sizes == [8, 8, 16, 16] and saved.val_sources[0].sparse


def test_resume_continues_from_checkpoint(labelled_folder: Path, tmp_path: Path) -> None:
    config = _tiny(labelled_folder, tmp_path / "run", steps=4)
    config.val_sources = []
    steps_seen: list[int] = []

    class StopError(Exception):
        pass

    def stop_at_3(step: int, logs: dict[str, float]) -> None:
        if step == 3:
            raise StopError

    # a run killed at step 3, after its step-2 checkpoint (save_every 2)
    with pytest.raises(StopError):
        run_boundary(config, callbacks=[stop_at_3])
    assert (tmp_path / "run" / "checkpoint" / "state.pt").is_file()
    run_boundary(config, callbacks=[lambda step, d: steps_seen.append(step)])
    assert steps_seen == [3, 4]  # resumed after step 2
    # a finished run is returned as is
    again: list[int] = []
    run_boundary(config, callbacks=[lambda step, d: again.append(step)])
    assert again == []


def test_config_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no 'sources'"):
        boundary_config_from_dict({})
    with pytest.raises(InputError, match="unknown key"):
        boundary_config_from_dict({"sources": ["x"], "stepz": 3})
    with pytest.raises(InputError, match="multiple of 32"):
        boundary_config_from_dict({"sources": ["x"], "crop": 100})
    with pytest.raises(InputError, match="divisible"):
        boundary_config_from_dict({"sources": ["x"], "hidden_sizes": [16, 32, 64, 130]})
    with pytest.raises(InputError, match="same length"):
        boundary_config_from_dict({"sources": ["x"], "depths": [1, 1]})
    with pytest.raises(InputError, match="steps must be > 0"):
        boundary_config_from_dict({"sources": ["x"], "steps": 0})
    with pytest.raises(InputError, match="needs 'path'"):
        boundary_config_from_dict({"sources": [{"folder": "x"}]})
    with pytest.raises(InputError, match="no such config"):
        load_boundary_config(tmp_path / "missing.yaml")
    cfg = tmp_path / "b.yaml"
    cfg.write_text(yaml.safe_dump({"sources": [{"path": "a", "sparse": True}, "b"], "steps": 5}))
    loaded = load_boundary_config(cfg, steps=7)
    assert loaded.steps == 7
    assert loaded.sources == [BoundarySource("a", sparse=True), BoundarySource("b")]
    cfg.write_text("- a list\n")
    with pytest.raises(InputError, match="mapping"):
        load_boundary_config(cfg)
