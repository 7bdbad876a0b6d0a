"""Gemma prompt tokenization as the official LTX-2 encode path does it (with the `tokenizers` library).

Per prompt: strip surrounding whitespace, tokenize (Gemma 3's post-processor adds `<bos>`, Gemma 4's does not),
prepend `<bos>` if it is not the first id, never add EOS, truncate to 1024 ids, LEFT-pad to exactly 1024 with the
pad id; the attention mask is 1 on real tokens. A tokenizer_config.json with a smaller `model_max_length`
(AVGen-Tiny: 128) gives that length instead; Gemma's own (a huge number) keeps 1024.

Sources: a Hugging Face folder (`tokenizer.json` + `tokenizer_config.json` / `special_tokens_map.json`) or a
single-file text-encoder pack (LTX-2.5) holding the same files as uint8 tensors `tokenizer_json` and
`hf_asset__tokenizer_config.json` (older packs: the config as a metadata string).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, CheckpointFile
from ..optional_imports import require

MAX_LENGTH = 1024
TOKENIZER_JSON_TENSOR = "tokenizer_json"
ASSET_TENSOR_PREFIX = "hf_asset__"
SPECIAL_TOKEN_FILES = ("special_tokens_map.json", "tokenizer_config.json")


def _token_name(entry) -> str | None:
    """A special-token entry of tokenizer_config.json / special_tokens_map.json: a string or {"content": ...}."""
    if isinstance(entry, dict):
        return entry.get("content")
    return entry


class GemmaTokenizer:
    """Fixed-length, left-padded Gemma tokenization. `encode(prompts)` -> (input_ids, attention_mask) (B, 1024).
    For prompt enhancement also: `chat_ids` (a rendered chat, unpadded), `decode` and `token_id`."""

    def __init__(self, tokenizer, pad_id: int, bos_id: int, max_length: int = MAX_LENGTH, eos_id: int | None = None):
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.bos_id = bos_id
        self.eos_id = eos_id
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
        settings: dict = {}
        for name in SPECIAL_TOKEN_FILES:
            if (folder / name).is_file():
                settings.update(json.loads((folder / name).read_text()))
        return cls.from_json(file.read_text(encoding="utf-8"), settings, str(file), max_length)

    @classmethod
    def from_text_encoder_file(cls, checkpoint: CheckpointFile | str | os.PathLike,
                               max_length: int | None = None) -> "GemmaTokenizer":
        """Load from the tokenizer embedded in a single-file text-encoder pack (tensor `tokenizer_json`)."""
        ckpt = checkpoint if isinstance(checkpoint, CheckpointFile) else CheckpointFile(checkpoint)
        if TOKENIZER_JSON_TENSOR not in ckpt:
            raise CheckpointError(f"{ckpt.path}: no embedded tokenizer (tensor {TOKENIZER_JSON_TENSOR!r}); pass the "
                                  "tokenizer.json of the Gemma it holds")
        settings: dict = {}
        for name in SPECIAL_TOKEN_FILES:
            key = ASSET_TENSOR_PREFIX + name
            raw = embedded_bytes(ckpt, key).decode("utf-8") if key in ckpt else ckpt.metadata.get(name)
            if raw:
                settings.update(json.loads(raw))
        text = embedded_bytes(ckpt, TOKENIZER_JSON_TENSOR).decode("utf-8")
        return cls.from_json(text, settings, f"{ckpt.path} ({TOKENIZER_JSON_TENSOR})", max_length)

    @classmethod
    def from_json(cls, tokenizer_json: str, settings: dict, source: str,
                  max_length: int | None = None) -> "GemmaTokenizer":
        """Build from the text of a `tokenizer.json` and the decoded tokenizer settings (tokenizer_config.json
        merged over special_tokens_map.json); `source` names where they came from in errors."""
        tokenizer = require("tokenizers", "the Gemma tokenizer").Tokenizer.from_str(tokenizer_json)
        tokenizer.no_padding()
        tokenizer.no_truncation()
        pad = _token_name(settings.get("pad_token")) or "<pad>"
        bos = _token_name(settings.get("bos_token")) or "<bos>"
        ids = {t: tokenizer.token_to_id(t) for t in (pad, bos)}
        for token, token_id in ids.items():
            if token_id is None:
                raise ValueError(f"{source}: special token {token!r} is not in the vocabulary")
        if max_length is None:
            configured = settings.get("model_max_length")
            max_length = min(MAX_LENGTH, configured) if isinstance(configured, int) and configured > 0 else MAX_LENGTH
        eos_id = tokenizer.token_to_id(_token_name(settings.get("eos_token")) or "<eos>")
        return cls(tokenizer, ids[pad], ids[bos], max_length, eos_id)

    def token_ids(self, prompt: str) -> list[int]:
        """Ids of one prompt: stripped, `<bos>` first, no EOS, at most `max_length` ids."""
        ids = self.tokenizer.encode(prompt.strip()).ids
        if not ids or ids[0] != self.bos_id:
            ids = [self.bos_id] + ids
        return ids[: self.max_length]

    def token_id(self, token: str) -> int | None:
        """The id of a token of the vocabulary (e.g. a chat turn marker), None when it has none."""
        return self.tokenizer.token_to_id(token)

    def chat_ids(self, text: str) -> list[int]:
        """Ids of a rendered chat (its special-token markup, `<bos>` included, read as those tokens): no padding, no
        truncation, `<bos>` prepended only when the text does not start with it."""
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ids if ids and ids[0] == self.bos_id else [self.bos_id] + ids

    def decode(self, ids: list[int]) -> str:
        """Text of generated ids, special tokens left out."""
        return self.tokenizer.decode(ids, skip_special_tokens=True)

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


def embedded_bytes(ckpt: CheckpointFile, key: str) -> bytes:
    """The bytes of a file stored as a 1-D byte tensor (uint8; some packs use int8)."""
    tensor = ckpt.get(key)
    if tensor.dtype not in (torch.uint8, torch.int8) or tensor.ndim != 1:
        raise CheckpointError(f"{ckpt.path}: {key!r} is not a 1-D byte tensor (got {tensor.dtype}, "
                              f"{tuple(tensor.shape)})")
    return tensor.view(torch.uint8).numpy().tobytes()
