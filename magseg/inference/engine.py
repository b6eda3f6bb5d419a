"""Generation engines for inference: text plus the number of tokens each completion really took."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from magseg.model.generate import HFEngine, Request, render_prompts


@runtime_checkable
class Engine(Protocol):
    """Anything that turns (images, prompt) requests into completion texts, in order."""

    def generate(self, batch: Sequence[Request]) -> list[str]: ...


@runtime_checkable
class CountingEngine(Engine, Protocol):
    """An engine that also reports the generated token count of every completion."""

    def generate_counted(self, batch: Sequence[Request]) -> list[tuple[str, int]]: ...


class CountingHFEngine(HFEngine):
    """HFEngine that also counts each completion's generated tokens from the output ids.

    A completion's count runs up to and including its stop token (the model paid for it); the padding
    ``generate`` appends after a sequence stopped is not counted. A completion cut at ``max_new_tokens``
    counts ``max_new_tokens``.
    """

    @torch.inference_mode()
    def _generate_counted_batch(self, batch: Sequence[Request]) -> list[tuple[str, int]]:
        inputs = render_prompts(self.processor, batch).to(self.model.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": self.temperature} if self.do_sample else {"do_sample": False}
        )
        out = self.model.generate(
            **inputs,
            max_new_tokens=self.max_new_tokens,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            **sampling,
        )
        new = out[:, inputs["input_ids"].shape[1] :]
        counts = token_counts(new, self.eos_token_id)
        texts = self.processor.batch_decode(new, skip_special_tokens=True)
        return list(zip(texts, counts, strict=True))

    def generate_counted(self, batch: Sequence[Request]) -> list[tuple[str, int]]:
        """(completion text, generated token count) for each request, in order."""
        results: list[tuple[str, int]] = []
        for start in range(0, len(batch), self.batch_size):
            results.extend(self._generate_counted_batch(batch[start : start + self.batch_size]))
        return results

    def generate(self, batch: Sequence[Request]) -> list[str]:
        return [text for text, _ in self.generate_counted(batch)]


def token_counts(new_tokens: torch.Tensor, stop_ids: Sequence[int]) -> list[int]:
    """Per row of generated ids (B, T): the tokens up to and including the first stop id (T if none)."""
    if new_tokens.shape[1] == 0:
        return [0] * int(new_tokens.shape[0])
    is_stop = torch.isin(new_tokens, torch.tensor(list(stop_ids), device=new_tokens.device))
    first = is_stop.int().argmax(dim=1) + 1  # argmax returns the first of equal maxima
    first[~is_stop.any(dim=1)] = int(new_tokens.shape[1])
    return [int(n) for n in first.tolist()]


def generate_counted(
    engine: Engine, batch: Sequence[Request], processor: Any = None
) -> tuple[list[str], list[int], bool]:
    """Texts and token counts from any engine; ``measured`` is False when counts were re-tokenised.

    An engine without ``generate_counted`` (e.g. a remote one returning only text) gets its texts
    re-tokenised with ``processor``'s tokenizer (an estimate: the stop token is added, as the model
    wrote one); with no processor the counts are 0.
    """
    if isinstance(engine, CountingEngine):
        pairs = engine.generate_counted(batch)
        return [t for t, _ in pairs], [n for _, n in pairs], True
    texts = engine.generate(batch)
    if processor is None:
        return texts, [0] * len(texts), False
    tok = getattr(processor, "tokenizer", processor)
    return texts, [len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts], False
