"""Configuration of the LTX-side text modules (Gemma feature extractor + embeddings connectors).

Everything is read from the `transformer` dict of the checkpoint's `config` metadata, as the official
encoder configurator does:

* feature extractor V1 (LTX-2 19B) when none of the caption-projection keys is present; V2 (LTX-2.3,
  `text_encoder_norm_type: "per_token_rms"`, projection before the connector) otherwise;
* connector widths from `connector_*` keys, the audio connector from `audio_connector_*` keys (falling back to
  the video values); 128 learnable registers (the official code ignores `connector_num_learnable_registers`)
  and always a final RMS norm (it ignores `connector_norm_output` too).

The Gemma side is described by `caption_channels` (Gemma width); the number of stacked Gemma hidden states is
not in the metadata: it is read from the projection weight shape when loading from a file.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..rope import rope_type

NUM_LEARNABLE_REGISTERS = 128
CONNECTOR_ROPE_THETA = 10_000.0
# Gemma-3-12B (LTX-2's text encoder): embedding output + 48 layers, width 3840 (`caption_channels` default).
GEMMA3_12B_NUM_HIDDEN_STATES = 49
GEMMA3_12B_WIDTH = 3840
# (metadata key, the only value the connectors support); a missing key counts as that value.
_CONNECTOR_REQUIRED_VALUES = (
    ("connector_ff_bias", True),
)

V2_CAPTION_KEYS = (
    "caption_proj_before_connector",
    "caption_projection_first_linear",
    "caption_proj_input_norm",
    "caption_projection_second_linear",
)


@dataclass(frozen=True)
class ConnectorConfig:
    """One embeddings connector: `num_layers` blocks of width `heads * head_dim`."""

    heads: int
    head_dim: int
    num_layers: int
    max_pos: tuple[int, ...]
    gated: bool
    num_registers: int = NUM_LEARNABLE_REGISTERS
    rope_theta: float = CONNECTOR_ROPE_THETA
    double_precision_rope: bool = True  # frequencies_precision "float64" (the releases); otherwise float32
    interleaved_rope: bool = False  # rope_type "interleaved" (legacy); the releases use "split"

    @property
    def width(self) -> int:
        return self.heads * self.head_dim


@dataclass(frozen=True)
class TextEmbedderConfig:
    """Feature-extractor version, Gemma sizes and both connectors."""

    version: int  # 1 = LTX-2 19B (masked mean/min/max), 2 = LTX-2.3 (per-token RMS, per-modality projection)
    gemma_width: int
    num_hidden_states: int
    video: ConnectorConfig
    audio: ConnectorConfig

    @property
    def feature_dim(self) -> int:
        """Width of the flattened stacked hidden states (Gemma width x number of hidden states)."""
        return self.gemma_width * self.num_hidden_states

    @classmethod
    def from_transformer_config(
        cls, config: dict, num_hidden_states: int = GEMMA3_12B_NUM_HIDDEN_STATES
    ) -> "TextEmbedderConfig":
        """Build from the `transformer` metadata dict (or the whole `config` dict holding it)."""
        config = config.get("transformer", config)
        required = ("connector_num_attention_heads", "connector_attention_head_dim", "connector_num_layers")
        absent = [k for k in required if k not in config]
        if absent:
            raise ValueError(f"transformer config lacks the text-connector keys {absent}")
        _check_supported(config)
        video = ConnectorConfig(
            heads=int(config["connector_num_attention_heads"]),
            head_dim=int(config["connector_attention_head_dim"]),
            num_layers=int(config["connector_num_layers"]),
            max_pos=tuple(int(p) for p in config.get("connector_positional_embedding_max_pos", [1])),
            gated=bool(config.get("connector_apply_gated_attention", False)),
            double_precision_rope=config.get("frequencies_precision") == "float64",
            interleaved_rope=rope_type(config, "text connectors") == "interleaved",
        )
        audio = ConnectorConfig(
            heads=int(config.get("audio_connector_num_attention_heads", video.heads)),
            head_dim=int(config.get("audio_connector_attention_head_dim", video.head_dim)),
            num_layers=int(config.get("audio_connector_num_layers", video.num_layers)),
            max_pos=video.max_pos,
            gated=video.gated,
            double_precision_rope=video.double_precision_rope,
            interleaved_rope=video.interleaved_rope,
        )
        _check_even_head_dims(video, audio)
        gemma_width = int(config.get("caption_channels", GEMMA3_12B_WIDTH))
        return cls(_feature_extractor_version(config), gemma_width, num_hidden_states, video, audio)


def _check_supported(config: dict) -> None:
    """ValueError for text-path flags this implementation does not build."""
    if not config.get("use_embeddings_connector", True):
        raise ValueError("transformer config has use_embeddings_connector = false: not an LTX-2 / 2.3 text path")
    for key, value in _CONNECTOR_REQUIRED_VALUES:
        if config.get(key, value) != value:
            raise ValueError(f"text connectors: {key}={config[key]!r} is not supported (expected {value!r})")


def _check_even_head_dims(video: ConnectorConfig, audio: ConnectorConfig) -> None:
    """The official connectors only fail at run time (split RoPE) on odd head dims; fail at build time."""
    for key, connector in (("connector_attention_head_dim", video), ("audio_connector_attention_head_dim", audio)):
        if connector.head_dim < 2 or connector.head_dim % 2:
            raise ValueError(f"text connectors: {key}={connector.head_dim} must be even (split RoPE rotates head "
                             "halves)")


def _feature_extractor_version(config: dict) -> int:
    present = [k for k in V2_CAPTION_KEYS if k in config]
    if not present:
        return 1
    norm_type = config.get("text_encoder_norm_type", "per_token_rms")  # absent: V2 as official (never read there)
    supported = (
        config.get("caption_proj_before_connector") is True
        and not config.get("caption_projection_first_linear")
        and not config.get("caption_projection_second_linear")
        and not config.get("caption_proj_input_norm")
        and norm_type == "per_token_rms"
    )
    if not supported:
        raise ValueError(
            "unsupported text feature-extractor config: expected either none of "
            f"{list(V2_CAPTION_KEYS)} (LTX-2) or caption_proj_before_connector = true, the other three false and "
            f"text_encoder_norm_type = 'per_token_rms' (LTX-2.3); got "
            f"{ {k: config.get(k) for k in present} }, text_encoder_norm_type = {norm_type!r}"
        )
    return 2
