"""Cross-patch context: the checkerboard's two passes, the neighbours' edge cells, and their prompts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from magseg.codec import encode
from magseg.format import ModelFormat
from magseg.inference.neighbours import first_pass, merge_passes, second_pass_edges
from magseg.inference.predict import predict_scene
from magseg.inference.requests import scene_requests
from magseg.model.generate import Request
from magseg.prompts import edge_text, patch_text
from magseg.samples.build import truth_edges


def test_checkerboard_colours_alternate_and_merge_back() -> None:
    origins = [(x, y) for y in (0, 64, 128) for x in (0, 64, 128)]
    first = first_pass(origins, 64)
    assert first == [True, False, True, False, True, False, True, False, True]
    assert merge_passes(first, list("ACEGI"), list("bdfh")) == list("AbCdEfGhI")
    with pytest.raises(ValueError):
        merge_passes(first, list("ACEGIK"), list("bdfh"))


def test_second_pass_reads_the_cells_its_neighbours_wrote() -> None:
    config = ModelFormat(patch=64, grid=4)
    origins = [(0, 0), (64, 0), (128, 0), (0, 64), (64, 64), (128, 64)]
    first = first_pass(origins, 64)  # (0,0) (128,0) (64,64) first
    grids = {
        (0, 0): np.array([[1, 1, 1, 2]] * 4),  # right column: 2 2 2 2 (tree)
        (128, 0): np.array([[3, 0, 0, 0]] * 4),  # left column: cloud
        (64, 64): np.array([[4, 4, 1, 1]] + [[0] * 4] * 3),  # top row: pond pond field field
    }
    texts = [encode(grids[o]) for o, f in zip(origins, first, strict=True) if f]
    edges = second_pass_edges(origins, first, texts, config)
    assert set(edges) == {(64, 0), (0, 64), (128, 64)}
    left, top, right, bottom = edges[(64, 0)]
    assert (left, top, right) == ("tree *4", "none", "cloud *4")
    assert bottom == "pond *2| field *2"
    assert edges[(0, 64)][:3] == ("none", "field *3| tree *1", "pond *1| others *3")


def test_truth_edges_match_what_neighbours_would_write() -> None:
    semantic = np.zeros((16, 16), dtype=np.int64)
    semantic[:, :4] = 2  # trees left of the patch at x0 = 4
    semantic[12:, :] = 1  # a field below it
    left, top, right, bottom = truth_edges(semantic, 4, 4, 8, 4)  # 2 px cells
    assert (left, top) == ("tree *4", "others *4") and bottom == "field *4"
    assert right == "others *4"
    assert truth_edges(semantic, 0, 0, 8, 4)[:2] == ("none", "none")  # at the mask's edge
    assert edge_text(None) == "none" and edge_text(np.array([1, 1, 0])) == "field *2| others *1"


class _Recorder:
    """An engine that answers "field" everywhere and records each batch's prompts."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def generate(self, batch: Sequence[Request]) -> list[str]:
        self.batches.append([messages[0]["content"][1]["text"] for _, messages in batch])
        return [encode(np.ones((8, 8), dtype=np.int64))] * len(batch)


def test_two_passes_through_one_engine() -> None:
    image = np.random.default_rng(0).integers(0, 255, (3, 192, 192), dtype=np.uint8)
    config = ModelFormat(patch=64, grid=8, context_size=64, neighbours=0.5)
    engine = _Recorder()
    pred = predict_scene(image, engine, config)
    assert [len(b) for b in engine.batches] == [5, 4]  # a 3 x 3 checkerboard
    assert all("Cells outside" not in t for t in engine.batches[0])
    assert all("left: field *8" in t or "left: none" in t for t in engine.batches[1])
    assert pred.n_patches == 9 and (pred.semantic == 1).all() and len(pred.texts) == 9
    # one pass, as before, for a model trained without neighbours
    plain = _Recorder()
    predict_scene(image, plain, ModelFormat(patch=64, grid=8, context_size=64))
    assert [len(b) for b in plain.batches] == [9]
    specs, _ = scene_requests(image, config, {(64, 0): ("none",) * 4})
    assert [(s.x0, s.y0) for s in specs] == [(64, 0)]
    assert "Cells outside it, left: none" in patch_text(
        specs[0].__class__(0, 0, 64, 192, 192, 8, ("none",) * 4)
    )
