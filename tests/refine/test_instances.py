"""refine(): boundary markers + watershed split fields the coarse mask merges; every class pixel assigned."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from magseg.classes import FIELD, TREE, WELL
from magseg.codec import grid_to_mask, mask_to_grid
from magseg.errors import InputError
from magseg.refine import (
    GradientBoundary,
    merge_small_fragments,
    merge_weak_borders,
    refine,
    separate_instances,
    size_gaps,
    snap_semantic,
)


def fields_scene(h: int = 64, w: int = 96, edge: int = 45, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image of two fields meeting at column ``edge`` (inside rows 8..56, cols 4..92), and the true field ids."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), dtype=np.int32)
    truth[8:56, 4:edge] = 1
    truth[8:56, edge:92] = 2
    tone = np.array([60.0, 150.0, 210.0], dtype=np.float32)  # background, field 1, field 2
    img = tone[truth][None].repeat(3, axis=0) + rng.normal(0, 3, (3, h, w))
    return np.clip(img, 0, 255).astype(np.uint8), truth


def coarse(semantic: np.ndarray, cell: int = 8) -> np.ndarray:
    """The semantic mask through an RRLE grid of ``cell`` px cells, as the model writes it."""
    h, w = semantic.shape
    return grid_to_mask(mask_to_grid(semantic, (h // cell, w // cell)), (h, w)).astype(np.uint8)


def test_refine_splits_adjacent_fields_the_coarse_mask_merges() -> None:
    image, truth = fields_scene()
    sem = coarse(np.where(truth > 0, FIELD, 0))
    assert ndimage.label(sem == FIELD)[1] == 1  # one blob in the coarse mask
    result = refine(sem, image)
    ids = np.unique(result.instance[result.instance > 0])
    assert ids.size == 2
    # the split follows the image edge at column 45, not the 8-px cell grid (which would cut at 40 or 48)
    for k in (1, 2):
        true_k = truth == k
        best = max(
            np.logical_and(result.instance == i, true_k).sum()
            / np.logical_or(result.instance == i, true_k).sum()
            for i in ids
        )
        assert best > 0.8
    rows = result.instance[20:44]
    left, right = rows[:, 42], rows[:, 48]
    assert (left != right).all()


def test_refine_assigns_every_pixel_of_the_class() -> None:
    image, truth = fields_scene(seed=3)
    sem = coarse(np.where(truth > 0, FIELD, 0))
    result = refine(sem, image, min_area_px=0, gap_px=0)
    assert np.array_equal(result.instance > 0, sem == FIELD)
    assert np.array_equal(result.semantic, sem)
    assert result.instance.dtype == np.int32 and result.semantic.dtype == np.uint8


def test_refine_without_image_or_boundary_gives_connected_components() -> None:
    sem = np.zeros((20, 20), dtype=np.uint8)
    sem[2:8, 2:8] = FIELD
    sem[12:18, 12:18] = FIELD
    result = refine(sem)
    assert result.boundary is None
    assert np.unique(result.instance[result.instance > 0]).size == 2


def test_small_marker_fragments_merge_into_their_neighbour() -> None:
    sem = np.zeros((30, 30), dtype=np.uint8)
    sem[:, :] = FIELD
    prob = np.zeros((30, 30), dtype=np.float32)
    prob[:, 14] = 1.0  # a real edge splitting two fields
    prob[5:8, 3:6] = 1.0
    prob[6, 4] = 0.0  # a one-pixel hollow: a marker of its own
    result = refine(sem, boundary=prob, min_area_px=30, min_marker_px=1, gap_px=0)
    areas = np.bincount(result.instance.ravel())[1:]
    assert areas.size == 2 and areas.min() >= 30
    assert (result.instance > 0).all()


def test_isolated_small_fragment_is_dropped_to_background() -> None:
    sem = np.zeros((30, 30), dtype=np.uint8)
    sem[2:20, 2:20] = FIELD
    sem[25:28, 25:28] = FIELD  # 9 px, touching no other field
    result = refine(sem, boundary=np.zeros((30, 30), np.float32), min_area_px=20)
    assert (result.instance[25:28, 25:28] == 0).all()
    assert (result.semantic[25:28, 25:28] == 0).all()
    assert (result.instance[2:20, 2:20] > 0).all()


def test_other_classes_are_components_with_ids_unique_across_classes() -> None:
    sem = np.zeros((30, 30), dtype=np.uint8)
    sem[:10, :] = FIELD
    sem[15:20, 2:6] = TREE
    sem[15:20, 20:26] = TREE
    sem[27, 27] = WELL  # one pixel: real for a well, kept despite min_area_px
    result = refine(sem, boundary=np.zeros((30, 30), np.float32), min_area_px=20)
    tree_ids = set(np.unique(result.instance[sem == TREE]).tolist())
    field_ids = set(np.unique(result.instance[sem == FIELD]).tolist())
    well_ids = set(np.unique(result.instance[sem == WELL]).tolist())
    assert len(tree_ids) == 2 and len(field_ids) == 1 and len(well_ids) == 1
    assert not (tree_ids & field_ids) and not (well_ids & (tree_ids | field_ids)) and 0 not in well_ids


def test_classes_argument_limits_the_output() -> None:
    sem = np.zeros((10, 10), dtype=np.uint8)
    sem[:5] = FIELD
    sem[6:] = TREE
    result = refine(sem, classes=[TREE])
    assert (result.instance[sem == FIELD] == 0).all() and (result.semantic[sem == FIELD] == 0).all()
    assert (result.instance[sem == TREE] > 0).all()


def test_merge_small_fragments_picks_the_longest_border() -> None:
    labels = np.zeros((10, 12), dtype=np.int64)
    labels[:, :5] = 1
    labels[:, 7:] = 2
    labels[2:9, 5:7] = 3  # 14 px: borders field 1 along 7 px ... and field 2 along 7 px
    labels[2:9, 5] = 3
    labels[0:9, 6] = 3  # column 6 reaches further up: longer border with field 2
    out = merge_small_fragments(labels, min_area_px=20)
    assert set(np.unique(out).tolist()) == {0, 1, 2}
    assert (out[labels == 3] == 2).all()
    assert (out[labels == 1] == 1).all()


def test_merge_small_fragments_handles_chains_of_small_pieces() -> None:
    labels = np.zeros((4, 20), dtype=np.int64)
    for k in range(5):
        labels[:, 4 * k : 4 * k + 4] = k + 1  # five 16-px strips side by side, all small
    out = merge_small_fragments(labels, min_area_px=40)
    areas = np.bincount(out.ravel())[1:]
    areas = areas[areas > 0]
    assert areas.min() >= 40 and areas.sum() == 80


def test_snap_semantic_moves_blocky_edges_onto_the_image_edge() -> None:
    image, truth = fields_scene(edge=45)
    true_sem = np.where(truth > 0, FIELD, 0).astype(np.uint8)
    true_sem[:, :] = 0
    true_sem[:, :37] = FIELD  # a field whose edge (col 37) falls inside an 8-px cell
    img = np.where(true_sem == FIELD, 150, 40).astype(np.uint8)[None].repeat(3, axis=0)
    blocky = coarse(true_sem)
    prob = GradientBoundary(sigma=1.0).predict(img)
    snapped = snap_semantic(blocky, prob, snap_px=6)
    assert (snapped != true_sem).sum() < (blocky != true_sem).sum() / 4
    result = refine(blocky, img, snap_px=6)
    assert (result.semantic != true_sem).sum() < (blocky != true_sem).sum() / 4


def test_snap_semantic_keeps_objects_thinner_than_the_band() -> None:
    sem = np.zeros((20, 20), dtype=np.uint8)
    sem[9:11, 9:11] = WELL
    snapped = snap_semantic(sem, np.zeros((20, 20), np.float32), snap_px=4)
    assert (snapped == WELL).sum() >= 4


@pytest.mark.parametrize(
    ("semantic", "kwargs"),
    [
        (np.zeros((4, 4, 2), dtype=np.uint8), {}),
        (np.full((4, 4), 9, dtype=np.uint8), {}),
        (np.zeros((4, 4), dtype=np.float32), {}),
        (np.zeros((4, 4), dtype=np.uint8), {"boundary": np.zeros((5, 4), np.float32)}),
        (np.zeros((4, 4), dtype=np.uint8), {"image": np.zeros((3, 4, 5), np.uint8)}),
    ],
)
def test_refine_rejects_bad_inputs(semantic: np.ndarray, kwargs: dict) -> None:
    with pytest.raises(InputError):
        refine(semantic, **kwargs)


def test_isolated_pieces_are_kept_above_min_isolated_px() -> None:
    labels = np.zeros((20, 20), dtype=np.int64)
    labels[:10, :10] = 1  # 100 px, isolated
    labels[15:17, 15:17] = 2  # 4 px, isolated
    out = merge_small_fragments(labels, min_area_px=200, min_isolated_px=50)
    assert (out[:10, :10] > 0).all() and (out[15:17, 15:17] == 0).all()
    assert not merge_small_fragments(
        labels, min_area_px=200
    ).any()  # default: isolated under min_area dropped


@pytest.mark.parametrize("gap", [1, 2, 3, 4])
def test_separate_instances_leaves_a_gap_of_the_asked_width(gap: int) -> None:
    labels = np.zeros((14, 30), dtype=np.int64)
    labels[4:, 2:15] = 1
    labels[4:, 15:28] = 2
    labels[0:2, 0:2] = 3  # isolated (3 rows away): untouched
    out = separate_instances(labels, gap)
    cut = (labels > 0) & (out == 0)
    assert (cut[4:].sum(axis=1) == gap).all()  # every row loses exactly ``gap`` pixels ...
    cols = np.nonzero(cut.any(axis=0))[0]
    assert cols.min() >= 15 - gap and cols.max() <= 14 + gap  # ... at the shared border
    assert (out[0:2, 0:2] == 3).all() and set(np.unique(out).tolist()) == {0, 1, 2, 3}
    assert np.array_equal(separate_instances(labels, 0), labels)


def test_size_gaps_part_large_fields_by_a_road_and_small_plots_by_a_bund() -> None:
    labels = np.zeros((240, 240), dtype=np.int64)
    labels[:100, :120] = 1  # two 1.2 ha fields side by side (1 m pixels) ...
    labels[:100, 120:] = 2
    labels[150:180, 10:40] = 3  # ... and two 0.09 ha plots
    labels[150:180, 40:70] = 4
    out = size_gaps(labels, gsd=1.0, per_m=0.06, max_gap_m=6.0)
    # 0.06 x sqrt(12,000 m²) = 6.6 m, capped at 6: three pixels a side, at the shared border only
    cut = (labels > 0) & (out == 0)
    assert all(np.flatnonzero(row).tolist() == [117, 118, 119, 120, 121, 122] for row in cut[:100])
    # 0.06 x sqrt(900 m²) = 1.8 m: under a pixel a side (separate_instances' 2 m gap parts them)
    assert not cut[150:].any()
    assert np.array_equal(size_gaps(labels, 1.0, 0.0, 6.0), labels)  # per_m 0: unchanged
    # the same ground at 0.5 m: the same metres, twice the pixels
    fine = np.kron(labels, np.ones((2, 2), dtype=np.int64))
    cut_fine = (fine > 0) & (size_gaps(fine, 0.5, 0.06, 6.0) == 0)
    assert cut_fine[100].sum() == 12 and np.flatnonzero(cut_fine[320]).tolist() == [79, 80]


def test_refine_gap_separates_adjacent_fields_and_becomes_background() -> None:
    image, truth = fields_scene()
    sem = coarse(np.where(truth > 0, FIELD, 0))
    result = refine(sem, image, gsd=0.5, gap_m=1.0, min_area_px=0)
    a, b = (result.instance == i for i in np.unique(result.instance[result.instance > 0]))
    assert not (ndimage.binary_dilation(a) & b).any()  # no pixel of one touches the other
    gap = (sem == FIELD) & (result.instance == 0)
    assert gap.any() and (result.semantic[gap] == 0).all()
    assert gap.sum() <= 2 * sem.shape[0]  # 1 m at 0.5 m: two pixels per row at most


def test_sizes_in_square_metres_scale_with_the_gsd() -> None:
    sem = np.zeros((30, 30), dtype=np.uint8)
    sem[2:20, 2:20] = FIELD
    sem[25:28, 25:28] = FIELD  # 9 px, isolated: 9 m² at 1 m, 2.25 m² at 0.5 m
    flat = np.zeros((30, 30), np.float32)
    kept = refine(sem, boundary=flat, gsd=1.0, min_area_m2=20, min_isolated_m2=4)
    dropped = refine(sem, boundary=flat, gsd=0.5, min_area_m2=20, min_isolated_m2=4)
    assert (kept.instance[25:28, 25:28] > 0).all() and (dropped.instance[25:28, 25:28] == 0).all()
    # a pixel override wins over the physical size
    forced = refine(sem, boundary=flat, gsd=0.5, min_area_m2=20, min_isolated_m2=4, min_isolated_px=4)
    assert (forced.instance[25:28, 25:28] > 0).all()


@pytest.mark.parametrize("gsd", [0.0, -1.0, float("nan")])
def test_refine_rejects_a_bad_gsd(gsd: float) -> None:
    with pytest.raises(InputError, match="gsd"):
        refine(np.zeros((4, 4), dtype=np.uint8), gsd=gsd)


def test_merge_weak_borders_joins_pieces_across_a_furrow_not_across_a_road() -> None:
    lab = np.zeros((10, 30), dtype=np.int64)
    lab[:, 0:10], lab[:, 10:20], lab[:, 20:29] = 3, 7, 9  # column 29 stays background
    prob = np.zeros((10, 30))
    prob[:, 9:11] = 0.2  # a furrow between 3 and 7
    prob[:, 19:21] = 0.9  # a road between 7 and 9
    out = merge_weak_borders(lab, prob, 0.5)
    assert (out[:, :20] == out[0, 0]).all()
    assert np.unique(out[:, 20:29]).size == 1 and out[0, 25] != out[0, 0]
    assert (out[:, 29] == 0).all()
    assert sorted(np.unique(out).tolist()) == [0, 1, 2]
    assert np.array_equal(merge_weak_borders(lab, prob, 0.0), lab)  # 0: off
    assert np.unique(merge_weak_borders(lab, prob, 0.1)).size == 4  # both borders too strong: 3 pieces + 0


@pytest.mark.parametrize(("line", "merge_below", "fields"), [(0.4, 0.5, 1), (0.4, 0.0, 2), (0.9, 0.5, 2)])
def test_refine_parts_fields_only_along_a_strong_line(line: float, merge_below: float, fields: int) -> None:
    sem = np.full((40, 40), FIELD, dtype=np.uint8)
    prob = np.zeros((40, 40), dtype=np.float32)
    prob[:, 19:21] = line  # above the marker threshold, so the watershed starts a piece on each side
    result = refine(sem, boundary=prob, merge_below=merge_below, gap_px=0, min_area_px=0)
    assert np.unique(result.instance[result.instance > 0]).size == fields
    assert (result.instance > 0).all()
