"""Generation engines for inference: text plus the number of tokens each completion really took."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from magseg.model.generate import HFEngine, Request, Scored


@runtime_checkable
class Engine(Protocol):
    """Anything that turns (images, prompt) requests into completion texts, in order."""

    def generate(self, batch: Sequence[Request]) -> list[str]: ...


@runtime_checkable
class CountingEngine(Engine, Protocol):
    """An engine that also reports the generated token count of every completion."""

    def generate_counted(self, batch: Sequence[Request]) -> list[tuple[str, int]]: ...


@runtime_checkable
class ScoringEngine(CountingEngine, Protocol):
    """An engine that also reports the probability of every token it wrote (the confidence signal)."""

    def generate_scored(self, batch: Sequence[Request]) -> list[Scored]: ...


#: HF generate counts its tokens itself (HFEngine.generate_counted); the name says what callers need.
CountingHFEngine = HFEngine


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


def generate_scored(
    engine: Engine,
    batch: Sequence[Request],
    processor: Any = None,
    row_limits: Sequence[int] | None = None,
) -> tuple[list[Scored], bool]:
    """Completions with token counts and, where the engine reports them, token probabilities (else
    ``tokens_text`` is None); ``measured`` as in generate_counted. ``row_limits`` (one per request; 0:
    none) lets an engine that can (``stops_at_rows``: the HF engine) end a completion after that many
    RRLE rows; any other writes them all, and the caller reads only the rows it asked for."""
    if row_limits is not None and getattr(engine, "stops_at_rows", False):
        return engine.generate_scored(batch, row_limits=row_limits), True  # type: ignore[attr-defined]
    if isinstance(engine, ScoringEngine):
        return engine.generate_scored(batch), True
    texts, counts, measured = generate_counted(engine, batch, processor)
    return [Scored(t, n, None) for t, n in zip(texts, counts, strict=True)], measured
