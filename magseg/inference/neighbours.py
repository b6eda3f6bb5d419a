"""Cross-patch context: a checkerboard of two batched passes, the second reading its neighbours' edges.

Patches predicted independently jump at their seams. A model trained with ``neighbours`` > 0
(magseg.samples: that share of its prompts named the true classes of the cells just outside the patch)
is run in two passes over a checkerboard of the patch grid: the first colour is predicted as before, all
at once; every patch of the second colour then reads, in its prompt, the classes of the cells its
decoded neighbours put along its four sides, and is predicted all at once too. Every seam lies between
the two colours, so every seam is written by a patch that saw the other side. Output tokens are those of
independent patches; only the second pass's prompts grow by a line. Mapping, serving and eval all go
through these helpers (magseg.inference.predict, magseg.serve.compute).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

from magseg.codec import decode
from magseg.format import ModelFormat
from magseg.prompts import edge_text

__all__ = ["Edges", "first_pass", "merge_passes", "second_pass_edges"]

Origin = tuple[int, int]
Edges = tuple[str, str, str, str]
T = TypeVar("T")


def first_pass(origins: Sequence[Origin], patch: int) -> list[bool]:
    """Whether each patch is of the first colour of the checkerboard (its grid column + row is even)."""
    return [(x0 // patch + y0 // patch) % 2 == 0 for x0, y0 in origins]


def _edges(origin: Origin, patch: int, grids: Mapping[Origin, np.ndarray]) -> Edges:
    """The cells along each side of the patch at ``origin`` that its decoded neighbours wrote."""
    x0, y0 = origin
    left, top = grids.get((x0 - patch, y0)), grids.get((x0, y0 - patch))
    right, bottom = grids.get((x0 + patch, y0)), grids.get((x0, y0 + patch))
    return (
        edge_text(None if left is None else left[:, -1]),
        edge_text(None if top is None else top[-1, :]),
        edge_text(None if right is None else right[:, 0]),
        edge_text(None if bottom is None else bottom[0, :]),
    )


def second_pass_edges(
    origins: Sequence[Origin], first: Sequence[bool], first_texts: Sequence[str], config: ModelFormat
) -> dict[Origin, Edges]:
    """For each second-pass patch, its neighbours' edge cells from the first pass's RRLE (in order of the
    first-pass patches)."""
    done = [o for o, f in zip(origins, first, strict=True) if f]
    cells = (config.grid, config.grid)
    grids = {o: decode(text, cells)[0] for o, text in zip(done, first_texts, strict=True)}
    return {o: _edges(o, config.patch, grids) for o, f in zip(origins, first, strict=True) if not f}


def merge_passes(first: Sequence[bool], a: Sequence[T], b: Sequence[T]) -> list[T]:
    """The two passes' results back in patch order (``a``: first-pass patches, ``b``: the others)."""
    ia, ib = iter(a), iter(b)
    out = [next(ia) if f else next(ib) for f in first]
    if next(ia, None) is not None or next(ib, None) is not None:
        raise ValueError("the passes hold more results than patches")
    return out
