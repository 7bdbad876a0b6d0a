"""Gemma 3 text decoder (Hugging Face semantics) used as the LTX-2 / 2.3 prompt encoder.

Only the text stack is built (no vision tower, no lm_head). State-dict names equal the Hugging Face keys with
the model prefix stripped (`embed_tokens.weight`, `layers.N.self_attn.q_proj.weight`, ..., `norm.weight`).
Gemma 3 norms scale by `1 + w`; attention scale `query_pre_attn_scalar^-0.5`; every layer has the same head size.
"""
from __future__ import annotations

from .gemma3_config import Gemma3Config
from .gemma_blocks import AttentionShape, GemmaDecoderLayer, GemmaTextStack

NORM_WEIGHT_OFFSET = 1.0


class Gemma3TextModel(GemmaTextStack):
    """Gemma 3 text stack returning every hidden state (what LTX-2's feature extractor consumes)."""

    def __init__(self, cfg: Gemma3Config):
        attention = AttentionShape(cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim,
                                   scale=cfg.query_pre_attn_scalar ** -0.5)
        layers = [GemmaDecoderLayer(t, attention, cfg.intermediate_size, cfg.rms_norm_eps, NORM_WEIGHT_OFFSET)
                  for t in cfg.layer_types]
        super().__init__(cfg.vocab_size, cfg.hidden_size, cfg.rms_norm_eps, NORM_WEIGHT_OFFSET, cfg.sliding_window,
                         layers, cfg.ropes())
        self.config = cfg


def build_gemma3(config: dict | Gemma3Config) -> Gemma3TextModel:
    """Build (on the current default device, e.g. inside `build_on_meta`) from an HF config dict or a config."""
    cfg = config if isinstance(config, Gemma3Config) else Gemma3Config.from_hf_config(config)
    return Gemma3TextModel(cfg)
