"""Greedy decoding in a lean loop: one forward per token, finished rows dropped from the batch at once.

``generate`` pays per step for machinery greedy RRLE does not use (logits processors, stopping criteria,
input preparation) and keeps computing rows that already ended. This loop feeds the model exactly what
generate feeds it (positions counted from the attention mask, the same cache), takes the argmax, and
drops each row from the batch and the cache the step it writes a stop token: the same tokens, token for
token (tested against generate), at a fraction of the per-step cost on CPU. A row may also end once it has
written a given number of RRLE rows (``row_limits``: the seam re-reads of magseg.inference.rereads use only
their first rows), its tokens up to there the same. It also keeps the probability
the model gave each token it wrote (a softmax per step over the vocabulary: the confidence signal of
magseg.confidence, free beside the forward pass).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from magseg.model.kvroom import with_room
from magseg.model.prefix import cache_keyword

__all__ = ["Greedy", "greedy_ids"]


class Greedy(NamedTuple):
    """Generated ids (B, T), pad after each row's stop token, each token's probability (B, T; 0 at pads;
    None when not asked for) and, when known, the tokens each row wrote (B,; its stop token included)."""

    ids: torch.Tensor
    probs: torch.Tensor | None
    lengths: torch.Tensor | None = None


@torch.inference_mode()
def greedy_ids(
    model: Any,
    ids: torch.Tensor,
    mask: torch.Tensor,
    *,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    pad_id: int,
    token_type_ids: torch.Tensor | None = None,
    pixel_values: torch.Tensor | None = None,
    cache: Any = None,
    with_probs: bool = True,
    logit_bias: torch.Tensor | None = None,
    row_limits: torch.Tensor | None = None,
    newlines: torch.Tensor | None = None,
) -> Greedy:
    """The generated ids (B, max_new_tokens) of the prompts ``ids`` (B, L) and the probability of each.

    ``cache`` holds the KV of the first ``cache.get_seq_length()`` positions of every row (a shared prefix,
    magseg.model.prefix); ``pixel_values`` are then the images of the uncached part only. Without
    ``with_probs`` no softmax is taken (``probs`` is None). ``logit_bias`` (V,) is added to the logits the
    argmax reads (class_logit_bias); a token's probability stays the model's own, unbiased. With
    ``row_limits`` (B,; 0: none) and ``newlines`` (V,: how many line breaks each token id writes) a row also
    ends with the token that completes its ``row_limits``-th line, as if that token were a stop token.
    """
    key = cache_keyword(model)
    cached = cache.get_seq_length() if cache is not None else 0
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=ids[:, cached:],
        attention_mask=mask,
        position_ids=positions[:, cached:],
        token_type_ids=token_type_ids,
        pixel_values=pixel_values,
        use_cache=True,
        logits_to_keep=1,
        **{key: cache},
    )
    cache = with_room(getattr(out, key), max_new_tokens)  # decode steps write K/V in place, no re-copy
    rows = ids.shape[0]
    result = torch.full((rows, max_new_tokens), pad_id, dtype=torch.long, device=ids.device)
    probs = torch.zeros((rows, max_new_tokens), dtype=torch.float32, device=ids.device)
    stops = torch.tensor(list(stop_ids), device=ids.device)
    active = torch.arange(rows, device=ids.device)
    lengths = torch.full((rows,), max_new_tokens, dtype=torch.long, device=ids.device)
    limited = row_limits is not None and newlines is not None and bool((row_limits > 0).any())
    if limited:
        assert row_limits is not None and newlines is not None
        limits, lines = row_limits.to(ids.device), newlines.to(ids.device)
        written = torch.zeros(rows, dtype=torch.long, device=ids.device)
    token, prob = _pick(out.logits[:, -1], with_probs, logit_bias)
    position = positions[:, -1]
    rule = _step_mask_rule(model)
    for step in range(max_new_tokens):
        result[active, step] = token
        if prob is not None:
            probs[active, step] = prob
        ended = torch.isin(token, stops)
        if limited:
            written[active] += lines[token]
            ended |= (limits[active] > 0) & (written[active] >= limits[active])
        if ended.any():
            lengths[active[ended]] = step + 1
            keep = (~ended).nonzero().squeeze(1)
            if len(keep) == 0:
                break
            active, token, mask, position = active[keep], token[keep], mask[keep], position[keep]
            cache.batch_select_indices(keep)
        if step + 1 == max_new_tokens:
            break
        mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
        position = position + 1
        out = model(
            input_ids=token[:, None],
            attention_mask=_step_masks(mask, rule),
            position_ids=position[:, None],
            use_cache=True,
            **{key: cache},
        )
        cache = getattr(out, key)
        token, prob = _pick(out.logits[:, -1], with_probs, logit_bias)
    return Greedy(result, probs if with_probs else None, lengths)


def _step_mask_rule(model: Any) -> tuple[tuple[str, ...], int] | None:
    """When decode steps may be handed their attention masks ready-made: (the model's layer types, the key
    count from which they may not), or None when never (see _step_masks). Read once per decode."""
    text = model.config.get_text_config()
    types = tuple(sorted(set(getattr(text, "layer_types", None) or ())))
    window: int | None = getattr(text, "sliding_window", None)
    if (
        getattr(text, "_attn_implementation", None) != "sdpa"
        or getattr(text, "use_bidirectional_attention", False)
        or not set(types) <= {"full_attention", "sliding_attention"}
    ):
        return None
    if "sliding_attention" not in types:
        return types, sys.maxsize
    return (types, window) if window is not None else None


def _step_masks(mask: torch.Tensor, rule: tuple[tuple[str, ...], int] | None) -> Any:
    """The attention masks of one decode step, built as transformers' SDPA path builds them, or ``mask``.

    Passed as a per-layer-type mapping they spare the model rebuilding them every step. For one new token
    every cached key is in the past, so a key is hidden only by padding: no mask at all when there is none
    (SDPA without a mask, as transformers skips it), else the padding mask. Where the rule says no (another
    attention implementation, other layer types, a sliding window the keys reach) the 2D ``mask`` is passed
    and transformers builds the masks itself.
    """
    if rule is None or mask.shape[1] >= rule[1]:
        return mask
    padded = None if bool(mask.all()) else mask.bool()[:, None, None, :]
    return dict.fromkeys(rule[0], padded)


def _pick(
    logits: torch.Tensor, with_prob: bool, bias: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The argmax token of each row (of the biased logits when a bias is given) and, when asked, the
    probability the model gave it (its softmax value; the largest one without a bias)."""
    biased = logits if bias is None else logits + bias
    token = biased.argmax(-1)  # generate's greedy choice, ties to the first id
    if not with_prob:
        return token, None
    prob = logits.float().softmax(-1).gather(-1, token[:, None]).squeeze(-1)
    return token, prob
