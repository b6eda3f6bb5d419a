"""Tests of HFEngine: prompts rendered like training, left padding, order kept, turn end respected."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from magseg.model import HFEngine, load_model, render_prompts
from magseg.samples import load_samples


@pytest.fixture(scope="module")
def requests(tiny_samples: Path) -> list:
    ds = load_samples(tiny_samples).select(range(3))
    return [(row["images"], row["prompt"]) for row in ds]


def test_render_left_pads_and_ends_with_the_model_turn(tiny_model: Path, requests: list) -> None:
    _, processor = load_model(tiny_model)
    inputs = render_prompts(processor, requests)
    assert inputs["pixel_values"].shape[0] == 2 * len(requests)  # scene + crop per request
    tok = processor.tokenizer
    for ids, mask in zip(inputs["input_ids"], inputs["attention_mask"], strict=True):
        text = tok.decode(ids[mask.bool()])
        assert text.startswith("<bos><start_of_turn>user\n")
        assert text.endswith("<start_of_turn>model\n")
        assert text.count("<start_of_image>") == 2
        assert mask[-1] == 1  # left padding: every prompt ends at the last position


def test_generate_is_batch_invariant(tiny_model: Path, requests: list) -> None:
    model, processor = load_model(tiny_model)
    one = HFEngine(model, processor, max_new_tokens=12, batch_size=1).generate(requests)
    three = HFEngine(model, processor, max_new_tokens=12, batch_size=3).generate(requests)
    assert len(one) == 3 and all(isinstance(t, str) for t in one)
    assert one == three
    assert all("<end_of_turn>" not in t and "<pad>" not in t for t in one)


def test_stops_at_end_of_turn(tiny_model: Path, requests: list) -> None:
    model, processor = load_model(tiny_model)
    end = processor.tokenizer.convert_tokens_to_ids("<end_of_turn>")

    def end_wins(module: torch.nn.Module, args: tuple, logits: torch.Tensor) -> torch.Tensor:
        return logits.index_fill(-1, torch.tensor([end]), 1e4)

    # <end_of_turn> wins every step: the engine must stop at once and return empty text
    hook = model.lm_head.register_forward_hook(end_wins)
    try:
        texts = HFEngine(model, processor, max_new_tokens=8).generate(requests[:2])
    finally:
        hook.remove()
    assert texts == ["", ""]


def test_lean_greedy_loop_writes_what_generate_writes(tmp_path: Path) -> None:
    """The bundled (trained) model: rows stop at different steps, so dropped rows are exercised."""
    from magseg.bundled import BUNDLED_MODEL
    from magseg.inference import ModelFormat, scene_requests
    from magseg.model.decode import greedy_ids
    from magseg.sources import list_scenes
    from magseg.synth import write_dataset

    model, processor = load_model(BUNDLED_MODEL)
    image = list_scenes(write_dataset(tmp_path / "s", 1, 256, 0.5, seed=4))[0].load().image
    _, requests = scene_requests(image, ModelFormat(patch=64, grid=8, context_size=64, window=512))
    inputs = render_prompts(processor, requests)
    engine = HFEngine(model, processor, max_new_tokens=96)
    with torch.inference_mode():
        out = model.generate(
            **inputs,
            max_new_tokens=96,
            eos_token_id=engine.eos_token_id,
            pad_token_id=engine.pad_token_id,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
        reference = out.sequences[:, inputs["input_ids"].shape[1] :]
        ref_probs = model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True).exp()
    greedy = greedy_ids(
        model,
        inputs["input_ids"],
        inputs["attention_mask"],
        max_new_tokens=96,
        stop_ids=engine.eos_token_id,
        pad_id=engine.pad_token_id,
        token_type_ids=inputs["token_type_ids"],
        pixel_values=inputs["pixel_values"],
    )
    lean = greedy.ids
    assert torch.equal(lean[:, : reference.shape[1]], reference)
    assert (lean[:, reference.shape[1] :] == engine.pad_token_id).all()
    written = reference != engine.pad_token_id  # the probability of each token a row wrote
    assert torch.allclose(greedy.probs[:, : reference.shape[1]][written], ref_probs[written], atol=1e-4)
    lengths = set((reference != engine.pad_token_id).sum(dim=1).tolist())
    assert len(lengths) > 1  # rows ended at different steps
    assert processor.batch_decode(reference, skip_special_tokens=True) == engine.generate(requests)


def _prefix_spans(tok: object, ids: list[int]) -> tuple[str, list[int]]:
    """The slow, always-right spans: every prefix of the row decoded."""
    special = set(tok.all_special_ids)  # type: ignore[attr-defined]
    prefixes = tok.batch_decode([ids[: k + 1] for k in range(len(ids))], skip_special_tokens=True)  # type: ignore[attr-defined]
    text = prefixes[-1] if prefixes else ""
    return text, [min(len(t), len(text)) for i, t in zip(ids, prefixes, strict=True) if i not in special]


def test_scored_rows_spans_match_prefix_decoding() -> None:
    """Token end offsets from per-token pieces equal those of decoding every prefix, byte tokens included."""
    from transformers import AutoTokenizer

    from magseg.bundled import BUNDLED_MODEL
    from magseg.model.generate import scored_rows

    tok = AutoTokenizer.from_pretrained(BUNDLED_MODEL)
    rrle = tok("field *7| tree *3, background *5\n", add_special_tokens=False)["input_ids"]
    accented = tok("é ü 田", add_special_tokens=False)["input_ids"]
    byte_ids = accented[:2]  # byte-level BPE: "é" is two tokens, neither a character alone
    assert tok.decode(byte_ids) == "é" and tok.decode(byte_ids[:1]) != "é"
    stop = tok.convert_tokens_to_ids("<end_of_turn>")
    rows = [rrle + [stop], accented + [stop], rrle[:3] + byte_ids + rrle[3:], [byte_ids[0]], []]
    probs = [[0.5 + k / 100 for k in range(len(r))] for r in rows]
    for row, p, scored in zip(rows, probs, scored_rows(tok, rows, probs), strict=True):
        text, ends = _prefix_spans(tok, row)
        assert scored.text == text and scored.tokens == len(row)
        assert scored.tokens_text is not None
        assert [e for e, _ in scored.tokens_text] == ends
        kept = [q for i, q in zip(row, p, strict=True) if i not in set(tok.all_special_ids)]
        assert [q for _, q in scored.tokens_text] == kept


def test_class_bias_names_a_class_more_often_and_keeps_probabilities_unbiased(
    tiny_model: Path, requests: list
) -> None:
    """A logit bias on a class's name tokens changes the greedy choice towards it; no bias changes nothing,
    and each token's reported probability stays the model's own."""
    from magseg.errors import InputError
    from magseg.model.generate import class_logit_bias

    model, processor = load_model(tiny_model)
    tok = processor.tokenizer
    bias = class_logit_bias(tok, {"well": 50.0})
    assert len(bias) == 2 and set(bias.values()) == {50.0}  # "well" and " well"
    assert tok.decode(sorted(bias)).replace(" ", "") == "wellwell"
    plain = HFEngine(model, processor, max_new_tokens=24, batch_size=3)
    unbiased = HFEngine(model, processor, max_new_tokens=24, batch_size=3, logit_bias={})
    biased = HFEngine(model, processor, max_new_tokens=24, batch_size=3, logit_bias=bias)
    assert unbiased.generate(requests) == plain.generate(requests)
    scored = biased.generate_scored(requests)
    assert all("well" in s.text for s in scored)  # a bias this large names it wherever a name is written
    assert all(0.0 < q <= 1.0 for s in scored for _, q in s.tokens_text or ())
    generate_path = HFEngine(model, processor, max_new_tokens=24, batch_size=3, logit_bias=bias, lean=False)
    assert generate_path.generate(requests) == [s.text for s in scored]  # generate's sequence_bias agrees
    with pytest.raises(InputError, match="unknown class 'wel'"):
        class_logit_bias(tok, {"wel": 1.0})


def test_row_limits_end_a_completion_after_its_rows_with_the_same_tokens(tmp_path: Path) -> None:
    """The bundled model: a completion limited to k RRLE rows is the first k lines of the unlimited one,
    its count that prefix's tokens; a limit of 0 changes nothing; the generate path writes every row."""
    from magseg.bundled import BUNDLED_MODEL
    from magseg.inference import ModelFormat, scene_requests
    from magseg.sources import list_scenes
    from magseg.synth import write_dataset

    model, processor = load_model(BUNDLED_MODEL)
    image = list_scenes(write_dataset(tmp_path / "s", 1, 256, 0.5, seed=4))[0].load().image
    _, requests = scene_requests(image, ModelFormat(patch=64, grid=8, context_size=64, window=512))
    requests = requests[:6]
    engine = HFEngine(model, processor, max_new_tokens=96)
    full = engine.generate_scored(requests)
    limits = [1, 3, 0, 6, 2, 8]
    cut = engine.generate_scored(requests, row_limits=limits)
    for whole, part, k in zip(full, cut, limits, strict=True):
        lines = whole.text.split("\n")
        if k == 0 or len(lines) <= k:  # the same completion (probabilities to float noise: other batch rows)
            assert (part.text, part.tokens) == (whole.text, whole.tokens)
            continue
        assert part.text == "\n".join(lines[:k]) + "\n"
        assert part.tokens < whole.tokens and part.tokens_text is not None and whole.tokens_text is not None
        head = whole.tokens_text[: part.tokens]
        assert [e for e, _ in part.tokens_text] == [e for e, _ in head]
        assert [p for _, p in part.tokens_text] == pytest.approx([p for _, p in head], abs=1e-5)
    assert sum(p.tokens for p in cut) < sum(w.tokens for w in full)
    engine.lean = False  # model.generate: no row limits, every row written
    assert [s.text for s in engine.generate_scored(requests, row_limits=limits)] == [s.text for s in full]
    with pytest.raises(ValueError, match="row limits"):
        engine.generate_scored(requests, row_limits=[1])
