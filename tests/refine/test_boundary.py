"""Boundary maps: the gradient fallback finds field edges; the SegFormer wrapper loads and predicts offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from magseg.errors import InputError
from magseg.refine import GradientBoundary, OrientedBoundary, SegformerBoundary, load_boundary_model


def two_field_image(h: int = 64, w: int = 64, edge: int = 29, seed: int = 0) -> np.ndarray:
    """Two flat fields of different brightness meeting at column ``edge``, with mild noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((3, h, w), dtype=np.float32)
    img[:, :, :edge] = np.array([90, 120, 60], dtype=np.float32)[:, None, None]
    img[:, :, edge:] = 170
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_gradient_boundary_peaks_on_the_field_edge() -> None:
    prob = GradientBoundary(sigma=1.5).predict(two_field_image(edge=29))
    assert prob.shape == (64, 64) and prob.dtype == np.float32
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    column_mean = prob.mean(axis=0)
    assert int(np.argmax(column_mean)) in (28, 29)
    # far from the edge the fields are flat: little boundary there
    assert column_mean[:20].max() < 0.3 and column_mean[40:].max() < 0.3
    assert column_mean[28:30].min() > 0.7  # the two columns either side of the edge


@pytest.mark.parametrize("model", [GradientBoundary(), OrientedBoundary()], ids=["sobel", "oriented"])
def test_boundary_of_a_flat_image_is_zero(model: GradientBoundary | OrientedBoundary) -> None:
    prob = model.predict(np.full((3, 16, 16), 100, dtype=np.uint8))
    assert prob.shape == (16, 16) and not prob.any()


@pytest.mark.parametrize("model", [GradientBoundary(), OrientedBoundary()], ids=["sobel", "oriented"])
@pytest.mark.parametrize("shape", [(16, 16), (1, 16, 16), (4, 16, 16), (3, 0, 5)])
def test_boundary_rejects_non_rgb(model: GradientBoundary | OrientedBoundary, shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError):
        model.predict(np.zeros(shape, dtype=np.uint8))


def test_gradient_smoothing_is_in_metres() -> None:
    assert GradientBoundary(sigma_m=2.0, gsd=0.5).sigma == 4.0
    assert GradientBoundary(sigma=1.5, gsd=0.5).sigma == 1.5  # pixels override
    with pytest.raises(ValueError):
        GradientBoundary(gsd=0.0)


def rows_scene(size: int = 96, edge: int = 45, period: int = 2, seed: int = 0) -> np.ndarray:
    """Two fields with a faint colour step at column ``edge`` and strong crop rows 1 m apart at 0.5 m."""
    rng = np.random.default_rng(seed)
    img = np.empty((3, size, size), dtype=np.float32)
    img[:, :, :edge] = np.array([100, 130, 70], dtype=np.float32)[:, None, None]
    img[:, :, edge:] = np.array([112, 140, 74], dtype=np.float32)[:, None, None]  # ~5 % brighter
    rows = 25 * np.sin(2 * np.pi * (np.arange(size) + 0.25) / period)  # furrows: horizontal stripes
    img += rows[None, :, None] + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("angle", [0, 90])
def test_oriented_boundary_finds_a_faint_edge_among_crop_rows(angle: int) -> None:
    image = rows_scene()
    if angle:  # the same scene turned: the edge runs along rows, the furrows along columns
        image = np.ascontiguousarray(image.transpose(0, 2, 1))
    prob = OrientedBoundary(length_m=8.0, width_m=2.0, gsd=0.5).predict(image)
    assert prob.shape == (96, 96) and prob.dtype == np.float32 and 0 <= prob.min() <= prob.max() <= 1
    profile = (prob if not angle else prob.T)[16:80].mean(axis=0)
    interior = np.r_[10:35, 56:86]
    assert abs(int(np.argmax(profile[10:86])) + 10 - 45) <= 1
    # rows closer than the 2 m box cancel inside it; the 5 % colour step stands far above them
    assert profile[44:46].min() > 3 * profile[interior].mean()


def test_oriented_boundary_follows_a_diagonal_edge() -> None:
    yy, xx = np.mgrid[:80, :80]
    rng = np.random.default_rng(1)
    img = np.where(xx + yy < 80, 90.0, 150.0)[None].repeat(3, axis=0) + rng.normal(0, 4, (3, 80, 80))
    prob = OrientedBoundary(gsd=1.0).predict(np.clip(img, 0, 255).astype(np.uint8))
    on = np.abs(xx + yy - 79.5) <= 1.5
    away = np.abs(xx + yy - 79.5) >= 12
    inner = (xx > 8) & (xx < 72) & (yy > 8) & (yy < 72)  # clear of the image border
    assert prob[on & inner].mean() > 0.8 and prob[away & inner].mean() < 0.15


def test_oriented_boundary_sizes_are_in_metres() -> None:
    model = OrientedBoundary(length_m=8.0, width_m=2.0, gsd=0.5)
    assert (model.length, model.width) == (16, 4)
    with pytest.raises(ValueError):
        OrientedBoundary(gsd=-1.0)
    with pytest.raises(ValueError):
        OrientedBoundary(angles=0)


@pytest.fixture(scope="module")
def tiny_segformer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised one-label SegFormer saved with save_pretrained (safetensors), no download."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    config = SegformerConfig(
        num_labels=1,
        hidden_sizes=[8, 16, 24, 32],
        num_attention_heads=[1, 1, 1, 1],
        depths=[1, 1, 1, 1],
        decoder_hidden_size=16,
    )
    path = tmp_path_factory.mktemp("segformer")
    SegformerForSemanticSegmentation(config).save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps({"size": {"height": 64, "width": 64}}))
    return path


def test_segformer_boundary_returns_a_probability_map(tiny_segformer: Path) -> None:
    assert any(tiny_segformer.glob("*.safetensors"))
    model = load_boundary_model(tiny_segformer, device="cpu")
    assert isinstance(model, SegformerBoundary)
    assert model.resolution == 64  # read from preprocessor_config.json
    prob = model.predict(two_field_image(h=48, w=80))
    assert prob.shape == (48, 80) and prob.dtype == np.float32
    assert np.isfinite(prob).all() and prob.min() >= 0.0 and prob.max() <= 1.0
    assert prob.std() > 0  # upsampled logits, not a constant


def test_segformer_boundary_resolution_argument_wins(tiny_segformer: Path) -> None:
    model = SegformerBoundary(tiny_segformer, resolution=32, device="cpu")
    assert model.predict(two_field_image(h=20, w=30)).shape == (20, 30)


def with_processor(model: Path, dest: Path, **proc: object) -> Path:
    """A copy of a boundary model folder whose preprocessor_config.json gets ``proc`` on top."""
    import shutil

    shutil.copytree(model, dest)
    base = json.loads((model / "preprocessor_config.json").read_text())
    (dest / "preprocessor_config.json").write_text(json.dumps({**base, **proc}))
    return dest


def test_native_scale_boundary_model_sees_any_size_unresized(tiny_segformer: Path, tmp_path: Path) -> None:
    import torch
    import torch.nn.functional as F  # noqa: N812

    native = with_processor(tiny_segformer, tmp_path / "native", do_resize=False)
    model = SegformerBoundary(native, device="cpu")
    assert model.resolution is None
    # a 64 x 96 image goes through as it is: the model's own logits, upsampled by its stride of 4 only
    image = two_field_image(h=64, w=96)
    x = torch.from_numpy(image).float().div(255.0)[None]
    mean, std = torch.tensor(model.mean).view(1, 3, 1, 1), torch.tensor(model.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        logits = model.model(pixel_values=(x - mean) / std).logits
    want = torch.sigmoid(F.interpolate(logits, size=(64, 96), mode="bilinear", align_corners=False))[0, 0]
    np.testing.assert_allclose(model.predict(image), want.numpy(), atol=1e-5)
    assert model.predict(two_field_image(h=50, w=70)).shape == (50, 70)  # padded to 64 x 96, cropped back


def test_fused_boundary_is_the_pixelwise_max_of_model_and_fallback(
    tiny_segformer: Path, tmp_path: Path
) -> None:
    from magseg.refine import FusedBoundary, scene_boundary

    fused_dir = with_processor(tiny_segformer, tmp_path / "fused", fuse_image_fallback=True)
    plain, fused = SegformerBoundary(tiny_segformer, device="cpu"), SegformerBoundary(fused_dir, device="cpu")
    image = two_field_image()
    assert scene_boundary(plain, gsd=1.0) is plain  # a model that does not ask for fusion is used alone
    chosen = scene_boundary(fused, gsd=1.0, scale=20.0)
    assert isinstance(chosen, FusedBoundary)
    fallback = OrientedBoundary(gsd=1.0, scale=20.0).predict(image)
    np.testing.assert_allclose(chosen.predict(image), np.maximum(fused.predict(image), fallback), atol=1e-6)
    alone = scene_boundary(None, gsd=0.5)
    assert isinstance(alone, OrientedBoundary) and alone.length == 16  # no model: the fallback at the GSD


def test_a_boundary_model_carries_its_merge_threshold_into_refine(
    tiny_segformer: Path, tmp_path: Path
) -> None:
    from magseg.refine import scene_boundary

    asks = with_processor(tiny_segformer, tmp_path / "merge", fuse_image_fallback=True, merge_below=0.6)
    assert SegformerBoundary(tiny_segformer, device="cpu").merge_below == 0.0  # none written: no merging
    model = SegformerBoundary(asks, device="cpu")
    assert model.merge_below == 0.6
    assert scene_boundary(model, gsd=1.0).merge_below == 0.6  # fused with the fallback, still its own
    assert getattr(OrientedBoundary(gsd=1.0), "merge_below", 0.0) == 0.0


class WeakLine:
    """A boundary map with a weak line down the middle (above the marker threshold, under the merge one)."""

    def __init__(self, merge_below: float | None) -> None:
        if merge_below is not None:
            self.merge_below = merge_below

    def predict(self, image: np.ndarray) -> np.ndarray:
        prob = np.zeros(image.shape[1:], dtype=np.float32)
        prob[:, 19:21] = 0.4
        return prob


@pytest.mark.parametrize(
    ("asks", "given", "fields"), [(0.5, None, 1), (None, None, 2), (0.5, 0.0, 2), (None, 0.5, 1)]
)
def test_refine_merges_by_the_boundary_models_threshold_unless_told(
    asks: float | None, given: float | None, fields: int
) -> None:
    from magseg.classes import FIELD
    from magseg.refine import refine

    sem = np.full((40, 40), FIELD, dtype=np.uint8)
    image = np.zeros((3, 40, 40), dtype=np.uint8)
    result = refine(sem, image, model=WeakLine(asks), merge_below=given, gap_px=0, min_area_px=0)
    assert np.unique(result.instance[result.instance > 0]).size == fields


def test_boundary_choice_defaults_to_the_bundled_model(tmp_path: Path) -> None:
    from magseg.bundled import BUNDLED_BOUNDARY, boundary_choice

    assert boundary_choice("none") is None and boundary_choice("NONE") is None
    assert boundary_choice(tmp_path) == str(tmp_path)
    installed = (BUNDLED_BOUNDARY / "config.json").is_file()
    assert boundary_choice(None) == (str(BUNDLED_BOUNDARY) if installed else None)


def test_load_boundary_model_defaults_to_the_oriented_fallback() -> None:
    model = load_boundary_model(None, gsd=0.5)
    assert isinstance(model, OrientedBoundary) and model.length == 16 and model.width == 4


def test_load_boundary_model_refuses_missing_or_unsafe_weights(tmp_path: Path, tiny_segformer: Path) -> None:
    with pytest.raises(InputError, match="no such model directory"):
        load_boundary_model(tmp_path / "missing")
    only_config = tmp_path / "no_weights"
    only_config.mkdir()
    (only_config / "config.json").write_text((tiny_segformer / "config.json").read_text())
    with pytest.raises(InputError, match="safetensors"):
        load_boundary_model(only_config)


def test_image_scale_counts_only_the_imagery_of_a_window_over_its_edge() -> None:
    rng = np.random.default_rng(0)
    fields = np.kron(rng.integers(40, 220, (3, 8, 8)), np.ones((1, 16, 16))).astype(np.uint8)  # 128 px
    window = np.zeros((3, 128, 256), dtype=np.uint8)  # the right half hangs over the imagery's edge
    window[:, :, :128] = fields
    valid = np.zeros((128, 256), dtype=bool)
    valid[:, :128] = True
    fallback = OrientedBoundary(gsd=0.5)
    alone = fallback.image_scale(fields)
    assert fallback.image_scale(window) < 0.9 * alone  # the empty half pulls the percentile down
    assert fallback.image_scale(window, valid) == pytest.approx(alone, rel=0.1)
    assert fallback.image_scale(fields, np.ones((128, 128), bool)) == alone  # full coverage: as before
    assert fallback.image_scale(window, np.zeros((128, 256), bool)) == 0.0
