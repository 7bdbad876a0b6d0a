"""Lazy safetensors checkpoints and loading of weights into modules built on the meta device.

A `CheckpointFile` only reads the header when opened (the tensor data stays memory-mapped), so opening a
40 GB file costs milliseconds. `load_module` fills a module that was built on the meta device directly from
the file, casting each tensor to the target dtype on its own: no full float32 copy of the model ever exists.

Contract for every model component in `models/`: its `state_dict()` keys equal the checkpoint keys of that
component with the component prefix (e.g. ``"vae.decoder."``) stripped, one to one.
"""
from __future__ import annotations

import json
import os
from typing import Callable, Iterable

import torch
from safetensors import safe_open
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint file is unreadable or does not hold what the caller needs."""


class CheckpointFile:
    """A safetensors file opened lazily: header and metadata now, tensors on request (mmap)."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise CheckpointError(f"checkpoint file not found: {self.path}")
        try:
            self._handle = safe_open(self.path, framework="pt", device="cpu")
            self._keys = list(self._handle.keys())
            self.metadata: dict[str, str] = dict(self._handle.metadata() or {})
        except Exception as exc:  # safetensors raises its own error types for bad headers
            raise CheckpointError(
                f"{self.path} is not a readable safetensors file (truncated or not safetensors?): {exc}"
            ) from exc
        self._key_set = set(self._keys)

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def config(self) -> dict:
        """The JSON `config` metadata entry decoded (``{}`` when the file has none)."""
        raw = self.metadata.get("config")
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{self.path}: metadata 'config' is not valid JSON: {exc}") from exc

    def keys(self) -> list[str]:
        return list(self._keys)

    def __contains__(self, key: str) -> bool:
        return key in self._key_set

    def keys_with_prefix(self, prefix: str) -> list[str]:
        return [k for k in self._keys if k.startswith(prefix)]

    def has_prefix(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self._keys)

    def get(self, key: str) -> torch.Tensor:
        try:
            return self._handle.get_tensor(key)
        except Exception as exc:
            raise CheckpointError(f"{self.path}: cannot read tensor '{key}': {exc}") from exc

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self._handle.get_slice(key).get_shape())

    def dtype(self, key: str) -> str:
        """The stored dtype name as safetensors writes it (`F32`, `BF16`, `F8_E4M3`, ...)."""
        return self._handle.get_slice(key).get_dtype()


def _describe(keys: Iterable[str], limit: int = 5) -> str:
    keys = sorted(keys)
    head = ", ".join(keys[:limit])
    return f"{len(keys)} ({head}{', ...' if len(keys) > limit else ''})"


def load_module(
    module: nn.Module,
    ckpt: CheckpointFile,
    prefix: str,
    dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu",
    ignore: Iterable[str] = (),
    what: str | None = None,
) -> nn.Module:
    """Fill `module` (built on the meta device) with the tensors of `ckpt` under `prefix`.

    Floating tensors are cast to `dtype` (None keeps the file's dtype) one by one. `ignore` lists stripped
    key names that may be in the file without a matching module entry. Missing or unexpected keys raise a
    `CheckpointError` naming the file, the component and the first few keys.
    """
    what = what or prefix.rstrip(".") or type(module).__name__
    expected = module.state_dict(keep_vars=True)
    present = {k[len(prefix):] for k in ckpt.keys_with_prefix(prefix)}
    missing = set(expected) - present
    unexpected = present - set(expected) - set(ignore)
    if missing or unexpected:
        parts = [f"{ckpt.path}: the {what} weights do not match this model"]
        if missing:
            parts.append(f"missing {_describe(prefix + k for k in missing)}")
        if unexpected:
            parts.append(f"unexpected {_describe(prefix + k for k in unexpected)}")
        raise CheckpointError("; ".join(parts))
    loaded = {}
    for name, target in expected.items():
        tensor = ckpt.get(prefix + name)
        if tuple(tensor.shape) != tuple(target.shape):
            raise CheckpointError(
                f"{ckpt.path}: {prefix + name} has shape {tuple(tensor.shape)}, "
                f"the {what} built from the file's config expects {tuple(target.shape)}"
            )
        if dtype is not None and _castable(name, target):
            tensor = tensor.to(dtype)
        loaded[name] = tensor.to(device)
    module.load_state_dict(loaded, assign=True)
    init_computed_buffers(module, device)
    return module


def _castable(name: str, target: torch.Tensor) -> bool:
    """Float tensors follow the requested dtype, except float8 weights and their float32 scales."""
    if not target.is_floating_point() or target.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        return False
    return not name.endswith(("weight_scale", "input_scale"))


def init_computed_buffers(module: nn.Module, device: torch.device | str = "cpu") -> None:
    """Let submodules rebuild non-persistent buffers that stayed on the meta device.

    A submodule with such buffers defines ``init_computed_buffers(self, device)``.
    """
    for sub in module.modules():
        hook: Callable | None = getattr(sub, "init_computed_buffers", None)
        if callable(hook) and any(b.is_meta for b in sub.buffers(recurse=False)):
            hook(device)


def build_on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """Build a module without allocating its weights."""
    with torch.device("meta"):
        return factory()


class CombinedCheckpoint(CheckpointFile):
    """Several files seen as one released single file.

    Each part is a file with a map {prefix in that file: released prefix}; its keys under a mapped prefix are
    renamed to the released names (`transformer_blocks.0...` -> `model.diffusion_model.transformer_blocks.0...`).
    The `config` metadata is the union of the parts' config entries, each taken from `config_owners[entry]` when
    given (the file that holds that entry's weights), else from the first part that has it; a component given
    twice is an error.
    """

    def __init__(self, parts: list[tuple[CheckpointFile, dict[str, str]]],
                 config_owners: dict[str, CheckpointFile] | None = None):
        self.parts = [file for file, _ in parts]
        self._config_owners = dict(config_owners or {})
        self.path = " + ".join(f.path for f in self.parts)
        self._sources: dict[str, tuple[CheckpointFile, str]] = {}
        for file, prefixes in parts:
            ordered = sorted(prefixes.items(), key=lambda item: -len(item[0]))
            for key in file.keys():
                name = next((released + key[len(p):] for p, released in ordered if key.startswith(p)), key)
                if name in self._sources:
                    other = self._sources[name][0]
                    raise CheckpointError(f"{file.path} and {other.path} both hold '{name}': pick one file per component")
                self._sources[name] = (file, key)
        self._keys = list(self._sources)
        self._key_set = set(self._keys)
        self.metadata = self._merged_metadata()

    def _merged_metadata(self) -> dict[str, str]:
        config = {entry: file.config[entry] for entry, file in self._config_owners.items()}
        metadata: dict[str, str] = {}
        for file in self.parts:
            for name, value in file.config.items():
                config.setdefault(name, value)
            for name, value in file.metadata.items():
                if name != "config":
                    metadata.setdefault(name, value)
        if config:
            metadata["config"] = json.dumps(config)
        return metadata

    def get(self, key: str) -> torch.Tensor:
        file, original = self._source(key)
        return file.get(original)

    def shape(self, key: str) -> tuple[int, ...]:
        file, original = self._source(key)
        return file.shape(original)

    def dtype(self, key: str) -> str:
        file, original = self._source(key)
        return file.dtype(original)

    def _source(self, key: str) -> tuple[CheckpointFile, str]:
        if key not in self._sources:
            raise CheckpointError(f"{self.path}: no tensor '{key}'")
        return self._sources[key]
