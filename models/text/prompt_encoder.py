"""End-to-end prompt encoding: tokenize -> Gemma 3 -> feature extractor -> video / audio connectors.

Gemma (12B, the usual out-of-memory culprit) and the LTX-side `TextEmbedder` are separate objects: Gemma can run
on its own device and dtype, is loaded only when first needed, and is freed right after encoding unless
`keep_gemma` is set.
"""
from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Callable

import torch

from ..checkpoint import CheckpointFile
from .gemma3 import Gemma3TextModel
from .gemma3_loader import load_gemma3
from .text_embedder import TextContext, TextEmbedder, load_text_embedder
from .tokenizer import GemmaTokenizer


def _find_tokenizer(gemma_path: Path, tokenizer_path: str | os.PathLike | None) -> GemmaTokenizer:
    if tokenizer_path is not None:
        return GemmaTokenizer.from_pretrained(tokenizer_path)
    folder = gemma_path if gemma_path.is_dir() else gemma_path.parent
    if not (folder / "tokenizer.json").is_file():
        raise ValueError(
            f"no tokenizer.json found for Gemma at {gemma_path}: pass tokenizer_path (a Hugging Face Gemma 3 "
            "tokenizer.json or its folder); a sentencepiece model stored inside a single-file checkpoint is not read"
        )
    return GemmaTokenizer.from_pretrained(folder)


class PromptEncoder:
    """Prompts -> `TextContext` (video (B, 1024, Wv), audio (B, 1024, Wa), mask of ones)."""

    def __init__(
        self,
        tokenizer: GemmaTokenizer,
        embedder: TextEmbedder,
        load_gemma: Callable[[], Gemma3TextModel],
        keep_gemma: bool = False,
    ):
        self.tokenizer = tokenizer
        self.embedder = embedder
        self.load_gemma = load_gemma
        self.keep_gemma = keep_gemma
        self.gemma: Gemma3TextModel | None = None

    @classmethod
    def from_paths(
        cls,
        gemma_path: str | os.PathLike,
        checkpoint: CheckpointFile | str | os.PathLike,
        gemma_dtype: torch.dtype = torch.bfloat16,
        gemma_device: torch.device | str = "cpu",
        dtype: torch.dtype | None = None,
        device: torch.device | str = "cpu",
        tokenizer_path: str | os.PathLike | None = None,
        keep_gemma: bool = False,
    ) -> "PromptEncoder":
        """Gemma from an HF folder or single file (loaded lazily), text modules from the LTX checkpoint now."""
        gemma_path = Path(gemma_path)
        tokenizer = _find_tokenizer(gemma_path, tokenizer_path)
        embedder = load_text_embedder(checkpoint, dtype=dtype, device=device)
        return cls(tokenizer, embedder, lambda: load_gemma3(gemma_path, gemma_dtype, gemma_device), keep_gemma)

    def hidden_states(self, prompts: list[str] | str) -> tuple[torch.Tensor, torch.Tensor]:
        """Stacked Gemma hidden states (N, B, 1024, Hg) (pads zero, Gemma's device/dtype) and mask (B, 1024)."""
        input_ids, mask = self.tokenizer.encode(prompts)
        if self.gemma is None:
            self.gemma = self.load_gemma()
        try:
            hidden = self.gemma(input_ids, mask)
        finally:
            if not self.keep_gemma:
                self.release_gemma()
        return hidden, mask

    def encode(self, prompts: list[str] | str) -> TextContext:
        hidden, mask = self.hidden_states(prompts)
        return self.embedder(hidden, mask)

    def release_gemma(self) -> None:
        """Drop Gemma and return its memory (it is reloaded on the next encode)."""
        device = self.gemma.device if self.gemma is not None else None
        self.gemma = None
        gc.collect()
        if device is not None and device.type == "cuda":
            torch.cuda.empty_cache()
