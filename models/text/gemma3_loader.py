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

import os
import re
from pathlib import Path

import torch

from ..checkpoint import CheckpointError, CheckpointFile, build_on_meta
from .gemma3 import Gemma3TextModel
from .gemma3_config import GEMMA3_12B_HYPERPARAMETERS, Gemma3Config
from .gemma_weights import GemmaWeights, fill_from_weights, folder_weight_files, read_json


def config_from_shapes(weights: GemmaWeights) -> dict:
    """A `gemma3_text` config dict: sizes from the tensor shapes, the rest Gemma-3-12B's hyperparameters."""
    layer_ids = {int(m.group(1)) for n in weights.names() if (m := re.match(r"layers\.(\d+)\.", n))}
    if not layer_ids:
        raise CheckpointError(f"{weights.files[0].path}: no Gemma layers ('{weights.prefix}layers.N.*') found")
    vocab, hidden = weights.shape("embed_tokens.weight")
    head_dim = weights.shape("layers.0.self_attn.q_norm.weight")[0]
    return {
        **GEMMA3_12B_HYPERPARAMETERS,
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": weights.shape("layers.0.mlp.gate_proj.weight")[0],
        "num_hidden_layers": max(layer_ids) + 1,
        "num_attention_heads": weights.shape("layers.0.self_attn.q_proj.weight")[0] // head_dim,
        "num_key_value_heads": weights.shape("layers.0.self_attn.k_proj.weight")[0] // head_dim,
        "head_dim": head_dim,
        "query_pre_attn_scalar": head_dim,
    }


def open_gemma3(
    path: str | os.PathLike, config: dict | str | os.PathLike | None = None
) -> tuple[Gemma3Config, GemmaWeights]:
    """Config and weights of a Gemma 3 HF folder (needs `config.json`) or single safetensors file.

    `config` overrides the config: a decoded HF config dict or a path to a `config.json`.
    """
    path = Path(path)
    if isinstance(config, (str, os.PathLike)):
        config = read_json(Path(config))
    if path.is_dir():
        if config is None:
            if not (path / "config.json").is_file():
                raise ValueError(f"Gemma folder {path} has no config.json (expected a Hugging Face Gemma 3 folder)")
            config = read_json(path / "config.json")
        weights = GemmaWeights(folder_weight_files(path))
    elif path.is_file():
        weights = GemmaWeights([CheckpointFile(path)])
        config = config if config is not None else config_from_shapes(weights)
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
    return fill_from_weights(model, weights, path, "Gemma 3", dtype, device)
