"""AVGen-Tiny's text path for training: word-level tokenizer, tiny Gemma 3 and the LTX text embedder.

The tokenizer is a Hugging Face `tokenizers` WordLevel model over `dataset.VOCABULARY` with the Gemma special
tokens and conventions of the golden tiny Gemma (<pad> 0, <eos> 1, <bos> 2, <unk> 3, ..., lower-casing,
whitespace/punctuation pre-tokenizer, <bos> prepended), so `models.text.GemmaTokenizer` reads it like a real one.

`TextPath` runs Gemma and the text embedder differentiably. Prompts are tokenized to the batch's longest prompt
(left padding) instead of CONTEXT_LENGTH ids: Gemma's attention is causal with relative RoPE and pads are masked,
so the real tokens' hidden states equal those of the full-length inference input; the features are then
left-padded to CONTEXT_LENGTH so the connectors see exactly what inference gives them (real tokens, then learnable
registers).

CONTEXT_LENGTH is 128, not the real Gemma's 1024 (the tokenizer folder's `model_max_length` says so and
`GemmaTokenizer` follows it): captions have at most ~30 tokens, and among 1024 context tokens the ~1000 identical
registers drowned the caption (a DiT trained for 45 minutes so gave the same loss with true, shuffled or empty
captions); 128 also makes the connectors' and the DiT's text attention 8x cheaper.
"""
from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from torch import nn

from ..models.text.gemma3 import Gemma3TextModel, build_gemma3
from ..models.text.text_embedder import TextEmbedder, build_text_embedder
from ..models.text.tokenizer import GemmaTokenizer
from .config import gemma_config

CONTEXT_LENGTH = 128  # prompt ids (real tokens + pads) = text context tokens the DiT attends to

# Gemma's special tokens in Gemma's order (what the golden tiny Gemma folder holds).
SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
                  "<start_of_image>", "<end_of_image>", "<image_soft_token>")
TOKENIZER_CONFIG = {
    "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>", "mask_token": "<mask>",
    "add_bos_token": True, "add_eos_token": False, "padding_side": "left", "model_max_length": CONTEXT_LENGTH,
    "tokenizer_class": "GemmaTokenizer", "clean_up_tokenization_spaces": False,
    "spaces_between_special_tokens": False,
}
SPECIAL_TOKENS_MAP = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}


def build_tokenizer(words: tuple[str, ...]) -> Tokenizer:
    """WordLevel tokenizer: special tokens 0..9, then `words` in order; unknown words -> <unk>."""
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])])
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return tokenizer


def short_batch(tokenizer: GemmaTokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, mask) (B, longest prompt), left-padded like `GemmaTokenizer.encode` but not to CONTEXT_LENGTH."""
    rows = [tokenizer.token_ids(p) for p in prompts]
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), tokenizer.pad_id, dtype=torch.int64)
    mask = torch.zeros((len(rows), length), dtype=torch.int64)
    for i, row in enumerate(rows):
        ids[i, length - len(row):] = torch.tensor(row)
        mask[i, length - len(row):] = 1
    return ids, mask


class TextPath(nn.Module):
    """Tiny Gemma 3 + LTX text embedder (feature extractor, video and audio connectors), trainable end to end."""

    def __init__(self, checkpoint_config: dict, vocab_size: int):
        super().__init__()
        self.gemma: Gemma3TextModel = build_gemma3(gemma_config(vocab_size))
        self.embedder: TextEmbedder = build_text_embedder(
            checkpoint_config, num_hidden_states=self.gemma.config.num_hidden_states)
        for name, parameter in self.named_parameters():
            if name.endswith("learnable_registers"):
                nn.init.normal_(parameter, std=1.0)
            elif parameter.ndim >= 2:
                nn.init.normal_(parameter, std=0.02)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Short left-padded ids and mask (B, S) -> video and audio contexts (B, CONTEXT_LENGTH, W) for the DiT."""
        # The inference forwards are wrapped in no_grad; their undecorated bodies are the same arithmetic.
        hidden = Gemma3TextModel.forward.__wrapped__(self.gemma, input_ids, mask)
        video, audio = self.embedder.feature_extractor(hidden, mask)
        pad = CONTEXT_LENGTH - mask.shape[1]
        full_mask = nn.functional.pad(mask, (pad, 0))
        video, audio = (nn.functional.pad(x, (0, 0, pad, 0)) for x in (video, audio))
        return (self.embedder.video_connector(video, full_mask),
                self.embedder.audio_connector(audio, full_mask))
