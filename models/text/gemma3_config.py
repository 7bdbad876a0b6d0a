"""Configuration of the Gemma 3 text model, read from a Hugging Face `config.json` dict.

Accepts the multimodal layout (`model_type: "gemma3"` with a `text_config` sub-dict, e.g.
google/gemma-3-12b-it) and the plain text layout (`model_type: "gemma3_text"`). Both the classic rope keys
(`rope_theta`, `rope_scaling`, `rope_local_base_freq`) and the per-layer-type `rope_parameters` dict of newer
transformers releases are understood.
"""
from __future__ import annotations

from dataclasses import dataclass

from .gemma_blocks import FULL_ATTENTION, SLIDING_ATTENTION, RopeSpec

# google/gemma-3-12b-it text_config: used for a single-file text encoder that ships without a config.json
# (ComfyUI's `gemma_3_12B_it*.safetensors`); the sizes are then read from the tensor shapes instead.
GEMMA3_12B_HYPERPARAMETERS = {
    "model_type": "gemma3_text",
    "rope_theta": 1_000_000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    "rope_local_base_freq": 10_000.0,
    "sliding_window": 1024,
    "sliding_window_pattern": 6,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-6,
    "hidden_activation": "gelu_pytorch_tanh",
    "pad_token_id": 0,
    "bos_token_id": 2,
}


def _linear_factor(rope: dict | None, where: str) -> float:
    """Position divisor of a rope-scaling dict (1.0 for none / default rope)."""
    if not rope:
        return 1.0
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind == "default":
        return 1.0
    if kind != "linear":
        raise ValueError(f"Gemma 3 config: {where} rope type {kind!r} is not supported (expected 'linear' or 'default')")
    return float(rope["factor"])


@dataclass(frozen=True)
class Gemma3Config:
    """Sizes and numerics of a Gemma 3 text decoder (no vision tower, no lm_head)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    query_pre_attn_scalar: float
    rms_norm_eps: float
    global_rope_theta: float
    global_rope_factor: float
    local_rope_theta: float
    local_rope_factor: float
    sliding_window: int
    layer_types: tuple[str, ...]
    pad_token_id: int | None = 0
    bos_token_id: int | None = 2

    @classmethod
    def from_hf_config(cls, config: dict) -> "Gemma3Config":
        """Build from a decoded HF `config.json` (multimodal `gemma3` or text-only `gemma3_text`)."""
        model_type = config.get("model_type")
        if model_type == "gemma3":
            if "text_config" not in config:
                raise ValueError("Gemma 3 config: model_type 'gemma3' needs a 'text_config' entry")
            text = dict(config["text_config"])
        elif model_type == "gemma3_text":
            text = dict(config)
        else:
            raise ValueError(f"Gemma 3 config: expected model_type 'gemma3' or 'gemma3_text', got {model_type!r}")
        for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"):
            if key not in text:
                raise ValueError(f"Gemma 3 config: text config lacks {key!r}")
        activation = text.get("hidden_activation", "gelu_pytorch_tanh")
        if activation not in ("gelu_pytorch_tanh", "gelu_tanh"):
            raise ValueError(f"Gemma 3 config: hidden_activation {activation!r} is not supported")
        if text.get("attn_logit_softcapping") is not None:
            raise ValueError("Gemma 3 config: attn_logit_softcapping is not supported")

        num_layers = int(text["num_hidden_layers"])
        heads = int(text["num_attention_heads"])
        head_dim = int(text.get("head_dim") or text["hidden_size"] // heads)
        layer_types = text.get("layer_types")
        if layer_types is None:
            pattern = int(text.get("sliding_window_pattern", 6))
            layer_types = [SLIDING_ATTENTION if (i + 1) % pattern else FULL_ATTENTION for i in range(num_layers)]
        if len(layer_types) != num_layers or set(layer_types) - {FULL_ATTENTION, SLIDING_ATTENTION}:
            raise ValueError(f"Gemma 3 config: layer_types must list {num_layers} of full/sliding_attention")

        params = text.get("rope_parameters")
        if isinstance(params, dict) and FULL_ATTENTION in params:
            full, local = params[FULL_ATTENTION], params.get(SLIDING_ATTENTION, {})
            global_theta, local_theta = float(full["rope_theta"]), float(local.get("rope_theta", 10_000.0))
            global_factor = _linear_factor(full, "full-attention")
            local_factor = _linear_factor(local, "sliding-attention")
        else:
            global_theta = float(text.get("rope_theta", 1_000_000.0))
            local_theta = float(text.get("rope_local_base_freq", 10_000.0))
            global_factor = _linear_factor(text.get("rope_scaling"), "full-attention")
            local_factor = 1.0
        return cls(
            vocab_size=int(text["vocab_size"]),
            hidden_size=int(text["hidden_size"]),
            intermediate_size=int(text["intermediate_size"]),
            num_layers=num_layers,
            num_heads=heads,
            num_kv_heads=int(text.get("num_key_value_heads", heads)),
            head_dim=head_dim,
            query_pre_attn_scalar=float(text.get("query_pre_attn_scalar", head_dim)),
            rms_norm_eps=float(text.get("rms_norm_eps", 1e-6)),
            global_rope_theta=global_theta,
            global_rope_factor=global_factor,
            local_rope_theta=local_theta,
            local_rope_factor=local_factor,
            sliding_window=int(text.get("sliding_window") or 4096),
            layer_types=tuple(layer_types),
            pad_token_id=text.get("pad_token_id", config.get("pad_token_id", 0)),
            bos_token_id=text.get("bos_token_id", config.get("bos_token_id", 2)),
        )

    @property
    def num_hidden_states(self) -> int:
        """Hidden states returned per forward: the embedding output plus one per layer."""
        return self.num_layers + 1

    def ropes(self) -> dict[str, RopeSpec]:
        """RoPE of each layer type in use (every frequency pair rotates)."""
        specs = {FULL_ATTENTION: RopeSpec(self.head_dim, self.global_rope_theta, self.global_rope_factor),
                 SLIDING_ATTENTION: RopeSpec(self.head_dim, self.local_rope_theta, self.local_rope_factor)}
        return {t: specs[t] for t in set(self.layer_types)}
