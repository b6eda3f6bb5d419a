"""Tests of the RRLE codec: exact format, round trips, and a decoder that repairs untrusted text."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from magseg.classes import WELL
from magseg.codec import CLASSES, GRID_METHODS, cell_scores, decode, encode, grid_to_mask, mask_to_grid


def test_encode_matches_text4seg_example() -> None:
    labels = ("others", "horse")
    grid = np.array([[0, 0, 0, 0], [0, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])
    assert encode(grid, labels) == "others *4\n others *1| horse *3\n horse *2| others *2\n others *4\n"


@settings(max_examples=300, deadline=None)
@given(
    arrays(
        np.int64,
        st.tuples(st.integers(1, 24), st.integers(1, 24)),
        elements=st.integers(0, len(CLASSES) - 1),
    )
)
def test_round_trip_is_exact(grid: np.ndarray) -> None:
    out, report = decode(encode(grid), grid.shape)
    np.testing.assert_array_equal(out, grid)
    assert report.valid and report.rows_parsed == grid.shape[0]


def test_final_newline_is_optional() -> None:
    grid = np.array([[1, 1, 2], [0, 0, 0]])
    out, report = decode(encode(grid).rstrip("\n"), grid.shape)
    np.testing.assert_array_equal(out, grid)
    assert report.valid


def test_one_bad_row_keeps_the_good_ones() -> None:
    grid = np.array([[1, 1, 1, 1], [2, 2, 0, 0], [1, 1, 1, 1]])
    rows = encode(grid).split("\n ")
    rows[1] = "tree *2| zebra *2"  # unknown label -> background, the row keeps its width
    out, report = decode("\n ".join(rows), grid.shape)
    np.testing.assert_array_equal(out, grid)
    assert report.unknown_labels == 1 and report.repairs == 1


def test_short_long_missing_extra_rows() -> None:
    text = "field *2\n field *9\n tree *4\n pond *4\n well *4\n"
    out, report = decode(text, (3, 4))
    np.testing.assert_array_equal(out[0], [1, 1, 1, 1])  # short row padded with its last label
    np.testing.assert_array_equal(out[1], [1, 1, 1, 1])  # long row truncated
    assert report.short_rows == 1 and report.long_rows == 1 and report.extra_rows == 2
    out, report = decode("field *4\n tree *4", (4, 4))
    np.testing.assert_array_equal(out[2:], [[2] * 4, [2] * 4])  # missing rows repeat the last row
    assert report.missing_rows == 2


def test_garbage_between_rows_and_trailing_text() -> None:
    text = "field *4\n Sure! here it is\n tree *4\n<end_of_turn> thanks"
    out, report = decode(text, (2, 4))
    np.testing.assert_array_equal(out, [[1] * 4, [2] * 4])
    assert report.garbage_lines == 1 and report.trailing_text == 1


def test_missing_count_takes_the_rest_of_the_row() -> None:
    out, report = decode("field *1| tree *| pond *1", (1, 6))
    np.testing.assert_array_equal(out, [[1, 2, 2, 2, 2, 4]])
    assert report.bad_counts == 1


def test_empty_text_is_all_background() -> None:
    out, report = decode("", (3, 5))
    assert out.shape == (3, 5) and not out.any() and report.empty and not report.valid


def _mutate(text: str, rng: random.Random) -> str:
    chars = list(text)
    alphabet = "| *\n0123456789abcdefghijklmnopqrstuvwxyz<>-" + "".join(CLASSES)
    for _ in range(rng.randint(1, 8)):
        op = rng.random()
        pos = rng.randrange(len(chars) + 1)
        if op < 0.35 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.7:
            chars.insert(pos, rng.choice(alphabet))
        elif chars:
            a = rng.randrange(len(chars))
            b = min(len(chars), a + rng.randint(1, 20))
            chars[a:b] = list(rng.choice(["", "field *9999", "\n\n", "| |", " *-3", "tree", "🌾", "\x00"]))
    return "".join(chars)


def test_fuzz_never_raises_and_shape_is_right() -> None:
    rng = random.Random(0)
    np_rng = np.random.default_rng(0)
    for i in range(10_000):
        h, w = rng.randint(1, 16), rng.randint(1, 16)
        grid = np_rng.integers(0, len(CLASSES), size=(h, w))
        if i % 3 == 0:  # smooth grids resemble real masks (few runs per row)
            grid = np.repeat(np_rng.integers(0, len(CLASSES), size=(h, 1)), w, axis=1)
        text = _mutate(encode(grid), rng)
        shape = (h + rng.randint(-1, 1) or 1, w + rng.randint(-1, 1) or 1)
        out, report = decode(text, shape)
        assert out.shape == shape
        assert out.min() >= 0 and out.max() < len(CLASSES)
        assert report.repairs >= 0


@pytest.mark.parametrize("method", GRID_METHODS)
def test_mask_grid_round_trip_on_aligned_cells(method: str) -> None:
    grid = np.random.default_rng(1).integers(0, len(CLASSES), size=(8, 8))
    mask = grid_to_mask(grid, 64)
    assert mask.shape == (64, 64)
    np.testing.assert_array_equal(mask_to_grid(mask, 8, method=method), grid)  # type: ignore[arg-type]


def test_majority_keeps_the_dominant_class() -> None:
    mask = np.zeros((4, 4), dtype=int)
    mask[:3, :3] = 1  # 9 of 16 pixels are field
    assert mask_to_grid(mask, 1).item() == 1
    assert mask_to_grid(mask, 4).tolist() == mask.tolist()  # g = p keeps full resolution


def test_weighted_grid_keeps_a_well_smaller_than_its_cell() -> None:
    mask = np.ones((8, 8), dtype=int)  # one 8 px cell of field ...
    mask[2:7, 2:7] = WELL  # ... holding a 5 x 5 px well: 25 of 64 pixels
    assert mask_to_grid(mask, 1).item() == 1  # a majority vote loses the well
    assert mask_to_grid(mask, 1, method="weighted").item() == WELL  # its 25 pixels count 75 against 39
    mask[2:7, 2:4] = 1  # a 5 x 3 px well (15 px, 45 votes) loses to 49 px of field
    assert mask_to_grid(mask, 1, method="weighted").item() == 1
    with pytest.raises(ValueError, match="grid method"):
        mask_to_grid(mask, 1, method="biggest")


def test_encode_refuses_bad_grids() -> None:
    with pytest.raises(ValueError, match="class ids"):
        encode(np.array([[0, 9]]))
    with pytest.raises(ValueError, match="2-D"):
        encode(np.zeros((2, 2, 2), dtype=int))


def _tokens_per_char(text: str, probs: dict[int, float]) -> list[tuple[int, float]]:
    """One token per character, probability 1 unless given by character offset."""
    return [(i + 1, probs.get(i, 1.0)) for i in range(len(text))]


def test_cell_scores_give_each_run_its_least_sure_token() -> None:
    grid = np.array([[1, 1, 2, 2], [0, 0, 0, 0]])
    text = encode(grid)
    shaky = text.index("*2|") + 1  # the count of the first run of row 0
    scores = cell_scores(text, _tokens_per_char(text, {shaky: 0.3}), grid.shape, valid=True)
    assert scores.shape == grid.shape and scores.dtype == np.float32
    np.testing.assert_allclose(scores, [[0.3, 0.3, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    # a multi-character token spanning a separator counts for the runs on both sides
    assert text.index("tree") < 14 < text.index("\n")  # token 1 ends inside the label-count of "tree"
    both = cell_scores(text, [(14, 0.9), (len(text), 0.6)], grid.shape, valid=True)
    np.testing.assert_allclose(both, [[0.9, 0.9, 0.6, 0.6], [0.6, 0.6, 0.6, 0.6]])


def test_cell_scores_of_repaired_text_are_the_lowest() -> None:
    grid = np.array([[1, 1], [2, 2]])
    text = encode(grid)
    scores = cell_scores(text, _tokens_per_char(text, {0: 0.2, 3: 0.7}), grid.shape, valid=False)
    np.testing.assert_allclose(scores, np.full(grid.shape, 0.2))
    assert cell_scores("", [], (2, 3), valid=False).shape == (2, 3)
