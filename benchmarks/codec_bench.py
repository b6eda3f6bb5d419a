"""Codec throughput: magseg's repairing decoder and encoder vs. a bare Text4Seg-style split/repeat baseline."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from magseg.codec import CLASSES, decode, encode


def _baseline_encode(grid: np.ndarray) -> str:
    # the plainest correct encoder: itertools-free Python loop over cells
    rows = []
    for row in grid.tolist():
        runs, start = [], 0
        for i in range(1, len(row) + 1):
            if i == len(row) or row[i] != row[start]:
                runs.append(f"{CLASSES[row[start]]} *{i - start}")
                start = i
        rows.append("| ".join(runs))
    return "\n ".join(rows) + "\n"


def _baseline_decode(text: str, shape: tuple[int, int]) -> np.ndarray:
    # Text4Seg's decoder: split, repeat, no per-row repair (all-background on any error)
    lookup = {c: i for i, c in enumerate(CLASSES)}
    try:
        cells = []
        for row in text.rstrip("\n").split("\n "):
            for run in row.split("| "):
                label, count = run.split(" *")
                cells.extend([lookup.get(label, 0)] * int(count))
        flat = np.array(cells[: shape[0] * shape[1]], dtype=np.int64)
        return np.pad(flat, (0, shape[0] * shape[1] - flat.size), mode="edge").reshape(shape)
    except ValueError:
        return np.zeros(shape, dtype=np.int64)


def _rate(fn: Callable[[], object], n: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0)


def _grids(g: int, count: int) -> list[np.ndarray]:
    # blocky grids like real masks: a few classes in rectangles, so rows hold a handful of runs
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        grid = np.zeros((g, g), dtype=np.int64)
        for _ in range(6):
            y, x = rng.integers(0, g, 2)
            grid[y : y + rng.integers(1, g), x : x + rng.integers(1, g)] = rng.integers(0, len(CLASSES))
        out.append(grid)
    return out


def run(quick: bool = False) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    reps = 3 if quick else 20
    for g in (8, 16, 32):
        grids = _grids(g, 50)
        texts = [encode(x) for x in grids]
        shape = (g, g)
        enc = _rate(lambda grids=grids: [encode(x) for x in grids], reps) * len(grids)
        enc0 = _rate(lambda grids=grids: [_baseline_encode(x) for x in grids], reps) * len(grids)
        dec = _rate(lambda texts=texts, shape=shape: [decode(t, shape) for t in texts], reps) * len(grids)
        dec0 = _rate(
            lambda texts=texts, shape=shape: [_baseline_decode(t, shape) for t in texts], reps
        ) * len(grids)
        chars = sum(len(t) for t in texts) / len(texts)
        rows.append({"bench": f"codec encode g={g}", "per_s": round(enc), "baseline_per_s": round(enc0),
                     "ratio_vs_baseline": round(enc / enc0, 2), "chars_per_grid": round(chars)})  # fmt: skip
        rows.append({"bench": f"codec decode g={g}", "per_s": round(dec), "baseline_per_s": round(dec0),
                     "ratio_vs_baseline": round(dec / dec0, 2), "chars_per_grid": round(chars)})  # fmt: skip
    return rows
