"""KV cache layers with room to grow: decoding writes each new key and value in place instead of re-copying.

transformers' DynamicLayer appends a token by concatenating the whole cache with it, so every decode step
copies every layer's keys and values (for a batch of 128 patch prompts of ~300 tokens: tens of MB a step,
a large share of the tiny model's step on CPU). ``with_room`` swaps each such layer, after the prefill, for
one whose keys and values live in a buffer with room for ``extra`` more positions: ``update`` writes the
new position and returns a view of the filled part. Attention sees the same keys, values and mask sizes,
so decoding writes the same tokens. Layers it cannot stand in for (a sliding window that would fill, other
layer kinds) are left as they are.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

__all__ = ["RoomyLayer", "with_room"]


class RoomyLayer(DynamicLayer):
    """A full-attention (or never-filling sliding-window) cache layer whose K/V sit in a preallocated buffer."""

    def __init__(self, layer: DynamicLayer, extra: int) -> None:
        super().__init__()
        self.is_sliding = layer.is_sliding
        keys, values = layer.keys, layer.values
        if keys is None or values is None:
            raise ValueError("RoomyLayer needs a filled layer (run the prefill first)")
        rows, heads, length, _ = keys.shape
        self._keys = keys.new_empty((rows, heads, length + extra, keys.shape[-1]))
        self._values = values.new_empty((rows, heads, length + extra, values.shape[-1]))
        self._keys[:, :, :length] = keys
        self._values[:, :, :length] = values
        self.length = length
        self.device = keys.device
        self.is_initialized = True
        self._view()

    def _view(self) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self._keys[:, :, : self.length], self._values[:, :, : self.length]
        self.keys, self.values = keys, values
        return keys, values

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = key_states.shape[-2]
        if self.length + n > self._keys.shape[-2]:  # out of room: grow like a DynamicLayer would
            self._keys = torch.cat([self._keys[:, :, : self.length], key_states], dim=-2)
            self._values = torch.cat([self._values[:, :, : self.length], value_states], dim=-2)
        else:
            self._keys[:, :, self.length : self.length + n] = key_states
            self._values[:, :, self.length : self.length + n] = value_states
        self.length += n
        return self._view()

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._keys = self._keys[indices]
        self._values = self._values[indices]
        self._view()


def with_room(cache: Any, extra: int) -> Any:
    """``cache`` with each plain dynamic layer (and each sliding one its window will not fill within ``extra``
    more positions) replaced by a RoomyLayer; the same object, changed in place."""
    layers = getattr(cache, "layers", None)
    if not layers:
        return cache
    for i, layer in enumerate(layers):
        if not getattr(layer, "is_initialized", False) or layer.keys is None or layer.keys.dim() != 4:
            continue
        if type(layer) is DynamicSlidingWindowLayer:
            if layer.cumulative_length + extra >= layer.sliding_window - 1 or layer.record_past:
                continue
        elif type(layer) is not DynamicLayer:
            continue
        layers[i] = RoomyLayer(layer, extra)
    return cache
