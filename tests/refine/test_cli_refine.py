"""`magseg refine`: semantic mask + image -> label raster; errors are one line with exit status 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from magseg.labels import LabelRaster, read_label_raster, write_label_raster
from tests.conftest import make_two_field_scene, run_magseg, write_rgb


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    return run_magseg(monkeypatch, capsys, "refine", *args)


@pytest.fixture
def scene(tmp_path: Path) -> tuple[Path, Path, LabelRaster]:
    """Image + a label raster whose two adjacent fields share one instance id (as a semantic mask would)."""
    image, labels = make_two_field_scene(size=96)
    merged = LabelRaster(
        np.where(labels.instance > 0, 1, 0).astype(np.int32), labels.semantic, labels.transform, labels.crs
    )
    write_rgb(tmp_path / "image.tif", image, labels)
    write_label_raster(tmp_path / "merged.tif", merged)
    return tmp_path / "image.tif", tmp_path / "merged.tif", labels


def refine_args(scene: tuple[Path, Path, LabelRaster], out: Path) -> list[str]:
    image, merged, _ = scene
    return ["--semantic", str(merged), "--image", str(image), "--out", str(out)]


def test_refine_splits_fields_from_a_label_raster(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    scene: tuple[Path, Path, LabelRaster],
    tmp_path: Path,
) -> None:
    truth, out = scene[2], tmp_path / "refined.tif"
    # the image fallback: its edge lies on the colour step to within the 2 px gap
    status, stdout, _ = run(monkeypatch, capsys, *refine_args(scene, out), "--boundary", "none")
    assert status == 0 and "2 field" in stdout and "1 pond" in stdout
    result = read_label_raster(out)
    assert result.crs == truth.crs and result.transform == truth.transform
    # refine leaves a gap (2 m = 2 px: the CLI passes no GSD) between the two fields, and nowhere else
    changed = result.semantic != truth.semantic
    assert changed.any() and (truth.semantic[changed] == 1).all() and (result.semantic[changed] == 0).all()
    cols = np.nonzero(changed)[1]
    assert cols.min() >= 44 and cols.max() <= 51  # the fields meet at column 48
    fields = np.unique(result.instance[(truth.semantic == 1) & ~changed])
    assert fields.size == 2 and 0 not in fields


def test_refine_defaults_to_the_bundled_boundary_model(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    scene: tuple[Path, Path, LabelRaster],
    tmp_path: Path,
) -> None:
    out = tmp_path / "refined.tif"
    args = refine_args(scene, out)
    status, stdout, _ = run(monkeypatch, capsys, *args)
    assert status == 0 and "2 field" in stdout and "1 pond" in stdout
    default = read_label_raster(out).instance
    status, _, _ = run(monkeypatch, capsys, *args, "--boundary", "none")
    assert status == 0 and not np.array_equal(read_label_raster(out).instance, default)  # another map


def test_one_band_semantic_without_image_gives_components(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    scene: tuple[Path, Path, LabelRaster],
    tmp_path: Path,
) -> None:
    _, _, truth = scene
    sem_path = tmp_path / "semantic.tif"
    profile = {"driver": "GTiff", "width": 96, "height": 96, "count": 1, "dtype": "uint8",
               "crs": truth.crs, "transform": truth.transform}  # fmt: skip
    with rasterio.open(sem_path, "w", **profile) as dst:
        dst.write(truth.semantic, 1)
    out = tmp_path / "cc.tif"
    status, stdout, stderr = run(monkeypatch, capsys, "--semantic", str(sem_path), "--out", str(out))
    assert status == 0 and "connected components" in stderr and "1 field" in stdout
    assert np.array_equal(read_label_raster(out).semantic, truth.semantic)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--semantic", "{tmp}/missing.tif"], "no such file"),
        (["--semantic", "{merged}", "--image", "{tmp}/missing.tif"], "no such file"),
        (["--semantic", "{merged}", "--boundary", "{tmp}"], "--boundary needs --image"),
        (["--semantic", "{merged}", "--image", "{merged}"], "RGB"),
        (["--semantic", "{merged}", "--image", "{image}", "--boundary", "{tmp}/nomodel"], "no such model"),
    ],
)
def test_errors(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    scene: tuple[Path, Path, LabelRaster],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    image, merged, _ = scene
    out = tmp_path / "out.tif"
    filled = [a.format(tmp=tmp_path, merged=merged, image=image) for a in args]
    status, _, err = run(monkeypatch, capsys, *filled, "--out", str(out))
    assert status == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_merge_below_joins_fields_their_border_parts_too_weakly(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    scene: tuple[Path, Path, LabelRaster],
    tmp_path: Path,
) -> None:
    args = [*refine_args(scene, tmp_path / "refined.tif"), "--boundary", "none"]
    status, stdout, _ = run(monkeypatch, capsys, *args, "--merge-below", "1")  # every border is too weak
    assert status == 0 and "1 field" in stdout
    status, stdout, _ = run(monkeypatch, capsys, *args, "--merge-below", "0")
    assert status == 0 and "2 field" in stdout
