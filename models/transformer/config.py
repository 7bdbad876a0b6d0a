"""Configuration of the audio-video DiT, read from a checkpoint's `config["transformer"]` metadata.

Defaults and required values follow the official configurator: sizes default to the 19B/2.3 ones, behaviour
flags that the code does not implement must have their only supported value (else ValueError). The LTX-2.5
switches (`ff_bias`, `audio_ff_bias`, `use_keyframes_abs_pos_embedding`, `use_prompt_adaln_single`) default to
the pre-2.5 behaviour when absent.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..rope import rope_type

# (metadata key, the only value this implementation supports); a missing key counts as that value.
_REQUIRED_VALUES = (
    ("dropout", 0.0),
    ("attention_bias", True),
    ("num_vector_embeds", None),
    ("activation_fn", "gelu-approximate"),
    ("num_embeds_ada_norm", 1000),
    ("use_linear_projection", False),
    ("only_cross_attention", False),
    ("cross_attention_norm", True),
    ("double_self_attention", False),
    ("upcast_attention", False),
    ("standardization_norm", "rms_norm"),
    ("norm_elementwise_affine", False),
    ("qk_norm", "rms_norm"),
    ("positional_embedding_type", "rope"),
    ("use_audio_video_cross_attention", True),
    ("share_ff", False),
    ("av_cross_ada_norm", True),
    ("use_middle_indices_grid", True),
)

BASE_ADALN_PARAMS = 6  # shift/scale/gate of self-attention and feed-forward
CROSS_ATTENTION_ADALN_PARAMS = 3  # shift/scale of the text-attention query and its gate (2.3)


def _flag(t: dict, key: str, default: bool) -> bool:
    """A boolean config entry (absent = `default`); anything but true / false is refused."""
    value = t.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"DiT config: {key}={value!r} must be true or false")
    return value


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes and behaviour flags of the DiT. Widths are heads x head dim (video D_v, audio D_a)."""

    num_layers: int
    video_heads: int
    video_head_dim: int
    audio_heads: int
    audio_head_dim: int
    video_in_channels: int
    video_out_channels: int
    audio_in_channels: int
    audio_out_channels: int
    video_context_dim: int  # text context width seen by attn2 (after the 19B caption projection)
    audio_context_dim: int
    caption_channels: int
    caption_projection: bool  # 19B: text projection inside the DiT; 2.3: done by the text encoder
    gated_attention: bool  # 2.3: per-head output gate in every attention
    cross_attention_adaln: bool  # 2.3: AdaLN-modulated, gated text cross-attention + prompt AdaLN
    norm_eps: float
    rope_theta: float
    double_precision_rope: bool  # frequencies_precision "float64" (the releases); otherwise a float32 grid
    interleaved_rope: bool  # rope_type "interleaved" (legacy); the releases use "split"
    video_max_pos: tuple[int, ...]
    audio_max_pos: tuple[int, ...]
    timestep_scale_multiplier: float
    av_ca_timestep_scale_multiplier: float
    video_ff_bias: bool = True  # 2.5: False = the video feed-forward Linears have no biases
    audio_ff_bias: bool = True
    keyframe_embedding: bool = False  # 2.5: learned (1, D_v) vector added to tokens marked in keyframes_mask
    timestep_prompt_adaln: bool = True  # False (KV-cacheable): text K/V get only the static per-block table

    @property
    def video_dim(self) -> int:
        return self.video_heads * self.video_head_dim

    @property
    def audio_dim(self) -> int:
        return self.audio_heads * self.audio_head_dim

    @property
    def adaln_params(self) -> int:
        """AdaLN rows per block: 6 (19B) or 9 (2.3)."""
        return BASE_ADALN_PARAMS + (CROSS_ATTENTION_ADALN_PARAMS if self.cross_attention_adaln else 0)

    @property
    def cross_max_pos(self) -> int:
        """Max position of the time axis shared by both streams in AV cross-attention RoPE."""
        return max(self.video_max_pos[0], self.audio_max_pos[0])

    @property
    def av_gate_factor(self) -> float:
        """Extra factor on the other stream's sigma * timestep_scale_multiplier for the AV gates."""
        return self.av_ca_timestep_scale_multiplier / self.timestep_scale_multiplier

    @classmethod
    def from_checkpoint_config(cls, config: dict) -> "TransformerConfig":
        """Build from the decoded checkpoint `config` metadata (the dict holding a "transformer" entry)."""
        if not isinstance(config, dict) or not isinstance(config.get("transformer"), dict):
            raise ValueError("DiT config: expected the checkpoint's decoded `config` metadata with a "
                             "'transformer' dict (is this an LTX-2 / LTX-2.3 checkpoint?)")
        t = config["transformer"]
        for key, value in _REQUIRED_VALUES:
            if t.get(key, value) != value:
                raise ValueError(f"DiT config: {key}={t[key]!r} is not supported (expected {value!r})")
        video_heads = t.get("num_attention_heads", 32)
        audio_heads = t.get("audio_num_attention_heads", 32)
        if video_heads != audio_heads:
            raise ValueError(f"DiT config: video and audio head counts must match for AV cross-attention "
                             f"RoPE, got {video_heads} and {audio_heads}")
        config = cls(
            num_layers=t.get("num_layers", 48),
            video_heads=video_heads,
            video_head_dim=t.get("attention_head_dim", 128),
            audio_heads=audio_heads,
            audio_head_dim=t.get("audio_attention_head_dim", 64),
            video_in_channels=t.get("in_channels", 128),
            video_out_channels=t.get("out_channels", 128),
            audio_in_channels=t.get("audio_in_channels", 128),
            audio_out_channels=t.get("audio_out_channels", 128),
            video_context_dim=t.get("cross_attention_dim", 4096),
            audio_context_dim=t.get("audio_cross_attention_dim", 2048),
            caption_channels=t.get("caption_channels", 3840),
            caption_projection=not t.get("caption_proj_before_connector", False),
            gated_attention=bool(t.get("apply_gated_attention", False)),
            cross_attention_adaln=bool(t.get("cross_attention_adaln", False)),
            norm_eps=t.get("norm_eps", 1e-6),
            rope_theta=t.get("positional_embedding_theta", 10000.0),
            double_precision_rope=t.get("frequencies_precision") == "float64",
            interleaved_rope=rope_type(t, "DiT config") == "interleaved",
            video_max_pos=tuple(t.get("positional_embedding_max_pos", [20, 2048, 2048])),
            audio_max_pos=tuple(t.get("audio_positional_embedding_max_pos", [20])),
            timestep_scale_multiplier=t.get("timestep_scale_multiplier", 1000),
            av_ca_timestep_scale_multiplier=t.get("av_ca_timestep_scale_multiplier", 1),
            video_ff_bias=_flag(t, "ff_bias", True),
            audio_ff_bias=_flag(t, "audio_ff_bias", True),
            keyframe_embedding=_flag(t, "use_keyframes_abs_pos_embedding", False),
            timestep_prompt_adaln=_flag(t, "use_prompt_adaln_single", True),
        )
        config._check_widths()
        return config

    def _check_widths(self) -> None:
        """Width rules the official model only hits at run time (RoPE table reshapes, attention input widths)."""
        for key, head_dim in (("attention_head_dim", self.video_head_dim),
                              ("audio_attention_head_dim", self.audio_head_dim)):
            if head_dim < 2 or head_dim % 2:
                raise ValueError(f"DiT config: {key}={head_dim} must be even (split RoPE rotates head halves)")
        if self.audio_context_dim != self.audio_dim:
            raise ValueError(f"DiT config: audio_cross_attention_dim={self.audio_context_dim} must equal the audio "
                             f"width audio_num_attention_heads x audio_attention_head_dim = {self.audio_dim} (it "
                             f"sizes the AV cross-attention RoPE and the audio text context)")
        if self.caption_projection and self.video_context_dim != self.video_dim:
            raise ValueError(f"DiT config: cross_attention_dim={self.video_context_dim} must equal the video width "
                             f"num_attention_heads x attention_head_dim = {self.video_dim}: the in-DiT caption "
                             f"projection (no caption_proj_before_connector) outputs that width")
