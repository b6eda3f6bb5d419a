"""The one prompt / chat format, shared by sample building, training, evaluation and inference.

Order matters for cost: everything a scene's patches share (instruction, scene image) comes first so
that prefix caches (vLLM, GRPO groups) reuse one prefill; the patch-specific part (its box, its crop)
comes last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from magseg.classes import CLASSES
from magseg.codec import encode

INSTRUCTION = (
    "Segment the entire image and classify each category separately. "
    f"Categories: {', '.join(CLASSES[1:])}; anything else is {CLASSES[0]}."
)


@dataclass(frozen=True)
class PatchSpec:
    """Where a patch lies in its scene (pixels, top-left origin) and the grid its mask is written at."""

    x0: int
    y0: int
    size: int  # p: the patch is p x p pixels
    scene_width: int
    scene_height: int
    grid: int  # g: the RRLE is a g x g grid
    # the classes of the cells just outside each side (left, top, right, bottom) as one-row RRLE, or
    # "none"; None: the prompt says nothing of neighbours (see magseg.inference.neighbours)
    neighbours: tuple[str, str, str, str] | None = None

    def box_permille(self) -> tuple[int, int, int, int]:
        """The patch box as (x0, y0, x1, y1) in thousandths of the scene size (resolution-free)."""
        w, h = self.scene_width, self.scene_height
        return (
            round(1000 * self.x0 / w),
            round(1000 * self.y0 / h),
            round(1000 * (self.x0 + self.size) / w),
            round(1000 * (self.y0 + self.size) / h),
        )


#: The sides of a patch in the order of PatchSpec.neighbours.
SIDES: tuple[str, str, str, str] = ("left", "top", "right", "bottom")


def edge_text(cells: np.ndarray | None) -> str:
    """A line of g cells outside one side of a patch (top to bottom, or left to right) as one-row RRLE;
    "none" where there is no neighbour (the scene's edge, or one not predicted yet)."""
    if cells is None:
        return "none"
    return encode(np.asarray(cells, dtype=np.int64).reshape(1, -1)).strip()


def patch_text(spec: PatchSpec) -> str:
    """The patch-specific instruction: which box, the grid size of the answer, and, for models trained with
    them, the classes along each side just outside the patch (its neighbours' edge cells)."""
    x0, y0, x1, y1 = spec.box_permille()
    text = f"Patch <box>{x0},{y0},{x1},{y1}</box>. Write its mask as a {spec.grid}x{spec.grid} RRLE grid."
    if spec.neighbours is not None:
        sides = "; ".join(f"{side}: {edge}" for side, edge in zip(SIDES, spec.neighbours, strict=True))
        text += f" Cells outside it, {sides}."
    return text


def user_turn(spec: PatchSpec, with_crop: bool = True) -> dict[str, Any]:
    """The user message: scene image, instruction, then the patch box (and its crop as a second image)."""
    # one text item: Gemma3's template trims each item and joins items with no separator
    content: list[dict[str, str]] = [
        {"type": "image"},
        {"type": "text", "text": f"{INSTRUCTION}\n{patch_text(spec)}"},
    ]
    if with_crop:
        content.append({"type": "image"})
    return {"role": "user", "content": content}


def assistant_turn(rrle: str) -> dict[str, Any]:
    """The assistant message holding an RRLE answer."""
    return {"role": "assistant", "content": [{"type": "text", "text": rrle}]}
