"""Tests of the GRPO reward: mean DICE of decoded rollouts, in TRL's calling convention."""

from __future__ import annotations

import numpy as np
import pytest

from magseg.codec import encode
from magseg.train.reward import completion_text, decode_repair_rate, dice_reward

TRUTH = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 4, 4], [0, 0, 4, 4]])
SOLUTION = encode(TRUTH)


def _conv(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]  # how GRPOTrainer hands conversational completions


def test_perfect_rollout_scores_one() -> None:
    # Gemma3's template trims the final newline: the rollout never has it
    assert dice_reward([_conv(SOLUTION.rstrip("\n"))], solution=[SOLUTION], grid=[4]) == [pytest.approx(1.0)]


def test_garbage_scores_near_zero() -> None:
    rewards = dice_reward(
        [_conv("I cannot see any fields."), _conv("")], solution=[SOLUTION] * 2, grid=[4, 4]
    )
    assert all(r < 1e-3 for r in rewards)


def test_partial_rollout_scores_the_mean_class_dice() -> None:
    pred = TRUTH.copy()
    pred[2:, 2:] = 1  # the pond written as field
    # field: 2*8 / (12 + 8); pond: missed entirely (0); background is left out
    expected = (16 / 20 + 0.0) / 2
    (reward,) = dice_reward([_conv(encode(pred))], solution=[SOLUTION], grid=[4])
    assert reward == pytest.approx(expected, abs=1e-6)


def test_malformed_rollout_scores_what_it_decodes_to() -> None:
    logged: dict[str, float] = {}
    rows = SOLUTION.split("\n ")
    broken = "\n ".join(rows[:3])  # last row lost: the decoder repeats row 3, so the pond is still whole
    rewards = dice_reward(
        [_conv(broken), _conv(SOLUTION)],
        solution=[SOLUTION] * 2,
        grid=[4, 4],
        log_metric=lambda name, value: logged.__setitem__(name, value),
        trainer_state=None,  # TRL passes extra keywords; they are ignored
    )
    assert rewards[0] == pytest.approx(1.0)  # repaired to the truth here
    assert logged == {"decode_repair_rate": 0.5}


def test_grid_size_comes_from_the_sample() -> None:
    sol8 = encode(np.kron(TRUTH, np.ones((2, 2), dtype=int)))
    rewards = dice_reward([sol8, SOLUTION], solution=[sol8, SOLUTION], grid=[8, 4])  # plain strings too
    assert rewards == [pytest.approx(1.0), pytest.approx(1.0)]


def test_decode_repair_rate_and_text_forms() -> None:
    assert decode_repair_rate([SOLUTION, "junk", _conv(SOLUTION)], 4) == pytest.approx(1 / 3)
    assert decode_repair_rate([], 4) == 0.0
    blocks = [{"role": "assistant", "content": [{"type": "text", "text": "field *4"}]}]
    assert completion_text(blocks) == "field *4"
