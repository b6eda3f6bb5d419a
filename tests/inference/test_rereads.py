"""Seam re-reads: which offset patches are chosen, what they write back, and the second engine call."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest

from magseg.codec import encode
from magseg.decoding import check_share
from magseg.errors import InputError
from magseg.format import ModelFormat
from magseg.inference.predict import predict_scene, predict_scenes
from magseg.inference.rereads import (
    Reread,
    candidates,
    choose_rereads,
    merge_rereads,
    merge_scored,
    reread_rows,
)
from magseg.model.generate import Request, Scored

ORIGINS = [(0, 0), (64, 0), (0, 64), (64, 64)]  # a 128 px scene of 64 px patches


def test_candidates_put_each_seam_through_a_patch_middle() -> None:
    found = candidates(ORIGINS, 64, 8, (128, 128))
    assert set(found) == {
        Reread(32, 0, 64, None),
        Reread(32, 64, 64, None),
        Reread(0, 32, None, 64),
        Reread(64, 32, None, 64),
        Reread(32, 32, 64, 64),  # the crossing
    }
    assert candidates([(0, 0)], 64, 8, (64, 64)) == []  # one patch: no seam


def _strip(rows: slice) -> np.ndarray:
    """Field everywhere; trees along the left of the vertical seam in ``rows`` of the top-left patch."""
    semantic = np.ones((128, 128), dtype=np.uint8)
    semantic[rows, 56:64] = 2
    return semantic


def test_choose_rereads_covers_the_most_disagreement_first() -> None:
    semantic = _strip(slice(0, 64))
    assert choose_rereads(semantic, ORIGINS, 64, 8, 0.25) == [Reread(32, 0, 64, None)]
    # with room for more, the next pick covers what is still open (8 px of the horizontal seam under the
    # strip: the crossing covers them too, the earlier candidate wins the tie); never seams that agree
    assert choose_rereads(semantic, ORIGINS, 64, 8, 1.0) == [Reread(32, 0, 64, None), Reread(0, 32, None, 64)]
    assert choose_rereads(np.ones((128, 128), np.uint8), ORIGINS, 64, 8, 1.0) == []
    assert choose_rereads(semantic, ORIGINS, 64, 8, 0.0) == []


def test_merge_rewrites_only_the_rows_that_disagreed_near_the_seam() -> None:
    semantic = _strip(slice(0, 32))  # the first four cell rows disagree across x = 64
    reread = Reread(32, 0, 64, None)
    grid = np.full((8, 8), 2, dtype=np.uint8)  # trees, as the left patch wrote
    conf = np.ones((128, 128), dtype=np.float32)
    out, values = merge_rereads(semantic, [reread], [grid], 64, [np.full((8, 8), 0.5, np.float32)], conf)
    assert (out[:32, 48:80] == 2).all()  # a quarter patch each side of the seam
    assert (out[:32, :48] == semantic[:32, :48]).all() and (out[:32, 80:] == 1).all()
    assert (out[32:] == semantic[32:]).all()  # rows that agreed keep the first pass
    assert values is not None and (values[:32, 48:80] == 0.5).all() and (values[32:] == 1).all()
    assert (semantic[:32, 56:64] == 2).all()  # the input is not changed


def test_merge_erases_an_object_only_with_more_probable_tokens() -> None:
    semantic = _strip(slice(0, 64))  # trees at x 56..64 in the top-left patch
    reread = Reread(32, 0, 64, None)
    field = np.ones((8, 8), dtype=np.uint8)  # the re-read sees no trees
    first = np.full((128, 128), 0.8, dtype=np.float32)
    unsure = merge_rereads(semantic, [reread], [field], 64, [np.full((8, 8), 0.6, np.float32)], first)[0]
    assert (unsure == semantic).all()  # less sure than the first pass: the trees stay
    sure = merge_rereads(semantic, [reread], [field], 64, [np.full((8, 8), 0.9, np.float32)], first)[0]
    assert (sure[:64, 48:80] == 1).all()
    assert (merge_rereads(semantic, [reread], [field], 64)[0] == semantic).all()  # no probabilities: kept


def test_share_out_of_range_is_an_input_error() -> None:
    assert check_share(0.2) == 0.2
    for bad in (-0.1, 5):
        with pytest.raises(InputError, match="re-read share"):
            check_share(bad)


class _Boxes:
    """An engine whose answer depends on where the patch is: tree left of x = 64, field right of it, and
    tree for any patch not on the grid (a re-read); records each call's batch size."""

    def __init__(self, side: int = 128) -> None:
        self.side = side
        self.batches: list[int] = []

    def generate(self, batch: Sequence[Request]) -> list[str]:
        self.batches.append(len(batch))
        out = []
        for _, messages in batch:
            box = re.search(r"<box>(\d+),(\d+),", messages[0]["content"][1]["text"])
            assert box is not None
            x0, y0 = (round(int(v) * self.side / 1000) for v in box.groups())
            label = 2 if x0 % 64 or y0 % 64 or x0 < 64 else 1
            out.append(encode(np.full((8, 8), label, dtype=np.int64)))
        return out


def test_predict_scene_rereads_the_disagreeing_seam_in_a_second_call() -> None:
    image = np.random.default_rng(0).integers(0, 255, (3, 128, 128), dtype=np.uint8)
    config = ModelFormat(patch=64, grid=8, context_size=64)
    plain = predict_scene(image, _Boxes(), config)
    assert (plain.semantic[:, :64] == 2).all() and (plain.semantic[:, 64:] == 1).all()
    engine = _Boxes()
    pred = predict_scene(image, engine, config, rereads=0.5)
    assert engine.batches == [4, 2]  # the grid, then its re-reads in one call
    assert pred.reread_origins == [(32, 0), (32, 64)] and pred.n_patches == 4
    assert (pred.semantic[:, :80] == 2).all() and (pred.semantic[:, 80:] == 1).all()  # the band's half
    assert pred.origins == plain.origins and pred.texts == plain.texts  # the grid's own answers kept
    # scenes batched together get what each gets alone, re-reads included
    both = predict_scenes([image, image[:, ::-1].copy()], _Boxes(), config, rereads=0.5)
    assert (both[0].semantic == pred.semantic).all() and both[0].reread_origins == pred.reread_origins


def test_reread_rows_are_the_last_cell_row_a_merge_can_take() -> None:
    semantic = _strip(slice(0, 24))  # the first three cell rows disagree across x = 64
    vertical, horizontal = Reread(32, 0, 64, None), Reread(0, 32, None, 64)
    semantic[56:64, 0:8] = 2  # and the first cell column across y = 64
    assert reread_rows(semantic, [vertical, horizontal], 64, 8) == [3, 6]  # the band: rows 2..5


def test_merge_reads_only_the_rows_it_asked_for() -> None:
    """A completion cut after its rows (an engine that stopped) merges as the whole one does."""
    semantic = _strip(slice(0, 24))
    reread = Reread(32, 0, 64, None)
    text = encode(np.full((8, 8), 2, dtype=np.int64))
    cut = "\n".join(text.split("\n")[:3]) + "\n"
    spans = lambda t: tuple((i + 1, 0.9) for i in range(len(t)))  # noqa: E731
    conf = np.full((128, 128), 0.5, dtype=np.float32)
    whole = merge_scored(semantic, conf, [reread], [Scored(text, 40, spans(text))], 64, 8)
    part = merge_scored(semantic, conf, [reread], [Scored(cut, 15, spans(cut))], 64, 8)
    assert (whole[0] == part[0]).all() and (part[0][:24, 48:80] == 2).all()
    assert whole[1] is not None and part[1] is not None and (whole[1] == part[1]).all()
    assert np.allclose(part[1][:24, 48:80], 0.9) and (part[0][24:] == semantic[24:]).all()


def test_merge_writes_no_object_the_first_pass_wrote_nowhere_in_the_window() -> None:
    semantic = _strip(slice(0, 64))  # trees left of the seam, field right of it
    reread = Reread(32, 0, 64, None)
    pond = np.full((8, 8), 4, dtype=np.uint8)  # the re-read sees a pond neither patch wrote
    assert (merge_rereads(semantic, [reread], [pond], 64)[0] == semantic).all()
    trees = np.full((8, 8), 2, dtype=np.uint8)  # trees the left patch wrote: they may spread over the seam
    assert (merge_rereads(semantic, [reread], [trees], 64)[0][:64, 48:80] == 2).all()
