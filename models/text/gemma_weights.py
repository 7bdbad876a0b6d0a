"""Gemma text-model tensors from the layouts people have on disk, and filling a model built on meta with them.

The text-model prefix is detected from where `embed_tokens.weight` sits: `language_model.model.` (Gemma 3 HF
multimodal), `model.language_model.` (newer HF multimodal exports, Gemma 4 unified HF), `model.` (text-only HF,
ComfyUI files, the official Comfy-flat Gemma 4 pack) or none. Tensors outside that prefix (vision / audio towers,
tokenizer blobs, LTX projections) are never read. ComfyUI's scaled-fp8 weights (`*.weight_scale` /
`*.scale_weight`) are dequantized on read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..checkpoint import CheckpointError, CheckpointFile

TEXT_MODEL_PREFIXES = ("language_model.model.", "model.language_model.", "model.", "")
SCALE_SUFFIXES = ("weight_scale", "scale_weight")
# Per-tensor quantization side entries of ComfyUI files that carry nothing the text model needs.
QUANT_SIDE_SUFFIXES = SCALE_SUFFIXES + ("input_scale", "comfy_quant")


class GemmaWeights:
    """Tensors of one or several safetensors files addressed by key, with the text-model prefix detected."""

    def __init__(self, files: list[CheckpointFile]):
        self.files = files
        self._owner = {k: f for f in files for k in f.keys()}
        self.prefix = next((p for p in TEXT_MODEL_PREFIXES if p + "embed_tokens.weight" in self._owner), None)
        if self.prefix is None:
            names = ", ".join(f.path for f in files)
            raise CheckpointError(
                f"{names}: no Gemma text weights found (expected 'embed_tokens.weight' under one of "
                f"{', '.join(repr(p) for p in TEXT_MODEL_PREFIXES if p)})"
            )

    def __contains__(self, name: str) -> bool:
        return self.prefix + name in self._owner

    def names(self) -> list[str]:
        """Keys under the text-model prefix, prefix stripped."""
        return [k[len(self.prefix):] for k in self._owner if k.startswith(self.prefix)]

    def shape(self, name: str) -> tuple[int, ...]:
        key = self.prefix + name
        return self._owner[key].shape(key)

    def get(self, name: str) -> torch.Tensor:
        """The tensor `name` (prefix stripped), dequantized to float32 when the file holds a scale for it."""
        key = self.prefix + name
        tensor = self._owner[key].get(key)
        if key.endswith("weight"):
            for suffix in SCALE_SUFFIXES:
                scale_key = key[: -len("weight")] + suffix
                if scale_key in self._owner:
                    return tensor.float() * self._owner[scale_key].get(scale_key).float()
        return tensor


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def folder_weight_files(folder: Path) -> list[CheckpointFile]:
    """The shards listed in `model.safetensors.index.json`, else every `*.safetensors` of the folder."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(read_json(index).get("weight_map", {}).values()))
        if not shards:
            raise ValueError(f"{index} lists no weight files")
        return [CheckpointFile(folder / s) for s in shards]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"Gemma folder {folder} holds no .safetensors weights")
    return [CheckpointFile(f) for f in files]


def fill_from_weights(model: nn.Module, weights: GemmaWeights, source: str | os.PathLike, what: str,
                      dtype: torch.dtype, device: torch.device | str) -> nn.Module:
    """Fill `model` (built on meta) from `weights` in `dtype` on `device`; eval mode, no grad.

    Every model tensor must be in the file with the same shape, and the file must not hold more decoder layers
    (or other per-layer tensors) than the config builds; a CheckpointError says which keys differ."""
    expected = model.state_dict(keep_vars=True)
    missing = [n for n in expected if n not in weights]
    extra_layers = [
        n for n in weights.names()
        if n.startswith("layers.") and n not in expected and not n.endswith(QUANT_SIDE_SUFFIXES)
    ]
    if missing or extra_layers:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} ({', '.join(weights.prefix + n for n in missing[:4])}, ...)")
        if extra_layers:
            problems.append(f"unexpected {len(extra_layers)} "
                            f"({', '.join(weights.prefix + n for n in extra_layers[:4])}, ...)")
        raise CheckpointError(f"{source}: {what} weights do not match the config: " + "; ".join(problems))
    tensors = {}
    for name, target in expected.items():
        if weights.shape(name) != tuple(target.shape):
            raise CheckpointError(f"{source}: {weights.prefix + name} has shape {weights.shape(name)}, the config "
                                  f"expects {tuple(target.shape)}")
        tensors[name] = weights.get(name).to(device=device, dtype=dtype)
    model.load_state_dict(tensors, assign=True)
    return model.eval().requires_grad_(False)
