"""Models: the tiny from-scratch Gemma3, loading local checkpoints (+ LoRA), and HF generation."""

from magseg.model.generate import HFEngine, render_prompts
from magseg.model.load import load_model, load_processor, resolve_model_path
from magseg.model.tiny import build_tiny_gemma3, train_tokenizer

__all__ = [
    "HFEngine",
    "build_tiny_gemma3",
    "load_model",
    "load_processor",
    "render_prompts",
    "resolve_model_path",
    "train_tokenizer",
]
