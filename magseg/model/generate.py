"""Batched greedy generation with Hugging Face generate, rendering prompts exactly as training does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from PIL import Image
from trl.data_utils import prepare_multimodal_messages

from magseg.classes import CLASSES
from magseg.errors import InputError
from magseg.model.decode import Greedy, greedy_ids
from magseg.model.prefix import cache_keyword, split_prompts

#: One request: the images of a sample (scene, crop) and its conversational prompt (magseg.prompts).
Request = tuple[Sequence[Image.Image], list[dict[str, Any]]]

END_OF_TURN = "<end_of_turn>"


class RowLimited(NamedTuple):
    """A request whose completion may end after ``rows`` RRLE rows: the reader uses no more (the seam
    re-reads of magseg.inference.rereads), for a batched caller that hands requests over one by one."""

    request: Request
    rows: int


class Scored(NamedTuple):
    """A completion, the tokens it took (stop token included) and, per written token, (end offset, p).

    ``tokens_text`` pairs the end offset of each token's text in ``text`` with the probability the
    model gave that token (greedy: its largest softmax value); special tokens are left out.
    """

    text: str
    tokens: int
    tokens_text: tuple[tuple[int, float], ...] | None  # None: the engine reports no probabilities


def render_prompts(processor: Any, batch: Sequence[Request]) -> Any:
    """Tokenise a batch of prompts, left padded, with the generation prompt: GRPO's own rendering.

    Images fill the prompt's image placeholders in order, with TRL's helper, as in SFT and GRPO.
    """
    conversations = [
        prepare_multimodal_messages(list(messages), images=list(images)) for images, messages in batch
    ]
    return processor.apply_chat_template(
        conversations,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={"padding": True, "padding_side": "left"},
    )


class HFEngine:
    """Generate RRLE text for (images, prompt) requests in batches with ``model.generate``."""

    #: generate_scored takes ``row_limits`` (honoured by the lean greedy loop; generate writes every row)
    stops_at_rows = True

    def __init__(
        self,
        model: Any,
        processor: Any,
        max_new_tokens: int = 512,
        batch_size: int = 8,
        do_sample: bool = False,
        temperature: float = 1.0,
        share_prefix: bool = True,
        lean: bool = True,
        scores: bool = True,
        logit_bias: Mapping[int, float] | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.do_sample = do_sample
        self.temperature = temperature
        tok = processor.tokenizer
        # Stop at the end of the model's turn whatever the checkpoint's generation config says.
        stops = {tok.convert_tokens_to_ids(END_OF_TURN), tok.eos_token_id}
        self.eos_token_id = sorted(i for i in stops if i is not None and i != tok.unk_token_id)
        self.pad_token_id = tok.pad_token_id
        self.share_prefix = share_prefix
        self.lean = (
            lean  # greedy: magseg.model.decode's loop instead of generate (same tokens, less per step)
        )
        self.scores = scores  # keep each written token's probability (magseg.confidence's signal)
        # token id -> a bias added to its logit before the choice (class_logit_bias); None: the model's own
        self.logit_bias = dict(logit_bias) if logit_bias else None
        self.prefill_tokens = 0  # prompt tokens prefilled so far (a prefix shared by n requests counts once)
        self.prompt_tokens = 0  # prompt tokens of the requests (what prefill costs without sharing)
        self._newlines: torch.Tensor | None = None  # line breaks each token id writes (row limits)

    def _options(self) -> dict[str, Any]:
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": self.temperature} if self.do_sample else {"do_sample": False}
        )
        bias = {"sequence_bias": {(i,): b for i, b in self.logit_bias.items()}} if self.logit_bias else {}
        return {
            "max_new_tokens": self.max_new_tokens,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            **sampling,
            **bias,
        }

    def _bias_tensor(self, logits_size: int, device: Any) -> torch.Tensor | None:
        if not self.logit_bias:
            return None
        bias = torch.zeros(logits_size, device=device)
        bias[list(self.logit_bias)] = torch.tensor(list(self.logit_bias.values()), device=device)
        return bias

    def _newline_counts(self) -> torch.Tensor:
        """How many line breaks (RRLE row ends) each token id of the model's vocabulary writes."""
        if self._newlines is None:
            size = self.model.get_output_embeddings().out_features
            tok = self.processor.tokenizer
            pieces = tok.batch_decode([[i] for i in range(min(size, len(tok)))])
            counts = torch.zeros(size, dtype=torch.long)
            counts[: len(pieces)] = torch.tensor([p.count("\n") for p in pieces], dtype=torch.long)
            self._newlines = counts
        return self._newlines

    @torch.inference_mode()
    def _generate_ids(self, batch: Sequence[Request], row_limits: Sequence[int] | None = None) -> Greedy:
        """The generated ids (B, T) of one batch, prompt stripped, and their probabilities; scene prefixes
        prefilled once when shared. ``row_limits`` (per request; 0: none): end a completion once it has
        written that many RRLE rows (lean greedy decoding only)."""
        inputs = render_prompts(self.processor, batch)
        self.prompt_tokens += int(inputs["attention_mask"].sum())
        shared = None
        if self.share_prefix:
            shared = split_prompts(
                inputs,
                [
                    (images[0].size, images[0].tobytes()) if images else i
                    for i, (images, _) in enumerate(batch)
                ],
                image_token_id=self.model.config.image_token_id,
                images_per_row=len(batch[0][0]),
                pad_id=self.pad_token_id,
            )
        device, dtype = self.model.device, self.model.dtype
        key = cache_keyword(self.model)
        cache = None
        if shared is None:  # the whole prompts, left padded, prefilled as they are
            ids, mask = inputs["input_ids"], inputs["attention_mask"]
            types, pixels = inputs.get("token_type_ids"), inputs.get("pixel_values")
            self.prefill_tokens += int(ids.numel())
        else:  # each distinct scene prefix once, then every request continues from its scene's cache
            prefix = self.model(
                input_ids=shared.prefix_ids.to(device),
                token_type_ids=shared.prefix_types.to(device),
                pixel_values=shared.prefix_pixels.to(device, dtype)
                if shared.prefix_pixels is not None
                else None,
                use_cache=True,
            )
            cache = getattr(prefix, key)
            cache.batch_select_indices(shared.row_prefix.to(device))
            ids, mask, types, pixels = shared.ids, shared.mask, shared.types, shared.suffix_pixels
            self.prefill_tokens += shared.prefill_tokens
        ids, mask = ids.to(device), mask.to(device)
        types = types.to(device) if types is not None else None
        pixels = pixels.to(device, dtype) if pixels is not None else None
        if self.lean and not self.do_sample:
            limited = row_limits is not None and any(n > 0 for n in row_limits)
            return greedy_ids(
                self.model,
                ids,
                mask,
                max_new_tokens=self.max_new_tokens,
                stop_ids=self.eos_token_id,
                pad_id=self.pad_token_id,
                token_type_ids=types,
                pixel_values=pixels,
                cache=cache,
                with_probs=self.scores,
                logit_bias=self._bias_tensor(self.model.get_output_embeddings().out_features, device),
                row_limits=torch.tensor(list(row_limits or ()), dtype=torch.long) if limited else None,
                newlines=self._newline_counts() if limited else None,
            )
        extra: dict[str, Any] = {key: cache} if cache is not None else {}
        if types is not None:
            extra["token_type_ids"] = types
        if pixels is not None:
            extra["pixel_values"] = pixels
        out = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            **extra,
            **self._options(),
            output_scores=self.scores,
            return_dict_in_generate=True,
        )
        if not self.scores:
            return Greedy(out.sequences[:, ids.shape[1] :], None)
        # the probability of each chosen token under the (temperature-scaled) distribution it came from
        probs = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        return Greedy(out.sequences[:, ids.shape[1] :], probs.float().exp())

    def generate_scored(
        self, batch: Sequence[Request], row_limits: Sequence[int] | None = None
    ) -> list[Scored]:
        """Each request's completion with its token count and per-token probabilities, in order.

        A count runs up to and including the stop token (the model paid for it); the padding generate
        appends after a sequence stopped is not counted; a completion cut at max_new_tokens counts that.
        ``row_limits`` (one per request, 0: none) ends a completion after that many RRLE rows where the
        lean greedy loop decodes; elsewhere every row is written (callers read only the rows they asked).
        """
        if row_limits is not None and len(row_limits) != len(batch):
            raise ValueError(f"{len(row_limits)} row limits for {len(batch)} requests")
        results: list[Scored] = []
        tok = self.processor.tokenizer
        for start in range(0, len(batch), self.batch_size):
            limits = None if row_limits is None else row_limits[start : start + self.batch_size]
            new, probs, lengths = self._generate_ids(batch[start : start + self.batch_size], limits)
            counts = token_counts(new, self.eos_token_id) if lengths is None else lengths.tolist()
            rows = [new[r, :n].tolist() for r, n in enumerate(counts)]
            row_probs = (
                None if probs is None else [probs[r, : len(ids)].tolist() for r, ids in enumerate(rows)]
            )
            results += scored_rows(tok, rows, row_probs)
        return results

    def generate_counted(self, batch: Sequence[Request]) -> list[tuple[str, int]]:
        """(completion text, generated token count) for each request, in order (see generate_scored)."""
        return [(s.text, s.tokens) for s in self.generate_scored(batch)]

    def generate(self, batch: Sequence[Request]) -> list[str]:
        """Completion text (special tokens dropped) for each request, in order."""
        return [text for text, _ in self.generate_counted(batch)]


def class_logit_bias(tokenizer: Any, class_bias: Mapping[str, float]) -> dict[int, float]:
    """Token id -> logit bias for RRLE class names (magseg.classes.CLASSES): each name's tokens as it opens
    a row and after a separator both get its bias. A positive bias makes greedy decoding name a rare class
    the model ranks close behind the majority one (logit adjustment for a long-tailed label set)."""
    bias: dict[int, float] = {}
    for name, value in class_bias.items():
        if name not in CLASSES:
            raise InputError(f"unknown class {name!r} in the class bias; use one of {', '.join(CLASSES)}")
        for text in (name, " " + name):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise InputError(
                    f"class {name!r} is {len(ids)} tokens as {text!r} to this tokenizer; a bias needs one token"
                )
            bias[ids[0]] = float(value)
    return bias


def scored_rows(tokenizer: Any, rows: list[list[int]], probs: list[list[float]] | None) -> list[Scored]:
    """Completions from generated ids (stop token included) and, when given, each token's probability.

    Each token's text span is its end offset in the row's decoded text. A row whose tokens decode one by
    one into exactly its text (RRLE's vocabulary: whole words and digits) takes the offsets from those
    pieces, each id decoded once per call; any other row (a token that writes half a character, a space
    the tokenizer merges) decodes every prefix of itself, so such a token still lands where it belongs.
    """
    texts = tokenizer.batch_decode(rows, skip_special_tokens=True)
    if probs is None:
        return [Scored(t, len(ids), None) for t, ids in zip(texts, rows, strict=True)]
    special = set(tokenizer.all_special_ids)
    pieces: dict[int, str] = {}
    out: list[Scored] = []
    for ids, row_probs, text in zip(rows, probs, texts, strict=True):
        written = [(i, q) for i, q in zip(ids, row_probs, strict=True) if i not in special]
        for i, _ in written:
            if i not in pieces:
                pieces[i] = tokenizer.decode([i], skip_special_tokens=True)
        if "".join(pieces[i] for i, _ in written) == text:
            ends, at = [], 0
            for i, _ in written:
                at += len(pieces[i])
                ends.append(at)
        else:
            prefixes = tokenizer.batch_decode(
                [ids[: k + 1] for k in range(len(ids))], skip_special_tokens=True
            )
            ends = [min(len(t), len(text)) for i, t in zip(ids, prefixes, strict=True) if i not in special]
        spans = tuple((end, float(q)) for end, (_, q) in zip(ends, written, strict=True))
        out.append(Scored(text, len(ids), spans))
    return out


def token_counts(new_tokens: torch.Tensor, stop_ids: Sequence[int]) -> list[int]:
    """Per row of generated ids (B, T): the tokens up to and including the first stop id (T if none)."""
    if new_tokens.shape[1] == 0:
        return [0] * int(new_tokens.shape[0])
    is_stop = torch.isin(new_tokens, torch.tensor(list(stop_ids), device=new_tokens.device))
    first = is_stop.int().argmax(dim=1) + 1  # argmax returns the first of equal maxima
    first[~is_stop.any(dim=1)] = int(new_tokens.shape[1])
    return [int(n) for n in first.tolist()]
