"""Decoding settings a model card records (``decoding`` in magseg.json) that configs also take, checked here.

Light on purpose: map and serve configs validate these without importing the model stack
(magseg.inference pulls in torch and transformers).
"""

from __future__ import annotations

from magseg.errors import InputError

__all__ = ["MAX_REREADS", "check_share"]

#: The largest share of seam re-reads (magseg.inference.rereads): about every seam of a grid re-read.
MAX_REREADS = 4.0


def check_share(share: float, what: str = "re-read share") -> float:
    """The seam re-read share as a float, or an InputError naming ``what`` and the fix."""
    value = float(share)
    if not 0.0 <= value <= MAX_REREADS:
        raise InputError(
            f"{what} {share} is not in [0, {MAX_REREADS:g}]; use e.g. 0.2 (0 turns re-reads off)"
        )
    return value
