"""KV layers with room to grow hold what transformers' dynamic layers hold, step for step."""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicLayer, DynamicSlidingWindowLayer

from magseg.model.kvroom import RoomyLayer, with_room


def _filled(layer: DynamicLayer, rows: int = 3, length: int = 5) -> DynamicLayer:
    layer.update(torch.randn(rows, 2, length, 4), torch.randn(rows, 2, length, 4))
    return layer


def test_roomy_layer_updates_selects_and_sizes_masks_like_a_dynamic_layer() -> None:
    torch.manual_seed(0)
    plain = _filled(DynamicLayer())
    roomy = RoomyLayer(_clone(plain), extra=2)
    for step in range(4):  # two steps in the room, two past it (it grows like the plain layer)
        k, v = torch.randn(3 if step < 2 else 2, 2, 1, 4), torch.randn(3 if step < 2 else 2, 2, 1, 4)
        if step == 2:  # a row ended: both drop it
            keep = torch.tensor([0, 2])
            plain.batch_select_indices(keep)
            roomy.batch_select_indices(keep)
        want = plain.update(k, v)
        got = roomy.update(k, v)
        assert torch.equal(want[0], got[0]) and torch.equal(want[1], got[1])
        assert plain.get_seq_length() == roomy.get_seq_length()
        assert plain.get_mask_sizes(1) == roomy.get_mask_sizes(1)


def test_with_room_swaps_only_layers_it_can_stand_in_for() -> None:
    roomy_sliding = _filled(DynamicSlidingWindowLayer(sliding_window=64))
    filling = _filled(DynamicSlidingWindowLayer(sliding_window=8))  # 5 cached + 16 more would fill it
    cache = Cache(layers=[_filled(DynamicLayer()), roomy_sliding, filling])
    with_room(cache, 16)
    assert isinstance(cache.layers[0], RoomyLayer) and isinstance(cache.layers[1], RoomyLayer)
    assert cache.layers[2] is filling
    assert cache.is_sliding == [False, True, True]  # what the mask builder reads


def _clone(layer: DynamicLayer) -> DynamicLayer:
    copy = DynamicLayer()
    copy.update(layer.keys.clone(), layer.values.clone())
    return copy
