"""`magseg map` on bad input: one line naming the problem, exit 2, and no output folder left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from magseg.mapping.store import MANIFEST
from tests.conftest import run_magseg


def map_args(
    region: tuple[Path, list[float]], out: Path, *extra: str, bbox: list[float] | None = None
) -> list[str]:
    root, inner = region
    return ["map", "--bbox", *map(str, bbox or inner), "--stac", str(root), "--out", str(out), *extra]


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ([77.0, 29.0, 76.0, 30.0], "antimeridian"),  # west > east: inverted, or crossing 180
        ([76.0, 30.0, 77.0, 29.0], "south"),
        ([76.0, float("nan"), 77.0, 30.0], "finite"),
        ([176.0, 29.0, 190.0, 30.0], "outside WGS 84"),
        ([76.0, 29.0, 77.0, 30.0], "--yes"),  # ~11,000 km²: far above max_tiles
    ],
)
def test_bad_or_huge_bbox(
    bbox: list[float], expected: str, region: tuple[Path, list[float]], tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "out"
    status, stdout, stderr = run_magseg(monkeypatch, capsys, *map_args(region, out, bbox=bbox))
    assert status == 2, stderr
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and expected in stderr, stderr
    assert not out.exists()


def test_model_that_is_not_a_model(
    region: tuple[Path, list[float]], tmp_path: Path, monkeypatch, capsys
) -> None:
    (tmp_path / "weights").mkdir()
    out = tmp_path / "out"
    status, _, stderr = run_magseg(
        monkeypatch, capsys, *map_args(region, out, "--model", str(tmp_path / "weights"))
    )
    assert status == 2 and "not a model" in stderr and not out.exists()


def test_empty_search(region: tuple[Path, list[float]], tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    args = map_args(region, out, bbox=[10.0, 10.0, 10.001, 10.001])
    status, _, stderr = run_magseg(monkeypatch, capsys, *args)
    assert status == 2 and "no STAC items" in stderr and "widen" in stderr and not out.exists()


def test_unreachable_stac_api(region: tuple[Path, list[float]], tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    args = map_args(region, out)
    args[args.index("--stac") + 1] = "http://127.0.0.1:9/"
    status, _, stderr = run_magseg(monkeypatch, capsys, *args)
    assert status == 2 and "cannot open the STAC API" in stderr and stderr.count("\n") == 1
    assert not out.exists()


def test_bad_export_extension(region: tuple[Path, list[float]], tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    status, _, stderr = run_magseg(
        monkeypatch, capsys, *map_args(region, out, "--export", str(tmp_path / "f.shp"))
    )
    assert status == 2 and ".parquet, .fgb or .gpkg" in stderr and not out.exists()


def test_out_holding_another_run(
    region: tuple[Path, list[float]], tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    manifest = {"fingerprint": "0123456789abcdef", "settings": {"bbox": [1, 2, 3, 4]}}
    (out / MANIFEST).write_text(json.dumps(manifest))
    status, _, stderr = run_magseg(monkeypatch, capsys, *map_args(region, out))
    assert status == 2 and "another run" in stderr and "[1, 2, 3, 4]" in stderr
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST]  # untouched


def test_out_holding_other_files(
    region: tuple[Path, list[float]], tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    status, _, stderr = run_magseg(monkeypatch, capsys, *map_args(region, out))
    assert status == 2 and "not empty" in stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_dtype_is_checked_and_decides_the_polygons(tmp_path: Path) -> None:
    from magseg.errors import InputError
    from magseg.mapping.config import MapConfig

    base = {"bbox": (76.97, 29.68, 76.98, 29.69), "stac": str(tmp_path), "out": str(tmp_path / "out")}
    with pytest.raises(InputError, match="bfloat16"):
        MapConfig(**base, dtype="fp8")  # type: ignore[arg-type]
    assert "dtype" not in MapConfig(**base).result_settings()  # type: ignore[arg-type]
    # a resumed run in another dtype would write other masks: the settings a rerun must match name it
    assert MapConfig(**base, dtype="bfloat16").result_settings()["dtype"] == "bfloat16"  # type: ignore[arg-type]


def test_baseline_stand_ins_write_their_masks_and_classifier_needs_its_file(tmp_path: Path) -> None:
    from magseg.classes import FIELD
    from magseg.errors import InputError
    from magseg.evaluate import PixelClassifier, synthetic_training_scenes
    from magseg.mapping.config import MapConfig
    from magseg.mapping.stages import _standin_masks

    base = {"bbox": (76.97, 29.68, 76.98, 29.69), "stac": str(tmp_path), "out": str(tmp_path / "out")}
    with pytest.raises(InputError, match="classifier"):
        MapConfig(**base, engine="classifier")  # type: ignore[arg-type]
    scenes = synthetic_training_scenes(2, 128, 0.5, seed=3)
    clf = PixelClassifier().fit(scenes)
    clf.save(tmp_path / "clf.npz")
    config = MapConfig(**base, engine="classifier", classifier=str(tmp_path / "clf.npz"))  # type: ignore[arg-type]
    assert config.result_settings()["classifier"] == str(tmp_path / "clf.npz")
    image = scenes[1].image
    assert (_standin_masks("field", None)(image, None) == FIELD).all()
    assert np.array_equal(
        _standin_masks("classifier", str(tmp_path / "clf.npz"))(image, None), clf.predict(image)
    )
    truth = scenes[1].labels.semantic
    assert np.array_equal(_standin_masks("truth", None)(image, truth), truth)
