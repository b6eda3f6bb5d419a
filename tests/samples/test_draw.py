"""Tests of where training patches come from: windows, class balance, labelled share, augmentation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from magseg.codec import decode, mask_to_grid
from magseg.errors import InputError
from magseg.samples import SampleConfig, load_samples, scene_samples, write_samples
from magseg.samples.build import truth_edges
from magseg.samples.draw import colour_jitter, dihedral, draw_patch, draw_window
from magseg.sources import LabelledScene, list_scenes


def _rare_class_mask(size: int = 256) -> np.ndarray:
    semantic = np.ones((size, size), dtype=np.uint8)  # field everywhere
    semantic[200:206, 40:46] = 5  # one small well
    semantic[10:30, 220:240] = 2  # one tree crown
    return semantic


def test_balance_places_patches_over_rare_classes() -> None:
    semantic = _rare_class_mask()
    rng = np.random.default_rng(0)
    plain = [draw_patch(semantic, 32, rng) for _ in range(200)]
    balanced = [draw_patch(semantic, 32, rng, balance=1.0) for _ in range(200)]

    def rare_share(origins: list[tuple[int, int]]) -> float:
        return float(np.mean([(semantic[y : y + 32, x : x + 32] > 1).any() for x, y in origins]))

    assert rare_share(balanced) == 1.0  # every balanced patch holds a tree or well pixel
    assert rare_share(plain) < 0.4
    for x, y in balanced:
        assert 0 <= x <= 256 - 32 and 0 <= y <= 256 - 32


def test_min_labelled_redraws_mostly_unlabelled_patches() -> None:
    semantic = np.zeros((256, 256), dtype=np.uint8)
    semantic[:, :128] = 1  # half the scene is annotated; 0 is "not annotated"
    rng = np.random.default_rng(1)

    def ok_share(min_labelled: float) -> float:
        origins = [draw_patch(semantic, 32, rng, min_labelled=min_labelled) for _ in range(200)]
        return float(np.mean([np.mean(semantic[y : y + 32, x : x + 32] > 0) >= 0.6 for x, y in origins]))

    assert ok_share(0.6) >= 0.98  # the rest: 20 draws all failed, the last one is kept
    assert ok_share(0.0) < 0.7


def test_dihedral_ops_are_the_eight_distinct_symmetries() -> None:
    a = np.arange(12).reshape(1, 3, 4)
    outs = {dihedral(a, op).tobytes() + bytes(dihedral(a, op).shape) for op in range(8)}
    assert len(outs) == 8
    np.testing.assert_array_equal(dihedral(a, 0), a)


def test_jitter_changes_colours_within_range() -> None:
    img = np.full((3, 8, 8), 128, dtype=np.uint8)
    out = colour_jitter(img, np.random.default_rng(0), 0.2)
    assert out.dtype == np.uint8 and out.shape == img.shape and not np.array_equal(out, img)
    assert colour_jitter(img, np.random.default_rng(0), 0.0) is img


def test_window_is_drawn_inside_the_scene() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        x, y, w, h = draw_window(300, 1000, 256, rng)
        assert (w, h) == (256, 256) and 0 <= x <= 1000 - 256 and 0 <= y <= 300 - 256
    assert draw_window(100, 120, 256, rng) == (0, 0, 120, 100)
    assert draw_window(100, 120, None, rng) == (0, 0, 120, 100)


def _colour_coded_scene(size: int = 256) -> LabelledScene:
    """A scene whose pixel colour encodes its class, so image/mask consistency is checkable after augmenting."""
    from tests.conftest import make_two_field_scene

    _, labels = make_two_field_scene(size)
    semantic = _rare_class_mask(size)
    semantic[:, : size // 3] = 0
    palette = np.array([[0, 0, 0], [0, 200, 0], [0, 0, 200], [200, 0, 0], [200, 200, 0], [0, 200, 200]])
    image = palette[semantic].transpose(2, 0, 1).astype(np.uint8)
    labels.semantic = semantic
    return LabelledScene("coded", image, labels)


def test_augmented_samples_keep_image_and_mask_consistent() -> None:
    scene = _colour_coded_scene()
    config = SampleConfig(
        patch=32, grid=4, per_scene=40, context_size=64, window=128, augment=True, balance=0.5
    )
    palette = np.array([[0, 0, 0], [0, 200, 0], [0, 0, 200], [200, 0, 0], [200, 200, 0], [0, 200, 200]])
    import io

    from PIL import Image

    for s in scene_samples(scene, config, np.random.default_rng(3)):
        crop = np.asarray(Image.open(io.BytesIO(s.images[1]["bytes"])).convert("RGB")).astype(int)
        # the class whose colour is nearest each crop pixel, at the target grid, must equal the target
        seen = np.argmin(((crop[..., None, :] - palette[None, None]) ** 2).sum(-1), axis=-1)
        grid, report = decode(s.solution, (4, 4))
        assert report.valid
        assert (mask_to_grid(seen, 4) == grid).mean() >= 0.9  # JPEG may blur one cell's majority
        assert 0 <= s.x0 <= 128 - 32 and 0 <= s.y0 <= 128 - 32  # positions are in the 128 px window


def test_sources_take_their_own_configs(labelled_folder: Path, naip_folder: Path, tmp_path: Path) -> None:
    a = SampleConfig(patch=64, grid=8, per_scene=3, context_size=64)
    b = SampleConfig(patch=64, grid=8, per_scene=5, context_size=64, window=512, min_labelled=0.5)
    with pytest.raises(InputError, match="share patch"):
        write_samples([labelled_folder, naip_folder], tmp_path / "x", [a, b])
    b = SampleConfig(**{**b.__dict__, "window": None})
    with pytest.raises(InputError, match="one per source"):
        write_samples([labelled_folder, naip_folder], tmp_path / "y", [a])
    counts = write_samples([labelled_folder, naip_folder], tmp_path / "z", [a, b])
    assert counts["train"] == 2 * 3 + 3 * 5
    ds = load_samples(tmp_path / "z")
    assert len(ds) == 21 and len(list_scenes(naip_folder)) == 3


def test_neighbours_share_names_the_true_edge_cells(
    labelled_folder: Path, naip_folder: Path, tmp_path: Path
) -> None:
    plain = SampleConfig(patch=64, grid=8, per_scene=40, context_size=64)
    told = SampleConfig(**{**plain.__dict__, "neighbours": 0.5})
    ref = list_scenes(labelled_folder)[0]
    scene = ref.load()
    rng = np.random.default_rng(0)
    samples = scene_samples(scene, told, rng)
    texts = [s.prompt[0]["content"][1]["text"] for s in samples]
    named = [t for t in texts if "Cells outside it" in t]
    assert 8 <= len(named) <= 32  # about half
    # the named cells are the truth's, one cell deep along each side
    s = next(s for s, t in zip(samples, texts, strict=True) if "Cells outside it" in t)
    assert truth_edges(scene.labels.semantic, s.x0, s.y0, 64, 8)[0] in texts[samples.index(s)]
    # sources may differ in the share (none for sparse labels); the folder's format names neighbours
    write_samples([labelled_folder, naip_folder], tmp_path / "z", [told, plain])
    meta = json.loads((tmp_path / "z" / "samples.json").read_text())
    assert meta["config"]["neighbours"] == 0.5
