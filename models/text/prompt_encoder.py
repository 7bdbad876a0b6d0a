"""End-to-end prompt encoding: tokenize -> Gemma -> feature extractor -> video / audio connectors.

Gemma 3 (LTX-2 / 2.3) or Gemma 4 unified (LTX-2.5). Gemma (12B, the usual out-of-memory culprit) and the LTX-side
`TextEmbedder` are separate objects: Gemma can run on its own device and dtype, is loaded only when first needed,
and is freed right after encoding unless `keep_gemma` is set.
"""
from __future__ import annotations

import gc
import os
from typing import Callable

import torch

from ..checkpoint import CheckpointFile
from .gemma_blocks import GemmaTextStack
from .gemma_source import check_pairing, open_text_encoder
from .text_embedder import CHECKPOINT_PREFIXES, TextContext, TextEmbedder, load_split_text_embedder, load_text_embedder
from .tokenizer import GemmaTokenizer


class PromptEncoder:
    """Prompts -> `TextContext` (video (B, 1024, Wv), audio (B, 1024, Wa), mask of ones)."""

    def __init__(
        self,
        tokenizer: GemmaTokenizer,
        embedder: TextEmbedder,
        load_gemma: Callable[[], GemmaTextStack],
        keep_gemma: bool = False,
    ):
        self.tokenizer = tokenizer
        self.embedder = embedder
        self.load_gemma = load_gemma
        self.keep_gemma = keep_gemma
        self.gemma: GemmaTextStack | None = None

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
        """Gemma 3 or 4 from an HF folder or single file (loaded lazily), text modules now: from the LTX checkpoint,
        or for the LTX-2.5 split layout the projections from the Gemma 4 text-encoder file and the connectors from
        the transformer file. GemmaPairingError when the Gemma is not the one the checkpoint names."""
        gemma = open_text_encoder(gemma_path)
        ckpt = checkpoint if isinstance(checkpoint, CheckpointFile) else CheckpointFile(checkpoint)
        check_pairing(gemma, ckpt)
        projection = CHECKPOINT_PREFIXES["feature_extractor"]
        pack = gemma.single_file
        if pack is not None and pack.has_prefix(projection) and not ckpt.has_prefix(projection):
            embedder = load_split_text_embedder(ckpt, pack, dtype=dtype, device=device)
        else:
            embedder = load_text_embedder(ckpt, dtype=dtype, device=device)
        return cls(gemma.tokenizer(tokenizer_path), embedder, lambda: gemma.load(gemma_dtype, gemma_device), keep_gemma)

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
