"""Loading a Gemma 3 text model from the layouts people actually have on disk.

* Hugging Face folder: `config.json` plus `model.safetensors` or shards listed in `model.safetensors.index.json`;
  keys `language_model.model.*` (multimodal, e.g. google/gemma-3-12b-it), `model.language_model.*` (newer
  multimodal exports) or `model.*` (text-only `gemma3_text`).
* Single file (ComfyUI `gemma_3_12B_it*.safetensors`): keys `model.*` (possibly beside vision weights and a
  `spiece_model` tensor), no config: sizes come from the tensor shapes, the remaining hyperparameters are
  Gemma-3-12B's (or pass `config`). ComfyUI's scaled-fp8 files (`*.weight_scale` / `*.scale_weight`) are
  dequantized on load.

The model is built on the meta device and each tensor is read (memory-mapped), cast and moved on its own.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, CheckpointFile, build_on_meta
from .gemma3 import Gemma3TextModel
from .gemma3_config import GEMMA3_12B_HYPERPARAMETERS, Gemma3Config

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
                f"{names}: no Gemma 3 text weights found (expected 'embed_tokens.weight' under one of "
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

    def config_from_shapes(self) -> dict:
        """A `gemma3_text` config dict: sizes from the tensor shapes, the rest Gemma-3-12B's hyperparameters."""
        layer_ids = {int(m.group(1)) for n in self.names() if (m := re.match(r"layers\.(\d+)\.", n))}
        if not layer_ids:
            raise CheckpointError(f"{self.files[0].path}: no Gemma layers ('{self.prefix}layers.N.*') found")
        vocab, hidden = self.shape("embed_tokens.weight")
        head_dim = self.shape("layers.0.self_attn.q_norm.weight")[0]
        return {
            **GEMMA3_12B_HYPERPARAMETERS,
            "vocab_size": vocab,
            "hidden_size": hidden,
            "intermediate_size": self.shape("layers.0.mlp.gate_proj.weight")[0],
            "num_hidden_layers": max(layer_ids) + 1,
            "num_attention_heads": self.shape("layers.0.self_attn.q_proj.weight")[0] // head_dim,
            "num_key_value_heads": self.shape("layers.0.self_attn.k_proj.weight")[0] // head_dim,
            "head_dim": head_dim,
            "query_pre_attn_scalar": head_dim,
        }


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc


def _folder_weight_files(folder: Path) -> list[CheckpointFile]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        if not shards:
            raise ValueError(f"{index} lists no weight files")
        return [CheckpointFile(folder / s) for s in shards]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ValueError(f"Gemma folder {folder} holds no .safetensors weights")
    return [CheckpointFile(f) for f in files]


def open_gemma3(path: str | os.PathLike, config: dict | str | os.PathLike | None = None) -> tuple[Gemma3Config, GemmaWeights]:
    """Config and weights of a Gemma 3 HF folder (needs `config.json`) or single safetensors file.

    `config` overrides the config: a decoded HF config dict or a path to a `config.json`.
    """
    path = Path(path)
    if isinstance(config, (str, os.PathLike)):
        config = _read_json(Path(config))
    if path.is_dir():
        if config is None:
            if not (path / "config.json").is_file():
                raise ValueError(f"Gemma folder {path} has no config.json (expected a Hugging Face Gemma 3 folder)")
            config = _read_json(path / "config.json")
        weights = GemmaWeights(_folder_weight_files(path))
    elif path.is_file():
        weights = GemmaWeights([CheckpointFile(path)])
        config = config if config is not None else weights.config_from_shapes()
    else:
        raise ValueError(f"Gemma path {path} is neither a folder nor a file")
    return Gemma3Config.from_hf_config(config), weights


def load_gemma3(
    path: str | os.PathLike,
    dtype: torch.dtype = torch.bfloat16,
    device: torch.device | str = "cpu",
    config: dict | str | os.PathLike | None = None,
) -> Gemma3TextModel:
    """Build the Gemma 3 text model on meta and fill it from `path` in `dtype` on `device`."""
    cfg, weights = open_gemma3(path, config)
    model = build_on_meta(lambda: Gemma3TextModel(cfg))
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
            problems.append(f"unexpected {len(extra_layers)} ({', '.join(weights.prefix + n for n in extra_layers[:4])}, ...)")
        raise CheckpointError(f"{path}: Gemma 3 weights do not match the config: " + "; ".join(problems))
    tensors = {}
    for name, target in expected.items():
        if weights.shape(name) != tuple(target.shape):
            raise CheckpointError(
                f"{path}: {weights.prefix + name} has shape {weights.shape(name)}, the config expects {tuple(target.shape)}"
            )
        tensors[name] = weights.get(name).to(device=device, dtype=dtype)
    model.load_state_dict(tensors, assign=True)
    return model.eval().requires_grad_(False)
