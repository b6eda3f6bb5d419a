"""Tests of scene inference: the training prompt format, batching, decoding, stitching and token counts."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from magseg.codec import encode, mask_to_grid
from magseg.errors import InputError
from magseg.inference import (
    CountingHFEngine,
    ModelFormat,
    Predictor,
    patch_origins,
    predict_scene,
    scene_requests,
    stitch_grids,
    token_counts,
)
from magseg.model.generate import HFEngine, Request, render_prompts
from magseg.samples import SampleConfig, scene_samples
from magseg.sources import list_scenes

MAX_NEW = 6  # a random model never stops on its own: keep generation short


class FixedRng:
    """Stands in for numpy's generator in scene_samples: hands out chosen top-left corners."""

    def __init__(self, values: Sequence[int]) -> None:
        self.values = list(values)

    def integers(self, low: int, high: int) -> int:
        value = self.values.pop(0)
        assert low <= value < high
        return value


class OracleEngine:
    """An engine that answers each request with the given RRLE texts, in order (no token ids)."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.seen = 0

    def generate(self, batch: Sequence[Request]) -> list[str]:
        self.seen += len(batch)
        return self.texts[: len(batch)]


def test_patch_origins_tile_and_stay_inside() -> None:
    assert patch_origins(256, 256, 64) == [(x, y) for y in range(0, 256, 64) for x in range(0, 256, 64)]
    origins = patch_origins(150, 200, 64)
    assert len(origins) == 3 * 4
    assert all(0 <= x <= 200 - 64 and 0 <= y <= 150 - 64 for x, y in origins)
    covered = np.zeros((150, 200), bool)
    for x, y in origins:
        covered[y : y + 64, x : x + 64] = True
    assert covered.all()
    with pytest.raises(InputError, match="smaller than the patch"):
        patch_origins(32, 200, 64)


def test_stitch_grids_places_every_patch_later_wins() -> None:
    origins = patch_origins(100, 100, 64)  # (0,0), (36,0), (0,36), (36,36)
    grids = [np.full((8, 8), k + 1) for k in range(4)]
    sem = stitch_grids(grids, origins, (100, 100), 64)
    assert sem.shape == (100, 100) and sem.dtype == np.uint8
    assert sem[0, 0] == 1 and sem[0, 99] == 2 and sem[99, 0] == 3 and sem[50, 50] == 4
    assert sem[0, 40] == 2  # overlap of patches 1 and 2: the later one
    exact = stitch_grids(grids, patch_origins(128, 128, 64), (128, 128), 64)
    assert exact[127, 127] == 4 and exact[0, 127] == 2


def test_requests_are_the_training_samples(synth_folder: Path) -> None:
    scene = list_scenes(synth_folder)[0].load()
    config = SampleConfig(patch=64, grid=8, per_scene=1, context_size=64, crop_size=32)
    sample = scene_samples(scene, config, FixedRng([64, 128]))[0]  # type: ignore[arg-type]
    specs, requests = scene_requests(scene.image, ModelFormat.of(config))
    k = next(i for i, s in enumerate(specs) if (s.x0, s.y0) == (64, 128))
    images, prompt = requests[k]
    assert prompt == sample.prompt
    assert len(images) == len(sample.images) == 2
    for got, stored in zip(images, sample.images, strict=True):
        want = np.asarray(Image.open(BytesIO(stored["bytes"])))
        np.testing.assert_array_equal(np.asarray(got), want)  # the same JPEG pixels as in training
    _, no_crop = scene_requests(scene.image, ModelFormat(with_crop=False))
    assert len(no_crop[0][0]) == 1 and len(no_crop) == 16


def test_oracle_text_decodes_and_stitches_to_the_truth_grid(synth_folder: Path) -> None:
    scene = list_scenes(synth_folder)[0].load()
    config = ModelFormat(patch=64, grid=8, context_size=32)
    sem = scene.labels.semantic
    texts = [encode(mask_to_grid(sem[y : y + 64, x : x + 64], 8)) for x, y in patch_origins(256, 256, 64)]
    engine = OracleEngine(texts)
    pred = predict_scene(scene.image, engine, config)
    assert engine.seen == 16  # all of the scene's patches in one call
    assert pred.valid_rate == 1.0 and pred.n_patches == 16
    assert pred.tokens == [0] * 16 and not pred.tokens_measured  # no processor to count with
    # each 8 px cell holds its patch's majority class: most pixels agree with the truth
    assert pred.semantic.shape == sem.shape
    assert (pred.semantic == sem).mean() > 0.8
    broken = predict_scene(scene.image, OracleEngine(["field *8"] * 16), config)
    assert broken.valid_rate == 0.0 and (broken.semantic == 1).all()


def test_token_counts_stop_at_the_first_stop_id() -> None:
    ids = torch.tensor([[5, 6, 1, 0, 0], [5, 5, 5, 5, 5], [2, 1, 1, 0, 0]])
    assert token_counts(ids, [1, 2]) == [3, 5, 1]
    assert token_counts(ids[:, :0], [1]) == [0, 0, 0]


def test_predict_scene_with_a_tiny_model(model_dir: Path, synth_folder: Path) -> None:
    scene = list_scenes(synth_folder)[1].load()
    predictor = Predictor.from_pretrained(model_dir, max_new_tokens=MAX_NEW, batch_size=16)
    assert predictor.config.context_size == 64  # read from the model's card
    pred = predictor.predict(scene.image)
    assert pred.semantic.shape == scene.shape and pred.semantic.max() < 6
    assert pred.n_patches == 16 == len(pred.reports) == len(pred.texts) == len(pred.tokens)
    assert pred.tokens_measured and all(1 <= n <= MAX_NEW for n in pred.tokens)
    assert set(pred.timings) == {"prepare_s", "generate_s", "decode_s", "total_s"}
    assert pred.patches_per_s > 0
    # counting does not change the text: the plain engine writes the same completions
    _, requests = scene_requests(scene.image, predictor.config)
    engine = predictor.engine
    assert isinstance(engine, CountingHFEngine)
    plain = HFEngine(engine.model, engine.processor, max_new_tokens=MAX_NEW, batch_size=16)
    assert plain.generate(requests) == pred.texts


def test_a_scene_larger_than_the_window_is_seen_window_by_window(synth_folder: Path) -> None:
    scene = list_scenes(synth_folder)[0].load()
    size = scene.shape[0]
    half = size // 2
    config = ModelFormat(patch=64, grid=8, context_size=64, window=half)
    specs, requests = scene_requests(scene.image, config)
    assert [(s.x0, s.y0) for s in specs] == patch_origins(size, size, 64)  # whole-scene positions kept
    # a patch of the bottom-right window is prompted exactly as the same patch of that window as a scene
    quarter = scene.image[:, half:, half:]
    k = next(i for i, s in enumerate(specs) if (s.x0, s.y0) == (half + 64, half))
    _, alone = scene_requests(np.ascontiguousarray(quarter), ModelFormat(patch=64, grid=8, context_size=64))
    assert requests[k][1] == alone[1][1]
    for got, want in zip(requests[k][0], alone[1][0], strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    contexts = {id(r[0][0]) for r in requests}
    assert len(contexts) == 4  # one context image per window, shared by its patches
    with pytest.raises(InputError, match="multiple of the patch"):
        ModelFormat(patch=64, window=100).check()


@pytest.fixture(scope="module")
def two_scenes(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    from magseg.synth import write_dataset

    root = write_dataset(tmp_path_factory.mktemp("two") / "synth", 2, 256, 0.5, seed=31)
    return [ref.load().image for ref in list_scenes(root)]


def test_shared_prefix_keeps_every_output_and_prefills_once(two_scenes: list[np.ndarray]) -> None:
    """The bundled model (a trained one: real, varied RRLE) with and without prefix sharing; the reference
    engine (hf-generate: transformers' generate, nothing shared) writes the same tokens."""
    from magseg.bundled import BUNDLED_MODEL

    # the scene's patches alone: seam re-reads are a second engine call with prefixes of their own
    plain = Predictor.for_engine(BUNDLED_MODEL, "hf-generate", batch_size=16, rereads=0)
    assert not plain.engine.share_prefix and not plain.engine.lean
    shared = Predictor.for_engine(BUNDLED_MODEL, "hf", batch_size=16, rereads=0)
    with pytest.raises(InputError, match="hf-generate"):
        Predictor.for_engine(BUNDLED_MODEL, "hf-fast")
    for image in two_scenes:
        assert shared.predict(image).texts == plain.predict(image).texts
    prompt, prefill = shared.engine.prompt_tokens, shared.engine.prefill_tokens
    assert plain.engine.prefill_tokens >= plain.engine.prompt_tokens == prompt  # padding costs too
    # the patch-specific part of a prompt: from its box text on (crop image included)
    specs, requests = scene_requests(two_scenes[0], shared.config)
    tok = shared.processor.tokenizer
    rendered = render_prompts(shared.processor, requests[:1])
    text = tok.decode(rendered["input_ids"][0])
    specific = len(tok(text[text.index("Patch <box>") :], add_special_tokens=False)["input_ids"])
    assert prefill / len(specs) / 2 <= specific * 1.1, (prefill, specific)
    assert prefill < 0.6 * prompt


def test_scenes_batched_together_give_what_each_gets_alone(two_scenes: list[np.ndarray]) -> None:
    from magseg.bundled import BUNDLED_MODEL

    predictor = Predictor.from_pretrained(BUNDLED_MODEL, batch_size=24)  # batches straddle the two scenes
    together = predictor.predict_many(two_scenes)
    alone = [predictor.predict(image) for image in two_scenes]
    assert [p.texts for p in together] == [p.texts for p in alone]
    assert all(np.array_equal(a.semantic, b.semantic) for a, b in zip(together, alone, strict=True))


def test_a_bfloat16_predictor_writes_near_the_same_masks(two_scenes: list[np.ndarray]) -> None:
    """Cast weights (--dtype): the model runs in that dtype and writes valid, nearly the same masks."""
    import torch

    from magseg.bundled import BUNDLED_MODEL

    full = Predictor.from_pretrained(BUNDLED_MODEL, batch_size=64)
    half = Predictor.for_engine(BUNDLED_MODEL, "hf", batch_size=64, dtype="bfloat16")
    assert half.engine.model.dtype == torch.bfloat16 and full.engine.model.dtype == torch.float32
    a, b = full.predict(two_scenes[0]), half.predict(two_scenes[0])
    assert b.valid_rate == 1.0 and b.confidence is not None
    assert float((a.semantic == b.semantic).mean()) > 0.9
    with pytest.raises(InputError, match="bfloat16"):
        Predictor.from_pretrained(BUNDLED_MODEL, dtype="fp8")
