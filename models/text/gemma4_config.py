"""Configuration of the Gemma 4 "unified" text model (LTX-2.5's prompt encoder), from a Hugging Face config dict.

Accepts the multimodal layout (`model_type: "gemma4_unified"` with a `text_config` sub-dict, as in the text-encoder
file's `gemma_config` metadata or an HF folder's config.json) and the text-only layout (`gemma4_unified_text`).
Keys the dict leaves out take the Hugging Face (transformers 5.14) defaults of `Gemma4UnifiedTextConfig`.

Layer types: sliding-window ("local") layers use `head_dim` and `num_key_value_heads`; full ("global") layers use
`global_head_dim` (or `head_dim` when unset) and, only when `attention_k_eq_v` makes their values the raw key
projection, `num_global_key_value_heads`. RoPE per layer type from `rope_parameters`: "default" (every pair
rotates, sized by `head_dim`) or "proportional" (a `partial_rotary_factor` share of the pairs rotates, sized by
`global_head_dim` on full layers). The last layer is always a full layer (transformers forces it).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .gemma_blocks import FULL_ATTENTION, SLIDING_ATTENTION, RopeSpec

log = logging.getLogger(__name__)

UNIFIED = "gemma4_unified"
UNIFIED_TEXT = "gemma4_unified_text"
DENSE = "gemma4"
# Gemma4UnifiedTextConfig defaults (transformers 5.14.1) for keys a config may leave out.
HF_DEFAULTS = {
    "num_key_value_heads": 4,
    "head_dim": 256,
    "global_head_dim": 512,
    "hidden_activation": "gelu_pytorch_tanh",
    "rms_norm_eps": 1e-6,
    "pad_token_id": 0,
    "attention_bias": False,
    "sliding_window": 1024,
    "use_bidirectional_attention": "vision",
    "attention_k_eq_v": False,
    "num_kv_shared_layers": 0,
    "rope_parameters": {
        SLIDING_ATTENTION: {"rope_type": "default", "rope_theta": 10_000.0},
        FULL_ATTENTION: {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0},
    },
}
SLIDING_WINDOW_PATTERN = 6  # default layer types: five sliding layers, then a full one
# Gemma4UnifiedConfig defaults of the multimodal placeholder ids (looked up as the pad embedding in text runs).
PLACEHOLDER_DEFAULTS = {"image_token_id": 258_880, "video_token_id": 258_884, "audio_token_id": 258_881}
SIZE_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


class GemmaConfigError(ValueError):
    """A Gemma config this implementation cannot build (unknown model type, missing sizes, unsupported option)."""


@dataclass(frozen=True)
class Gemma4Config:
    """Sizes and numerics of a Gemma 4 unified text decoder (no vision / audio embedders, no lm_head)."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    num_global_kv_heads: int
    head_dim: int
    global_head_dim: int
    rms_norm_eps: float
    sliding_window: int
    layer_types: tuple[str, ...]
    global_rope: RopeSpec
    local_rope: RopeSpec | None  # None when no layer slides
    attention_bias: bool = False
    global_values_from_keys: bool = False  # `attention_k_eq_v`
    pad_token_id: int = 0
    placeholder_token_ids: tuple[int, ...] = ()  # image / video / audio soft-token ids, embedded as padding
    gemma_version: str | None = None  # top-level `gemma_version` (LTX-2.5 pairs it with the transformer file)

    @classmethod
    def from_hf_config(cls, config: dict) -> "Gemma4Config":
        """Build from a decoded HF config (`gemma4_unified` with `text_config`, or `gemma4_unified_text`)."""
        text = _text_config(config)
        missing = [k for k in SIZE_KEYS if k not in text]
        if missing:
            raise GemmaConfigError(f"Gemma 4 config: text config lacks {missing}")
        text = {**HF_DEFAULTS, **text}
        _check_supported(text)
        num_layers = int(text["num_hidden_layers"])
        head_dim = int(text["head_dim"])
        global_head_dim = int(text["global_head_dim"] or head_dim)  # unset / null: the local head size
        kv_heads = int(text["num_key_value_heads"])
        global_kv_heads = int(text.get("num_global_key_value_heads") or kv_heads)
        heads = int(text["num_attention_heads"])
        used_kv_heads = {kv_heads, global_kv_heads} if text["attention_k_eq_v"] else {kv_heads}
        if any(heads % n for n in used_kv_heads):
            raise GemmaConfigError(f"Gemma 4 config: num_attention_heads {heads} is not a multiple of the key/value "
                                   f"heads {sorted(used_kv_heads)}")
        layer_types = _layer_types(text.get("layer_types"), num_layers)
        ropes = _rope_specs(text["rope_parameters"], head_dim, global_head_dim, set(layer_types))
        placeholders = ()
        if config.get("model_type") == UNIFIED:
            placeholders = tuple(int(config.get(k, d)) for k, d in PLACEHOLDER_DEFAULTS.items()
                                 if config.get(k, d) is not None)
        return cls(
            vocab_size=int(text["vocab_size"]),
            hidden_size=int(text["hidden_size"]),
            intermediate_size=int(text["intermediate_size"]),
            num_layers=num_layers,
            num_heads=heads,
            num_kv_heads=kv_heads,
            num_global_kv_heads=global_kv_heads,
            head_dim=head_dim,
            global_head_dim=global_head_dim,
            rms_norm_eps=float(text["rms_norm_eps"]),
            sliding_window=int(text["sliding_window"]),
            layer_types=layer_types,
            global_rope=ropes[FULL_ATTENTION],
            local_rope=ropes.get(SLIDING_ATTENTION),
            attention_bias=bool(text["attention_bias"]),
            global_values_from_keys=bool(text["attention_k_eq_v"]),
            pad_token_id=int(text["pad_token_id"] or 0),
            placeholder_token_ids=placeholders,
            gemma_version=config.get("gemma_version"),
        )

    @property
    def num_hidden_states(self) -> int:
        """Hidden states returned per forward: the embedding output plus one per layer."""
        return self.num_layers + 1

    def ropes(self) -> dict[str, RopeSpec]:
        """RoPE of each layer type in use."""
        return {t: self.global_rope if t == FULL_ATTENTION else self.local_rope for t in set(self.layer_types)}

    def kv_heads(self, layer_type: str) -> int:
        """Key/value heads of a layer: the global count only where full layers take values from the keys."""
        return self.num_global_kv_heads if self.values_from_keys(layer_type) else self.num_kv_heads

    def layer_head_dim(self, layer_type: str) -> int:
        return self.global_head_dim if layer_type == FULL_ATTENTION else self.head_dim

    def values_from_keys(self, layer_type: str) -> bool:
        return self.global_values_from_keys and layer_type == FULL_ATTENTION


def _text_config(config: dict) -> dict:
    model_type = config.get("model_type")
    if model_type == UNIFIED:
        if not isinstance(config.get("text_config"), dict):
            raise GemmaConfigError("Gemma 4 config: model_type 'gemma4_unified' needs a 'text_config' entry")
        return dict(config["text_config"])
    if model_type == UNIFIED_TEXT:
        return dict(config)
    if model_type == DENSE:
        raise GemmaConfigError(
            "Gemma 4 config: model_type 'gemma4' is the dense instruct Gemma 4, which LTX-2.5 uses only to enhance "
            "prompts and AVGen does not run (its per-layer embeddings and shared key/value layers are not built); "
            "the text encoder is the Gemma 4 unified model (model_type 'gemma4_unified'), and a Gemma 3 instruct "
            "can enhance prompts"
        )
    raise GemmaConfigError(f"Gemma 4 config: expected model_type 'gemma4_unified' or 'gemma4_unified_text', "
                           f"got {model_type!r}")


def _check_supported(text: dict) -> None:
    """GemmaConfigError for options that change the hidden states and are not built here."""
    if text["hidden_activation"] not in ("gelu_pytorch_tanh", "gelu_tanh"):
        raise GemmaConfigError(f"Gemma 4 config: hidden_activation {text['hidden_activation']!r} is not supported "
                               "(expected 'gelu_pytorch_tanh')")
    if text["use_bidirectional_attention"] not in ("vision", None):
        raise GemmaConfigError(f"Gemma 4 config: use_bidirectional_attention "
                               f"{text['use_bidirectional_attention']!r} is not supported (expected 'vision': "
                               "causal attention between text tokens)")
    if int(text["num_kv_shared_layers"]):
        raise GemmaConfigError(f"Gemma 4 config: num_kv_shared_layers = {text['num_kv_shared_layers']} is not "
                               "supported (expected 0: every layer computes its own keys and values)")


def _layer_types(given: list | None, num_layers: int) -> tuple[str, ...]:
    if given is None:
        given = [SLIDING_ATTENTION if (i + 1) % SLIDING_WINDOW_PATTERN else FULL_ATTENTION for i in range(num_layers)]
    if len(given) != num_layers or set(given) - {FULL_ATTENTION, SLIDING_ATTENTION}:
        raise GemmaConfigError(f"Gemma 4 config: layer_types must list {num_layers} of full/sliding_attention, "
                               f"got {given!r}")
    if given[-1] != FULL_ATTENTION:
        log.warning("Gemma 4 config: the last layer is %s; it runs as full_attention (as transformers forces it)",
                    given[-1])
        given = [*given[:-1], FULL_ATTENTION]
    return tuple(given)


def _rope_specs(params: dict | None, head_dim: int, global_head_dim: int, used: set[str]) -> dict[str, RopeSpec]:
    """RopeSpec of each layer type the model uses, checked against that type's attention head size."""
    params = HF_DEFAULTS["rope_parameters"] if params is None else params
    if not isinstance(params, dict):
        raise GemmaConfigError(f"Gemma 4 config: rope_parameters must be a dict keyed by layer type, got {params!r}")
    specs = {}
    for layer_type in sorted(used):
        entry = params.get(layer_type)
        if not isinstance(entry, dict):
            raise GemmaConfigError(f"Gemma 4 config: rope_parameters has no {layer_type!r} entry")
        spec = _rope_spec(entry, layer_type, head_dim, global_head_dim)
        attention_dim = global_head_dim if layer_type == FULL_ATTENTION else head_dim
        if spec.head_dim != attention_dim:
            raise GemmaConfigError(
                f"Gemma 4 config: {layer_type} layers have head size {attention_dim} but their "
                f"{entry.get('rope_type', 'default')!r} RoPE is sized for {spec.head_dim}"
            )
        specs[layer_type] = spec
    return specs


def _rope_spec(entry: dict, layer_type: str, head_dim: int, global_head_dim: int) -> RopeSpec:
    kind = entry.get("rope_type", "default")
    if "rope_theta" not in entry:
        raise GemmaConfigError(f"Gemma 4 config: {layer_type} rope_parameters lack 'rope_theta'")
    theta = float(entry["rope_theta"])
    if kind == "default":
        return RopeSpec(head_dim, theta)
    if kind == "proportional":
        dim = global_head_dim if layer_type == FULL_ATTENTION else head_dim
        return RopeSpec(dim, theta, float(entry.get("factor", 1.0)), float(entry.get("partial_rotary_factor", 1.0)))
    raise GemmaConfigError(f"Gemma 4 config: {layer_type} rope type {kind!r} is not supported "
                           "(expected 'default' or 'proportional')")
