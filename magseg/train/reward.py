"""GRPO reward: mean DICE between the decoded rollout and the decoded solution, in TRL's signature."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from magseg.classes import CLASSES
from magseg.codec import decode
from magseg.metrics import mean_dice


def completion_text(completion: Any) -> str:
    """The text of one completion: a plain string, or TRL's conversational ``[{"role", "content"}]`` form."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # structured content blocks
            return "".join(part.get("text", "") for part in content if part.get("type") == "text")
        return str(content)
    return str(completion)


def _score(text: str, solution: str, grid: int) -> tuple[float, bool]:
    truth, _ = decode(solution, (grid, grid))
    # A malformed rollout is repaired row by row and scored on what it decodes to.
    pred, report = decode(text, (grid, grid))
    return mean_dice(pred, truth, num_classes=len(CLASSES)), not report.valid


def dice_reward(
    completions: Sequence[Any],
    solution: Sequence[str],
    grid: Sequence[int],
    log_metric: Callable[[str, float], None] | None = None,
    **kwargs: Any,
) -> list[float]:
    """Mean DICE over the classes present (background left out) of each rollout vs its solution.

    TRL's GRPOTrainer passes the dataset's extra columns (``solution``, ``grid``) as keyword arguments
    and a ``log_metric`` callback, through which the decode-repair rate of the batch is logged.
    """
    scores, repaired = [], []
    for comp, sol, g in zip(completions, solution, grid, strict=True):
        score, fixed = _score(completion_text(comp), sol, int(g))
        scores.append(score)
        repaired.append(fixed)
    if log_metric is not None and repaired:
        log_metric("decode_repair_rate", float(np.mean(repaired)))
    return scores


def decode_repair_rate(completions: Sequence[Any], grid: Sequence[int] | int) -> float:
    """Fraction of completions the decoder had to repair (not exact RRLE of a g x g grid)."""
    if not completions:
        return 0.0
    grids = [grid] * len(completions) if isinstance(grid, int) else list(grid)
    bad = [
        not decode(completion_text(c), (int(g), int(g)))[1].valid
        for c, g in zip(completions, grids, strict=True)
    ]
    return float(np.mean(bad))
