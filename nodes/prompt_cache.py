"""On-disk cache of encoded prompts, so re-running a graph does not load Gemma again.

One safetensors file per prompt under `<cache dir>/prompts/` holding the text contexts `video` (1, S, Wv) and
`audio` (1, S, Wa) as the text embedder produced them. The file name is the sha256 of the prompt text, the text
encoder's identity (files + sizes + mtimes + dtype), the LTX text embedder's identity (checkpoint file key) and
the contexts' dtype, so a changed file or option never reads a stale entry. The directory is kept under
`max_bytes` by removing the least recently used entries.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import comfy_adapter

FORMAT_VERSION = 1
DEFAULT_MAX_BYTES = 2 * 1024**3
NAMES = ("video", "audio")


def prompt_key(prompt: str, encoder_identity: str, embedder_identity: str, dtype: torch.dtype) -> str:
    """Hex sha256 naming the cache entry of one prompt."""
    fields = [FORMAT_VERSION, prompt, encoder_identity, embedder_identity, str(dtype)]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode("utf-8")).hexdigest()


def cache_dir() -> Path:
    return comfy_adapter.cache_directory() / "prompts"


def entry_path(key: str) -> Path:
    return cache_dir() / f"{key}.safetensors"


def load(key: str) -> dict[str, torch.Tensor] | None:
    """The cached {"video", "audio"} contexts (CPU) for `key`, or None. A damaged entry is removed."""
    path = entry_path(key)
    if not path.is_file():
        return None
    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError, ValueError):
        path.unlink(missing_ok=True)
        return None
    if set(tensors) != set(NAMES):
        path.unlink(missing_ok=True)
        return None
    os.utime(path)  # most recently used
    return tensors


def store(key: str, video: torch.Tensor, audio: torch.Tensor, prompt: str = "",
          max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
    """Write one entry atomically (a concurrent reader sees the old state or the whole file), then trim."""
    path = entry_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().clone(memory_format=torch.contiguous_format)
               for name, t in (("video", video), ("audio", audio))}
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        save_file(tensors, temp, {"format": str(FORMAT_VERSION), "prompt": prompt[:4000]})
        os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)
    trim(max_bytes, keep=path)
    return path


def trim(max_bytes: int, keep: Path | None = None) -> int:
    """Remove least recently used entries until the cache holds at most `max_bytes`; returns how many."""
    entries = []
    for path in cache_dir().glob("*.safetensors"):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= max_bytes:
            break
        if path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed += 1
    return removed
