"""Prefix sharing: a scene's prompt prefix (its image and the instruction) prefilled once for all its patches.

Every patch prompt of a scene starts with the same tokens and the same scene image (magseg.prompts puts
them first); only the box text and the crop differ. ``split_prompts`` cuts a rendered batch there: one
prefix row per distinct scene image, and each request's suffix placed after it, padded *between* prefix
and suffix. The engine prefills the prefixes once, copies each row's scene cache, and generates from the
suffixes. Masked pads and positions counted from the attention mask (as generate does for left padding)
make every row see exactly the tokens and positions it sees unshared, so greedy outputs are the same.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["SharedPrompts", "cache_keyword", "split_prompts"]


@dataclass
class SharedPrompts:
    """A batch cut at its common prefix: prefill ``prefix_*`` once, then generate from the full rows."""

    prefix_ids: torch.Tensor  # (G, P): one row per distinct scene image
    prefix_types: torch.Tensor  # (G, P) token_type_ids
    prefix_pixels: torch.Tensor | None  # (G, ...) the scene images
    row_prefix: torch.Tensor  # (B,) which prefix row each request continues
    ids: torch.Tensor  # (B, P + S): prefix, then pads, then the request's own suffix
    mask: torch.Tensor  # (B, P + S): 0 on the pads
    types: torch.Tensor  # (B, P + S)
    suffix_pixels: torch.Tensor | None  # the suffixes' images (the crops), in row order

    @property
    def prefix_len(self) -> int:
        return int(self.prefix_ids.shape[1])

    @property
    def prefill_tokens(self) -> int:
        """Tokens prefilled: each prefix once, each suffix (pads included) once per request."""
        rows, width = self.ids.shape
        return int(self.prefix_ids.numel() + rows * (width - self.prefix_len))


def split_prompts(
    encoded: Any, scene_keys: Sequence[object], image_token_id: int, images_per_row: int, pad_id: int
) -> SharedPrompts | None:
    """Cut a left-padded rendered batch (render_prompts) at the prefix all rows share; None where sharing
    cannot apply (one row, no common prefix holding the first image whole, or images not one or two a row).

    ``scene_keys`` says which requests share their first image (equal keys: the same scene image).
    """
    ids, mask = encoded["input_ids"], encoded["attention_mask"]
    types = encoded.get("token_type_ids")
    if types is None:
        types = torch.zeros_like(ids)
    pixels = encoded.get("pixel_values")
    n = int(ids.shape[0])
    if n < 2 or images_per_row not in (1, 2) or pixels is None or pixels.shape[0] != n * images_per_row:
        return None
    rows = [ids[i][mask[i] == 1] for i in range(n)]
    row_types = [types[i][mask[i] == 1] for i in range(n)]
    width = min(len(r) for r in rows) - 1  # every suffix keeps at least one token
    common = torch.stack([r[:width] for r in rows])
    differs = (common != common[0]).any(dim=0).nonzero()
    p = int(differs[0]) if len(differs) else width
    # the prefix must hold the first image whole and no token of a later one
    per_image = int((rows[0] == image_token_id).sum()) // images_per_row
    if per_image == 0 or int((rows[0][:p] == image_token_id).sum()) != per_image:
        return None
    keys: dict[object, int] = {}
    row_prefix = torch.tensor([keys.setdefault(k, len(keys)) for k in scene_keys], dtype=torch.long)
    firsts = [row_prefix.tolist().index(g) for g in range(len(keys))]
    suffix = max(len(r) for r in rows) - p
    out_ids = torch.full((n, p + suffix), pad_id, dtype=ids.dtype)
    out_mask = torch.zeros((n, p + suffix), dtype=mask.dtype)
    out_types = torch.zeros((n, p + suffix), dtype=types.dtype)
    for i, (r, t) in enumerate(zip(rows, row_types, strict=True)):
        s = len(r) - p
        out_ids[i, :p], out_ids[i, p + suffix - s :] = r[:p], r[p:]
        out_mask[i, :p], out_mask[i, p + suffix - s :] = 1, 1
        out_types[i, :p], out_types[i, p + suffix - s :] = t[:p], t[p:]
    firsts_t = torch.tensor(firsts)
    return SharedPrompts(
        prefix_ids=torch.stack([rows[i][:p] for i in firsts]),
        prefix_types=torch.stack([row_types[i][:p] for i in firsts]),
        prefix_pixels=pixels[firsts_t * images_per_row],
        row_prefix=row_prefix,
        ids=out_ids,
        mask=out_mask,
        types=out_types,
        suffix_pixels=pixels[1::2] if images_per_row == 2 else None,
    )


#: The cache keyword of each model class seen (a signature inspection per class, not per batch).
_CACHE_KEYWORDS: dict[type, str] = {}


def cache_keyword(model: Any) -> str:
    """The name generate and forward take the KV cache by: ``cache`` (transformers >= 5.2x) or the older one."""
    cls = type(model)
    if cls not in _CACHE_KEYWORDS:
        params = inspect.signature(cls.forward).parameters
        _CACHE_KEYWORDS[cls] = "cache" if "cache" in params else "past_key_values"
    return _CACHE_KEYWORDS[cls]
