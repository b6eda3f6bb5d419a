"""RRLE codec: class grids <-> Text4Seg's row-wise run-length text, with a decoder that repairs per row."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from magseg.classes import CLASSES

__all__ = ["CLASSES", "DecodeReport", "decode", "encode", "grid_to_mask", "mask_to_grid"]

RUN_SEP = "| "
ROW_SEP = "\n "
COUNT_SEP = " *"

# A run is "<label> *<count>"; the decoder also accepts sloppy spacing and a missing count.
_RUN = re.compile(r"^\s*(?P<label>[^*|\n]*?)\s*(?:\*\s*(?P<count>[^\s|*]*)\s*)?$")
_INT = re.compile(r"^\d{1,6}$")


def encode(grid: np.ndarray, labels: Sequence[str] = CLASSES) -> str:
    """Write a 2-D integer class grid as RRLE text: labels[i] is the descriptor of class i."""
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"encode needs a non-empty 2-D grid, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"encode needs integer class ids, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= len(labels):
        raise ValueError(f"class ids must lie in 0..{len(labels) - 1}, got {arr.min()}..{arr.max()}")
    rows = []
    for row in arr:
        # run starts: first cell and every cell that differs from its left neighbour
        starts = np.flatnonzero(np.concatenate(([True], row[1:] != row[:-1])))
        counts = np.diff(np.append(starts, row.size))
        rows.append(
            RUN_SEP.join(f"{labels[row[s]]}{COUNT_SEP}{c}" for s, c in zip(starts, counts, strict=True))
        )
    return ROW_SEP.join(rows) + "\n"


@dataclass
class DecodeReport:
    """What the decoder had to repair; all zero means the text was valid RRLE of the requested shape."""

    rows_parsed: int = 0
    unknown_labels: int = 0  # runs whose label is not a descriptor: written as background
    bad_counts: int = 0  # runs with a missing, zero or non-numeric count
    short_rows: int = 0  # rows padded with their last label
    long_rows: int = 0  # rows truncated to the width
    missing_rows: int = 0  # rows absent at the end: filled with the last row
    extra_rows: int = 0  # rows beyond the height: dropped
    garbage_lines: int = 0  # lines between rows holding no run: skipped
    trailing_text: int = 0  # non-row lines after the last row: ignored
    empty: bool = False  # no row at all: the grid is all background

    @property
    def repairs(self) -> int:
        """Total number of repairs made (0 for valid text)."""
        return sum(int(getattr(self, f.name)) for f in fields(self) if f.name != "rows_parsed")

    @property
    def valid(self) -> bool:
        return self.repairs == 0

    def as_dict(self) -> dict[str, int | bool]:
        out: dict[str, int | bool] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["repairs"] = self.repairs
        out["valid"] = self.valid
        return out


def _parse_line(
    line: str, lookup: dict[str, int], report: DecodeReport
) -> list[tuple[int, int | None]] | None:
    """Parse one row into (class, count) runs; None when the line holds no run at all (garbage)."""
    runs: list[tuple[int, int | None]] = []
    unknown = bad = 0
    any_known = False
    for part in line.split("|"):
        if not part.strip():
            continue
        m = _RUN.match(part)
        if m is None:
            unknown += 1
            continue
        label = m.group("label").strip().lower()
        raw = m.group("count")
        count: int | None = int(raw) if raw is not None and _INT.match(raw) else None
        if count == 0:
            count = None
        if label in lookup:
            any_known = True
            cls = lookup[label]
        else:
            if raw is None:  # neither a known label nor a count: not a run
                unknown += 1
                continue
            cls = 0
            unknown += 1
        if count is None:
            bad += 1
        runs.append((cls, count))
    if not any_known and not any(c is not None for _, c in runs):
        return None
    report.unknown_labels += unknown
    report.bad_counts += bad
    return runs


def _fill_row(runs: list[tuple[int, int | None]], width: int, report: DecodeReport) -> np.ndarray:
    known = sum(c for _, c in runs if c is not None)
    missing = [i for i, (_, c) in enumerate(runs) if c is None]
    # runs without a usable count share what the counted runs leave of the width
    spare = max(width - known, 0)
    resolved: list[tuple[int, int]] = []
    for i, (cls, c) in enumerate(runs):
        if c is None:
            share = spare // len(missing) + (1 if missing.index(i) < spare % len(missing) else 0)
            resolved.append((cls, share))
        else:
            resolved.append((cls, c))
    row = np.repeat(
        np.array([c for c, _ in resolved], dtype=np.int64), np.array([n for _, n in resolved], dtype=np.int64)
    )
    if row.size < width:
        report.short_rows += 1
        last = row[-1] if row.size else (resolved[-1][0] if resolved else 0)
        row = np.concatenate([row, np.full(width - row.size, last, dtype=np.int64)])
    elif row.size > width:
        report.long_rows += 1
        row = row[:width]
    return row


def decode(
    text: str, shape: tuple[int, int], labels: Sequence[str] = CLASSES
) -> tuple[np.ndarray, DecodeReport]:
    """Decode RRLE text into a grid of ``shape``; never raises on the text, repairs row by row.

    Returns ``(grid, report)``; ``report.valid`` is true only for exact RRLE of that shape. The final
    newline is optional (Gemma3's chat template trims it from the assistant turn).
    """
    height, width = int(shape[0]), int(shape[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"decode needs a positive shape, got {shape}")
    report = DecodeReport()
    lookup = {name.strip().lower(): i for i, name in enumerate(labels)}
    rows: list[np.ndarray] = []
    pending_garbage = 0
    text = text if isinstance(text, str) else str(text)
    for line in text.split("\n"):
        if not line.strip():
            continue
        runs = _parse_line(line, lookup, report)
        if runs is None:
            pending_garbage += 1
            continue
        if len(rows) >= height:
            report.extra_rows += 1
            continue
        report.garbage_lines += pending_garbage
        pending_garbage = 0
        rows.append(_fill_row(runs, width, report))
    report.trailing_text = pending_garbage
    report.rows_parsed = len(rows)
    if not rows:
        report.empty = True
        return np.zeros((height, width), dtype=np.int64), report
    if len(rows) < height:
        report.missing_rows = height - len(rows)
        rows.extend([rows[-1]] * (height - len(rows)))
    return np.stack(rows), report


def mask_to_grid(
    mask: np.ndarray, grid: int | tuple[int, int], method: Literal["majority", "nearest"] = "majority"
) -> np.ndarray:
    """Reduce a class mask (H, W) to a (g, g) grid of cells.

    ``majority`` gives each cell its most frequent class (ties to the lower id); ``nearest`` samples the
    cell centre (Text4Seg's nearest-neighbour resize). ``g`` equal to the mask size keeps full resolution.
    """
    arr = np.asarray(mask)
    gh, gw = (grid, grid) if isinstance(grid, int) else grid
    h, w = arr.shape
    if gh <= 0 or gw <= 0 or gh > h or gw > w:
        raise ValueError(f"grid {gh}x{gw} must be positive and no larger than the mask {h}x{w}")
    if (gh, gw) == (h, w):
        return arr.astype(np.int64, copy=True)
    if method == "nearest":
        ys = ((np.arange(gh) + 0.5) * h / gh).astype(int)
        xs = ((np.arange(gw) + 0.5) * w / gw).astype(int)
        return arr[np.ix_(ys, xs)].astype(np.int64)
    if method != "majority":
        raise ValueError(f"unknown method {method!r}: use 'majority' or 'nearest'")
    # cell index of every pixel, then a histogram of classes per cell
    cy = (np.arange(h) * gh // h)[:, None]
    cx = (np.arange(w) * gw // w)[None, :]
    cell = (cy * gw + cx).ravel()
    n_cls = int(arr.max()) + 1
    hist = np.bincount(cell * n_cls + arr.ravel().astype(np.int64), minlength=gh * gw * n_cls)
    return hist.reshape(gh * gw, n_cls).argmax(axis=1).reshape(gh, gw).astype(np.int64)


def grid_to_mask(grid: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Expand a (g, g) grid back to a (H, W) mask by nearest neighbour (each cell covers its pixels)."""
    arr = np.asarray(grid)
    h, w = (size, size) if isinstance(size, int) else size
    gh, gw = arr.shape
    ys = np.arange(h) * gh // h
    xs = np.arange(w) * gw // w
    return arr[np.ix_(ys, xs)]
