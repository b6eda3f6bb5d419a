"""RRLE codec: class grids <-> Text4Seg's row-wise run-length text, with a decoder that repairs per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from magseg.classes import CELL_WEIGHTS, CLASSES

__all__ = [
    "CLASSES",
    "GRID_METHODS",
    "DecodeReport",
    "cell_scores",
    "decode",
    "encode",
    "grid_to_mask",
    "mask_to_grid",
]

#: How mask_to_grid gives a cell its class (a model records the one its targets were written with).
GRID_METHODS: tuple[str, ...] = ("majority", "weighted", "nearest")

RUN_SEP = "| "
ROW_SEP = "\n "
COUNT_SEP = " *"


def encode(grid: np.ndarray, labels: Sequence[str] = CLASSES) -> str:
    """Write a 2-D integer class grid as RRLE text: labels[i] is the descriptor of class i."""
    arr = np.asarray(grid)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"encode needs a non-empty 2-D grid, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"encode needs integer class ids, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= len(labels):
        raise ValueError(f"class ids must lie in 0..{len(labels) - 1}, got {arr.min()}..{arr.max()}")
    # run starts of the whole grid at once; one Python pass then formats the runs row by row
    h, w = arr.shape
    start = np.ones((h, w), dtype=bool)
    start[:, 1:] = arr[:, 1:] != arr[:, :-1]
    ys, xs = np.nonzero(start)
    ends = np.append(xs[1:], w)
    ends[:-1][ys[1:] != ys[:-1]] = w
    names = [str(x) for x in labels]
    rows: list[list[str]] = [[] for _ in range(h)]
    for y, cls, count in zip(ys.tolist(), arr[ys, xs].tolist(), (ends - xs).tolist(), strict=True):
        rows[y].append(f"{names[cls]}{COUNT_SEP}{count}")
    return ROW_SEP.join(RUN_SEP.join(r) for r in rows) + "\n"


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


def _parse_run(part: str) -> tuple[str, str | None] | None:
    """Split "<label> *<count>" into its label and raw count (None when there is no '*')."""
    label, star, raw = part.partition("*")
    if "*" in raw:
        return None
    return label.strip().lower(), (raw.strip() if star else None)


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
        parsed = _parse_run(part)
        if parsed is None:
            unknown += 1
            continue
        label, raw = parsed
        count: int | None = (
            int(raw) if raw is not None and raw.isascii() and raw.isdigit() and len(raw) <= 6 else None
        )
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


def _fill_row(runs: list[tuple[int, int | None]], width: int, report: DecodeReport) -> list[int]:
    known = sum(c for _, c in runs if c is not None)
    missing = [i for i, (_, c) in enumerate(runs) if c is None]
    # runs without a usable count share what the counted runs leave of the width
    spare = max(width - known, 0)
    row: list[int] = []
    for i, (cls, c) in enumerate(runs):
        if c is None:
            k = missing.index(i)
            c = spare // len(missing) + (1 if k < spare % len(missing) else 0)
        row.extend([cls] * min(c, width + 1 - len(row)) if len(row) <= width else [])
    if len(row) < width:
        report.short_rows += 1
        last = row[-1] if row else runs[-1][0]
        row.extend([last] * (width - len(row)))
    elif len(row) > width:
        report.long_rows += 1
        del row[width:]
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
    rows: list[list[int]] = []
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
    return np.array(rows, dtype=np.int64), report


def cell_scores(
    text: str, tokens: Sequence[tuple[int, float]], shape: tuple[int, int], valid: bool
) -> np.ndarray:
    """How sure the model was of each cell of ``decode(text, shape)``: a (h, w) float32 grid in [0, 1].

    ``tokens`` gives, per written token, the end offset of its text in ``text`` and its probability
    (magseg.model.generate.Scored). A cell gets the lowest probability among the tokens that wrote its
    run: the label (which class) and the count (where the run ends). Text that was not ``valid`` RRLE
    (the decoder repaired it) gives every cell the lowest probability of the whole completion.
    """
    height, width = int(shape[0]), int(shape[1])
    char_p = np.ones(len(text), dtype=np.float32)
    start = 0
    for end, p in tokens:
        char_p[start:end] = p
        start = max(start, end)
    lowest = float(min((p for _, p in tokens), default=0.0))
    if not valid:
        return np.full((height, width), lowest, dtype=np.float32)
    rows: list[list[float]] = []
    offset = 0
    for line in text.split("\n"):
        here, offset = offset, offset + len(line) + 1
        if not line.strip():
            continue
        row: list[float] = []
        for part in line.split("|"):
            span, here = here, here + len(part) + 1
            if not part.strip():
                continue
            chars = [i for i, c in enumerate(part, span) if not c.isspace()]
            p = float(char_p[chars].min()) if chars else lowest
            row.extend([p] * int(part.partition("*")[2].strip()))
        rows.append(row[:width])
    return np.array(rows[:height], dtype=np.float32)


def mask_to_grid(
    mask: np.ndarray,
    grid: int | tuple[int, int],
    method: str = "majority",
) -> np.ndarray:
    """Reduce a class mask (H, W) to a (g, g) grid of cells.

    ``majority`` gives each cell its most frequent class (ties to the lower id); ``weighted`` does the same
    with each class's pixels counted by CELL_WEIGHTS (small objects such as wells keep their cell);
    ``nearest`` samples the cell centre (Text4Seg's nearest-neighbour resize). ``g`` equal to the mask
    size keeps full resolution.
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
    if method not in GRID_METHODS:
        raise ValueError(f"unknown grid method {method!r}: use one of {', '.join(GRID_METHODS)}")
    # cell index of every pixel, then a histogram of classes per cell
    cy = (np.arange(h) * gh // h)[:, None]
    cx = (np.arange(w) * gw // w)[None, :]
    cell = (cy * gw + cx).ravel()
    n_cls = int(arr.max()) + 1
    hist = np.bincount(cell * n_cls + arr.ravel().astype(np.int64), minlength=gh * gw * n_cls)
    votes = hist.reshape(gh * gw, n_cls)
    if method == "weighted":  # ids past the class table (none in a valid mask) count once
        votes = votes * np.concatenate([CELL_WEIGHTS, np.ones(max(n_cls - len(CELL_WEIGHTS), 0))])[:n_cls]
    return votes.argmax(axis=1).reshape(gh, gw).astype(np.int64)


def grid_to_mask(grid: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Expand a (g, g) grid back to a (H, W) mask by nearest neighbour (each cell covers its pixels)."""
    arr = np.asarray(grid)
    h, w = (size, size) if isinstance(size, int) else size
    gh, gw = arr.shape
    ys = np.arange(h) * gh // h
    xs = np.arange(w) * gw // w
    return arr[np.ix_(ys, xs)]
