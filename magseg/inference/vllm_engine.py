"""vLLM generation for GPU hosts: the same prompts as HFEngine, with a scene's image prefix cached once.

Why a hand-written engine inside the region job's model actor rather than Ray's own batch-LLM stage
(``ray.data.llm``, vLLM replicas with continuous batching across rows): that stage takes one prompt per
row, and its multimodal preprocessing would carry our two images a prompt (OpenAI-style image items), so
the engine side fits. What does not fit yet is the row: a MAgSeg row is a tile, whose 64+ patch prompts
must come back together to be stitched, refined and cut on the tile grid; exploding tiles into patch rows
for ``ray.data.llm`` and regrouping them afterwards is a shuffle (groupby tile) in the middle of a streaming
job. Neither path can run on the CPU machines this project is built on; scripts/gpu_smoke.sh exercises this
engine on a GPU host, and the ``ray.data.llm`` variant is left for a session with one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from trl.data_utils import prepare_multimodal_messages

from magseg.errors import InputError
from magseg.model.generate import Request, Scored, scored_rows


class VLLMEngine:
    """Greedy RRLE generation with ``vllm.LLM`` (a merged model folder; LoRA adapters must be merged first).

    Automatic prefix caching is on: the patches of one tile share their rendered prefix (chat template,
    the scene image's tokens, the scene description) and differ only in the patch box and crop that come
    after it, so vLLM encodes the scene once per tile and reuses its KV blocks for every patch.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        processor: Any,
        max_new_tokens: int = 512,
        gpu_memory_utilization: float = 0.85,
        max_model_len: int | None = None,
        logit_bias: dict[int, float] | None = None,
    ) -> None:
        try:
            from vllm import LLM, SamplingParams
        except ImportError as exc:
            raise InputError(
                "--engine vllm needs vLLM: install the GPU extra (pip install 'magseg[vllm]') or use --engine hf"
            ) from exc
        self.processor = processor
        self.llm = LLM(
            model=os.fspath(model_path),
            enable_prefix_caching=True,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            limit_mm_per_prompt={"image": 2},
        )
        # logprobs=0: each step reports the chosen token's log-probability only (per-field confidence), as
        # the model gave it (vLLM's raw logprobs, before the class bias of the model card moves the choice)
        self.params = SamplingParams(
            temperature=0.0,
            max_tokens=max_new_tokens,
            stop=["<end_of_turn>"],
            logprobs=0,
            logit_bias=logit_bias or None,
        )

    def _prompts(self, batch: Sequence[Request]) -> list[dict[str, Any]]:
        out = []
        for images, messages in batch:
            conversation = prepare_multimodal_messages(list(messages), images=list(images))
            text = self.processor.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=False
            )
            out.append({"prompt": text, "multi_modal_data": {"image": list(images)}})
        return out

    def generate_scored(self, batch: Sequence[Request]) -> list[Scored]:
        """Completions, token counts and each token's probability, per request in order (vLLM keeps it)."""
        outputs = self.llm.generate(self._prompts(batch), self.params, use_tqdm=False)
        rows = [list(o.outputs[0].token_ids) for o in outputs]
        probs = [
            [math.exp(step[i].logprob) for step, i in zip(o.outputs[0].logprobs or [], ids, strict=False)]
            for o, ids in zip(outputs, rows, strict=True)
        ]
        if any(len(p) != len(ids) for p, ids in zip(probs, rows, strict=True)):
            return scored_rows(self.processor.tokenizer, rows, None)  # no logprobs came back
        return scored_rows(self.processor.tokenizer, rows, probs)

    def generate_counted(self, batch: Sequence[Request]) -> list[tuple[str, int]]:
        """(completion text, generated token count) per request, in order."""
        return [(s.text, s.tokens) for s in self.generate_scored(batch)]

    def generate(self, batch: Sequence[Request]) -> list[str]:
        return [text for text, _ in self.generate_counted(batch)]
