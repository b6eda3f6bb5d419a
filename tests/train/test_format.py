"""The chat format round trip: SFT's collator renders prompts like generation and learns the RRLE only."""

from __future__ import annotations

from pathlib import Path

import torch
from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

from magseg.model import load_model, render_prompts
from magseg.samples import load_samples


def test_collator_masks_the_prompt_and_matches_generation(tiny_model: Path, tiny_samples: Path) -> None:
    _, processor = load_model(tiny_model)
    rows = [dict(r) for r in load_samples(tiny_samples).select(range(3))]
    requests = [(r["images"], r["prompt"]) for r in rows]
    collator = DataCollatorForVisionLanguageModeling(processor, completion_only_loss=True)
    batch = collator([{k: r[k] for k in ("images", "prompt", "completion")} for r in rows])
    prompts = render_prompts(processor, requests)
    tok = processor.tokenizer
    end = tok.convert_tokens_to_ids("<end_of_turn>")
    torch.testing.assert_close(batch["pixel_values"], prompts["pixel_values"])
    for i, row in enumerate(rows):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        mask = batch["attention_mask"][i].bool()
        prompt_ids = prompts["input_ids"][i][prompts["attention_mask"][i].bool()]
        n = len(prompt_ids)
        # training sees exactly the tokens generation is prompted with, then the answer
        assert torch.equal(ids[mask][:n], prompt_ids)
        assert (labels[mask][:n] == -100).all()  # no loss on the prompt (nor its images)
        target = labels[mask][n:]
        assert (target != -100).all()
        text = tok.decode(target)
        # the answer is the RRLE (final newline trimmed by Gemma3's template), then the end of the turn
        assert text.startswith(row["solution"].rstrip("\n") + "<end_of_turn>")
        assert end in target.tolist()
        assert (labels[~mask] == -100).all()
