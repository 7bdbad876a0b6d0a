"""Gemma 4 "unified" text decoder (Hugging Face transformers 5.14 semantics), LTX-2.5's prompt encoder.

Only the language model's hidden-state path is built (no vision / audio embedders, no lm_head). State-dict names
are the Hugging Face language-model keys with the model prefix stripped, as in Gemma 3, plus `layers.N.layer_scalar`.
Against Gemma 3: norms scale by `w` (not `1 + w`), attention scale 1 (q and k are RMS-normed per head), values get
a weightless RMS norm, every layer output is multiplied by its `layer_scalar`, and sliding and full layers have
their own head size and RoPE (see gemma4_config). Multimodal placeholder ids are embedded as the pad token.
"""
from __future__ import annotations

import torch

from .gemma4_config import Gemma4Config
from .gemma_blocks import AttentionShape, GemmaDecoderLayer, GemmaTextStack

NORM_WEIGHT_OFFSET = 0.0
ATTENTION_SCALE = 1.0


class Gemma4TextModel(GemmaTextStack):
    """Gemma 4 unified text stack returning every hidden state (what LTX-2.5's feature extractor consumes)."""

    def __init__(self, cfg: Gemma4Config):
        layers = [
            GemmaDecoderLayer(t, _attention_shape(cfg, t), cfg.intermediate_size, cfg.rms_norm_eps,
                              NORM_WEIGHT_OFFSET, output_scalar=True)
            for t in cfg.layer_types
        ]
        super().__init__(cfg.vocab_size, cfg.hidden_size, cfg.rms_norm_eps, NORM_WEIGHT_OFFSET, cfg.sliding_window,
                         layers, cfg.ropes())
        self.config = cfg

    def token_ids_to_embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Image / video / audio placeholder ids take the pad id (their rows are filled by media embedders)."""
        placeholders = torch.tensor(self.config.placeholder_token_ids, dtype=input_ids.dtype, device=input_ids.device)
        return torch.where(torch.isin(input_ids, placeholders), self.config.pad_token_id, input_ids)


def _attention_shape(cfg: Gemma4Config, layer_type: str) -> AttentionShape:
    return AttentionShape(
        cfg.hidden_size, cfg.num_heads, cfg.kv_heads(layer_type), cfg.layer_head_dim(layer_type),
        scale=ATTENTION_SCALE, bias=cfg.attention_bias, value_norm=True,
        values_from_keys=cfg.values_from_keys(layer_type),
    )


def build_gemma4(config: dict | Gemma4Config) -> Gemma4TextModel:
    """Build (on the current default device, e.g. inside `build_on_meta`) from an HF config dict or a config."""
    cfg = config if isinstance(config, Gemma4Config) else Gemma4Config.from_hf_config(config)
    return Gemma4TextModel(cfg)
