"""Seam re-reads: overlapping patches over the seams where independently predicted patches disagree.

Patches predicted independently jump at their seams (the seed's "stitching artifacts"). After the first
pass, every seam stretch along which the stitched mask changes class is a candidate: a patch offset by half
a patch so that a seam runs through its middle (one seam, or the crossing of two) is predicted again, and
where the first pass disagreed across the seam (a row of cells for a vertical seam, a column for a
horizontal one) the re-read's cells within a quarter patch of the seam replace the first pass's, except
that an object the first pass wrote (tree, cloud, pond, well) is erased only where the re-read's tokens
were more probable than the first pass's (with no token probabilities: never), and an object the first
pass wrote nowhere in the re-read's window is not written (a re-read settles what the patches either side
said; it does not start a pond of its own). The seam then lies inside one patch's answer; the re-read's
own edges fall on cell lines inside the first pass's patches, where both answers are written mid-patch.
Where the first pass agreed nothing changes.

Up to ``share`` x the scene's patches are re-read, chosen greedily by the disagreeing seam pixels they
cover (a crossing covers two seams); they go to the engine in one batch for all the scenes of a call,
so the first pass's batching is kept. Training drew its patches at any offset, so an offset patch is in
the model's distribution; one crossing its window's edge is seen in a window that holds it
(magseg.patches.window_origin). A merge reads a re-read's RRLE only down to the last cell row it can take
(reread_rows), so an engine that can stops writing there (about 15-20% of a re-read's tokens); one that
writes on gives the same mask. Mapping, serving and eval all go through these helpers.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from magseg.classes import CLOUD, POND, TREE, WELL
from magseg.codec import cell_scores, decode, grid_to_mask
from magseg.decoding import check_share
from magseg.format import ModelFormat
from magseg.inference.requests import scene_requests
from magseg.model.generate import Request, Scored

__all__ = ["Reread", "choose_rereads", "merge_rereads", "merge_scored", "reread_requests", "reread_rows"]

Origin = tuple[int, int]

#: Classes a re-read may erase only with more probable tokens than the first pass's: the objects, where
#: one lost costs a scene a whole class (chosen on the calibration scenes, README "Cross-patch context").
OBJECTS = (TREE, CLOUD, POND, WELL)


@dataclass(frozen=True)
class Reread:
    """An offset patch at (x0, y0) and the seams through its middle: the x of a vertical one, the y of a
    horizontal one (None where there is none)."""

    x0: int
    y0: int
    seam_x: int | None
    seam_y: int | None


def _half(patch: int, grid: int) -> int:
    """Half a patch, in whole cells (so an offset patch's cells lie on the first pass's cell lines)."""
    return (grid // 2) * (patch // grid)


def candidates(origins: Sequence[Origin], patch: int, grid: int, shape: tuple[int, int]) -> list[Reread]:
    """Every offset patch that puts a seam of the patches at ``origins`` through its middle."""
    height, width = shape
    half = _half(patch, grid)
    if half == 0:
        return []
    cols, rows = sorted({x for x, _ in origins}), sorted({y for _, y in origins})
    seams_x, seams_y = [x for x in cols if x > 0], [y for y in rows if y > 0]
    found = [Reread(sx - half, y, sx, None) for sx in seams_x for y in rows]
    found += [Reread(x, sy - half, None, sy) for sy in seams_y for x in cols]
    found += [Reread(sx - half, sy - half, sx, sy) for sx in seams_x for sy in seams_y]
    return [r for r in found if 0 <= r.x0 <= width - patch and 0 <= r.y0 <= height - patch]


def _differ(semantic: np.ndarray, seams_x: set[int], seams_y: set[int]) -> dict[tuple[str, int], np.ndarray]:
    """For each seam, whether the mask changes class across it at each pixel along it."""
    out = {("x", x): semantic[:, x - 1] != semantic[:, x] for x in seams_x}
    out.update({("y", y): semantic[y - 1, :] != semantic[y, :] for y in seams_y})
    return out


def _first_differ(semantic: np.ndarray, rereads: Sequence[Reread]) -> dict[tuple[str, int], np.ndarray]:
    """The first pass's class changes across the seams of ``rereads``."""
    seams_x = {r.seam_x for r in rereads if r.seam_x is not None}
    seams_y = {r.seam_y for r in rereads if r.seam_y is not None}
    return _differ(semantic, seams_x, seams_y)


def _spans(r: Reread, patch: int) -> list[tuple[tuple[str, int], slice]]:
    """The seam stretches a re-read covers: (seam key, pixels along it)."""
    out = []
    if r.seam_x is not None:
        out.append((("x", r.seam_x), slice(r.y0, r.y0 + patch)))
    if r.seam_y is not None:
        out.append((("y", r.seam_y), slice(r.x0, r.x0 + patch)))
    return out


def choose_rereads(
    semantic: np.ndarray, origins: Sequence[Origin], patch: int, grid: int, share: float
) -> list[Reread]:
    """Up to ``share`` x len(origins) offset patches, greedily those covering the most seam pixels along
    which the first pass's stitched ``semantic`` changes class and no chosen re-read covers yet; none
    where the patches agree. Deterministic (ties go to the earlier candidate)."""
    budget = int(check_share(share) * len(origins))
    if budget <= 0:
        return []
    found = candidates(origins, patch, grid, semantic.shape)
    open_ = _first_differ(semantic, found)  # disagreeing pixels no chosen re-read covers yet

    def gain(r: Reread) -> int:
        return sum(int(open_[key][span].sum()) for key, span in _spans(r, patch))

    heap = [(-g, i) for i, r in enumerate(found) if (g := gain(r)) > 0]
    heapq.heapify(heap)
    chosen: list[Reread] = []
    while heap and len(chosen) < budget:  # lazy greedy: a gain only falls as others are chosen
        stale, i = heapq.heappop(heap)
        now = gain(found[i])
        if now <= 0:
            continue
        if heap and (-now, i) > heap[0]:
            heapq.heappush(heap, (-now, i))
            continue
        chosen.append(found[i])
        for key, span in _spans(found[i], patch):
            open_[key][span] = False
    return chosen


def reread_requests(
    image: np.ndarray,
    semantic: np.ndarray,
    origins: Sequence[Origin],
    config: ModelFormat,
    share: float,
) -> tuple[list[Reread], list[Request], list[int]]:
    """A scene's re-reads (choose_rereads over its first pass's ``semantic``), their engine requests,
    built as every patch's are (magseg.inference.requests), and the RRLE rows each one's merge reads
    (reread_rows: the row limit an engine may stop at; pass them on to merge_scored)."""
    plan = choose_rereads(semantic, origins, config.patch, config.grid, share)
    requests = scene_requests(image, config, origins=[(r.x0, r.y0) for r in plan])[1]
    return plan, requests, reread_rows(semantic, plan, config.patch, config.grid)


def _take(r: Reread, differ: dict[tuple[str, int], np.ndarray], patch: int, grid: int) -> np.ndarray:
    """The (patch, patch) pixels of re-read ``r`` that may replace the first pass's: along each seam through
    it, in every row (column) of its cells where the first pass changed class across the seam, its cells
    within a quarter patch of the seam."""
    cell = patch // grid
    band = max(grid // 4, 1) * cell
    take = np.zeros((patch, patch), dtype=bool)
    lines = [slice(j * cell, (j + 1) * cell) for j in range(grid)]
    if r.seam_x is not None:
        along, at = differ[("x", r.seam_x)][r.y0 : r.y0 + patch], r.seam_x - r.x0
        for rows in lines:
            if along[rows].any():
                take[rows, max(at - band, 0) : at + band] = True
    if r.seam_y is not None:
        along, at = differ[("y", r.seam_y)][r.x0 : r.x0 + patch], r.seam_y - r.y0
        for cols in lines:
            if along[cols].any():
                take[max(at - band, 0) : at + band, cols] = True
    return take


def reread_rows(semantic: np.ndarray, rereads: Sequence[Reread], patch: int, grid: int) -> list[int]:
    """How many of its RRLE rows (top down) each re-read's merge can use: 1 + the last cell row holding a
    pixel it may take (merge_rereads). The rows below are never read, so an engine may stop writing there
    (magseg.inference.engine.generate_scored's ``row_limits``): about 15-20% of a re-read's tokens."""
    differ = _first_differ(semantic, rereads)
    cell = patch // grid
    out = []
    for r in rereads:
        rows = np.flatnonzero(_take(r, differ, patch, grid).any(axis=1))
        out.append(int(rows[-1]) // cell + 1 if len(rows) else 1)
    return out


def merge_rereads(
    semantic: np.ndarray,
    rereads: Sequence[Reread],
    grids: Sequence[np.ndarray],
    patch: int,
    values: Sequence[np.ndarray] | None = None,
    base_values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The first pass's ``semantic`` with each re-read's ``grids`` (g x g class grids) written in: along
    each seam through it, in every row (column) of its cells where the first pass changed class across
    the seam, its cells within a quarter patch of the seam -- but not over an object of the first pass
    (OBJECTS) that the re-read would erase, unless the re-read's ``values`` (per-cell token
    probabilities) beat the first pass's ``base_values`` (per pixel, like ``semantic``) there, nor an
    object the first pass wrote nowhere in the re-read's window. The values of the pixels taken are
    replaced too."""
    grid = grids[0].shape[0] if grids else 1
    differ = _first_differ(semantic, rereads)  # the first pass's, whatever order re-reads merge in
    out = semantic.copy()
    out_values = None if base_values is None else base_values.copy()
    for k, (r, g) in enumerate(zip(rereads, grids, strict=True)):
        take = _take(r, differ, patch, grid)
        window = (slice(r.y0, r.y0 + patch), slice(r.x0, r.x0 + patch))
        new = grid_to_mask(g, patch)
        erases = np.isin(semantic[window], OBJECTS) & ~np.isin(new, OBJECTS)
        new_values = None if values is None else grid_to_mask(values[k], patch)
        if new_values is not None and base_values is not None:
            take &= ~erases | (new_values > base_values[window])
        else:
            take &= ~erases
        # a re-read settles what the patches either side wrote; an object none of them wrote there is new
        take &= ~(np.isin(new, OBJECTS) & ~np.isin(new, np.unique(semantic[window])))
        out[window][take] = new[take]
        if out_values is not None and new_values is not None:
            out_values[window][take] = new_values.astype(out_values.dtype)[take]
    return out, out_values


def _first_rows(s: Scored, rows: int, grid: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A re-read's class grid and cell probabilities (None without token probabilities) from the first
    ``rows`` lines of its completion, whether the engine stopped there or wrote on; the rows below are
    zeros (never taken)."""
    lines = s.text.split("\n")
    text = "\n".join(lines[:rows]) + ("\n" if len(lines) > rows else "")
    head, report = decode(text, (rows, grid))
    cells = np.zeros((grid, grid), dtype=head.dtype)
    cells[:rows] = head
    if s.tokens_text is None:
        return cells, None
    spans = [(end, p) for end, p in s.tokens_text if end <= len(text)] or list(s.tokens_text[:1])
    values = np.zeros((grid, grid), dtype=np.float32)
    values[:rows] = cell_scores(text, spans, (rows, grid), report.valid)
    return cells, values


def merge_scored(
    semantic: np.ndarray,
    confidence: np.ndarray | None,
    rereads: Sequence[Reread],
    scored: Sequence[Scored],
    patch: int,
    grid: int,
    rows: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """merge_rereads for the engine's completions of ``rereads``, each read down to its reread_rows
    (``rows`` as reread_requests gave them; None: worked out here), so an engine that stopped there and
    one that wrote every row give the same mask: decoded at the g x g grid, their token probabilities
    (codec.cell_scores) written into ``confidence`` where it is kept (every completion scored), else
    ``confidence`` as it was."""
    rows = reread_rows(semantic, rereads, patch, grid) if rows is None else rows
    read = [_first_rows(s, n, grid) for s, n in zip(scored, rows, strict=True)]
    grids = [g for g, _ in read]
    if confidence is None or any(v is None for _, v in read):
        return merge_rereads(semantic, rereads, grids, patch)[0], confidence
    values = [v for _, v in read if v is not None]
    return merge_rereads(semantic, rereads, grids, patch, values, confidence)
