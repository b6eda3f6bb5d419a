"""VLLMEngine's reading of vLLM outputs (vLLM itself needs a GPU: a stand-in LLM gives its output shape)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

from magseg.bundled import BUNDLED_MODEL
from magseg.codec import cell_scores, encode
from magseg.inference.vllm_engine import VLLMEngine
from magseg.model import load_model


class _StandInLLM:
    """vllm.LLM.generate's output shape: outputs[0].token_ids and, per step, {token id: Logprob}."""

    def __init__(self, ids: list[int], probs: list[float] | None) -> None:
        self.ids, self.probs = ids, probs

    def generate(self, prompts: list[Any], params: Any, use_tqdm: bool) -> list[Any]:
        steps = None
        if self.probs is not None:
            steps = [
                {i: SimpleNamespace(logprob=math.log(p))} for i, p in zip(self.ids, self.probs, strict=True)
            ]
        return [
            SimpleNamespace(outputs=[SimpleNamespace(token_ids=self.ids, logprobs=steps)]) for _ in prompts
        ]


def test_token_probabilities_from_vllm_logprobs() -> None:
    _, processor = load_model(BUNDLED_MODEL)
    tok = processor.tokenizer
    grid = np.array([[1, 1, 2, 2], [0, 0, 0, 0]])
    text = encode(grid)
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<end_of_turn>")]
    probs = [0.9] * len(ids)
    probs[1] = 0.4  # the second token: part of the first run
    engine = object.__new__(VLLMEngine)
    engine.processor, engine.params = processor, None
    engine._prompts = lambda batch: list(batch)  # type: ignore[method-assign]
    engine.llm = _StandInLLM(ids, probs)
    (scored,) = engine.generate_scored([None])  # type: ignore[list-item]
    assert scored.text == text and scored.tokens == len(ids)
    assert scored.tokens_text is not None and len(scored.tokens_text) == len(ids) - 1  # stop token left out
    cells = cell_scores(scored.text, scored.tokens_text, grid.shape, valid=True)
    assert cells[0, 0] == np.float32(0.4) and cells[1, 0] == np.float32(0.9)
    assert engine.generate_counted([None]) == [(text, len(ids))]  # type: ignore[list-item]
    engine.llm = _StandInLLM(ids, None)  # an older vLLM or logprobs off: no probabilities, same text
    (bare,) = engine.generate_scored([None])  # type: ignore[list-item]
    assert bare.text == text and bare.tokens_text is None
