"""Gemma prompt tokenization as the official LTX-2 encode path does it (with the `tokenizers` library).

Per prompt: strip surrounding whitespace, tokenize (the tokenizer's post-processor adds `<bos>`), prepend
`<bos>` if it is still not the first id, never add EOS, truncate to 1024 ids, LEFT-pad to exactly 1024 with the
pad id; the attention mask is 1 on real tokens. A folder whose tokenizer_config.json sets a smaller
`model_max_length` (AVGen-Tiny: 128) gets that length instead; Gemma's own (a huge number) keeps 1024.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..optional_imports import require

MAX_LENGTH = 1024


def _token_name(entry) -> str | None:
    """A special-token entry of tokenizer_config.json / special_tokens_map.json: a string or {"content": ...}."""
    if isinstance(entry, dict):
        return entry.get("content")
    return entry


class GemmaTokenizer:
    """Fixed-length, left-padded Gemma tokenization. `encode(prompts)` -> (input_ids, attention_mask) (B, 1024)."""

    def __init__(self, tokenizer, pad_id: int, bos_id: int, max_length: int = MAX_LENGTH):
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.bos_id = bos_id
        self.max_length = max_length

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, max_length: int | None = None) -> "GemmaTokenizer":
        """Load from a Gemma folder (or its `tokenizer.json`); special tokens from `tokenizer_config.json` /
        `special_tokens_map.json` when present, else `<pad>` / `<bos>`. `max_length` defaults to 1024, or the
        config's `model_max_length` when that is smaller."""
        path = Path(path)
        folder, file = (path, path / "tokenizer.json") if path.is_dir() else (path.parent, path)
        if not file.is_file():
            raise ValueError(f"no tokenizer.json at {path} (expected a Hugging Face Gemma tokenizer file or folder)")
        tokenizer = require("tokenizers", "the Gemma tokenizer").Tokenizer.from_file(str(file))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        names: dict = {}
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            if (folder / name).is_file():
                names.update(json.loads((folder / name).read_text()))
        pad = _token_name(names.get("pad_token")) or "<pad>"
        bos = _token_name(names.get("bos_token")) or "<bos>"
        ids = {t: tokenizer.token_to_id(t) for t in (pad, bos)}
        for token, token_id in ids.items():
            if token_id is None:
                raise ValueError(f"{file}: special token {token!r} is not in the vocabulary")
        if max_length is None:
            configured = names.get("model_max_length")
            max_length = min(MAX_LENGTH, configured) if isinstance(configured, int) and configured > 0 else MAX_LENGTH
        return cls(tokenizer, ids[pad], ids[bos], max_length)

    def token_ids(self, prompt: str) -> list[int]:
        """Ids of one prompt: stripped, `<bos>` first, no EOS, at most `max_length` ids."""
        ids = self.tokenizer.encode(prompt.strip()).ids
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id] + ids
        return ids[: self.max_length]

    def encode(self, prompts: list[str] | str) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), both int64 (B, max_length), left-padded."""
        if isinstance(prompts, str):
            prompts = [prompts]
        input_ids = torch.full((len(prompts), self.max_length), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(prompts), self.max_length), dtype=torch.int64)
        for row, prompt in enumerate(prompts):
            ids = self.token_ids(prompt)
            input_ids[row, self.max_length - len(ids):] = torch.tensor(ids, dtype=torch.int64)
            mask[row, self.max_length - len(ids):] = 1
        return input_ids, mask
