"""LTX-2 / LTX-2.3 audio VAE: stereo log-mel (B, 2, T, 64) <-> normalized latent (B, z, ceil(T/4), 16).

Checkpoint layout: `audio_vae.encoder.*`, `audio_vae.decoder.*` and `audio_vae.per_channel_statistics.
{mean-of-means,std-of-means}` (shared by both halves). `AudioVAE.state_dict()` keys equal those keys with
`audio_vae.` stripped, for the parts it was built with. The latent is normalized per feature on the patchified
layout (B, T, z*16) (feature index c*16 + f): (x - mean-of-means) / std-of-means.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..checkpoint import CheckpointError, CheckpointFile, build_on_meta, load_module
from .audio_latents import patchify_audio_latent, unpatchify_audio_latent
from .audio_vae_blocks import AudioDecoderStack, AudioEncoderStack, Layout
from .preprocess import MelFrontEndConfig, waveform_to_log_mel

CHECKPOINT_PREFIX = "audio_vae."
PARTS = ("encoder", "decoder")
DEFAULT_ATTN_RESOLUTIONS = (8, 16, 32)  # the official configurator's default when the config has no list
# Official ddconfig defaults for the architecture keys (the released values).
DEFAULT_DDCONFIG = {"ch": 128, "ch_mult": (1, 2, 4), "num_res_blocks": 2, "z_channels": 8}
CAUSALITY_AXES = ("height", "none")  # causal in time, or not at all; "width" (causal in mel frequency) is refused
ATTENTION_TYPES = ("vanilla", "none")  # the encoder's attention blocks; "none": identity (no weights)
# Statistics some files carry beside the two the model uses (never read).
UNUSED_STATISTICS = ("channel", "mean-of-stds", "mean-of-stds_over_std-of-means")


@dataclass(frozen=True)
class AudioVAEConfig:
    """Audio VAE architecture (`config["audio_vae"]["model"]["params"]["ddconfig"]`) and front end."""

    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    z_channels: int
    double_z: bool
    in_channels: int
    out_ch: int
    mel_bins: int
    front_end: MelFrontEndConfig = field(default_factory=MelFrontEndConfig)
    attn_resolutions: frozenset[int] = frozenset()  # level resolutions with attention (official default {8,16,32})
    mid_attention: bool = False  # `mid_block_add_attention` (official default true)
    resolution: int = 256  # the nominal input size that names the levels' resolutions
    causal: bool = True  # `causality_axis` "height" (time); False for "none"
    group_norm: bool = False  # `norm_type` "group" (non-causal only) instead of "pixel"
    conv_downsample: bool = True  # `resamp_with_conv` (the encoder's; average pooling when false, non-causal only)
    encoder_attention_type: str = "vanilla"  # `attn_type` of the encoder's attention blocks

    def encoder_attention(self) -> tuple[bool, ...]:
        """Per level: attention blocks in the encoder (level i is at resolution // 2^i, halved step by step)."""
        levels, size = [], self.resolution
        for _ in self.ch_mult:
            levels.append(size in self.attn_resolutions and self.encoder_attention_type == "vanilla")
            size //= 2
        return tuple(levels)

    @property
    def encoder_mid_attention(self) -> bool:
        return self.mid_attention and self.encoder_attention_type == "vanilla"

    @property
    def encoder_layout(self) -> Layout:
        return Layout(self.causal, self.group_norm, self.conv_downsample)

    @property
    def decoder_layout(self) -> Layout:
        return Layout(self.causal, self.group_norm)

    def decoder_attention(self) -> tuple[bool, ...]:
        """Per level: attention blocks in the decoder (the deepest level at resolution // 2^(levels-1), doubled
        on the way up)."""
        top = len(self.ch_mult) - 1
        return tuple((self.resolution // 2 ** top) * 2 ** (top - i) in self.attn_resolutions
                     for i in range(len(self.ch_mult)))

    @classmethod
    def from_config(cls, audio_vae_config: dict) -> "AudioVAEConfig":
        """Build from the checkpoint's decoded `config["audio_vae"]` dict (ValueError on unsupported flags)."""
        try:
            dd = audio_vae_config["model"]["params"]["ddconfig"]
        except (KeyError, TypeError) as exc:
            raise ValueError("audio_vae config has no model.params.ddconfig entry") from exc
        dd = {**DEFAULT_DDCONFIG, **dd}
        cfg = cls(
            ch=int(dd["ch"]), ch_mult=tuple(int(m) for m in dd["ch_mult"]),
            num_res_blocks=int(dd["num_res_blocks"]), z_channels=int(dd["z_channels"]),
            double_z=bool(dd.get("double_z", True)), in_channels=int(dd.get("in_channels", 2)),
            out_ch=int(dd.get("out_ch", 2)), mel_bins=_mel_bins(audio_vae_config),
            front_end=MelFrontEndConfig.from_config(audio_vae_config),
            attn_resolutions=frozenset(int(r) for r in dd.get("attn_resolutions", DEFAULT_ATTN_RESOLUTIONS)),
            mid_attention=bool(dd.get("mid_block_add_attention", True)),
            resolution=int(dd.get("resolution", 256)),
            **_layout_options(dd),
        )
        if not cfg.ch_mult:
            raise ValueError("audio VAE ch_mult must not be empty")
        if cfg.encoder_attention_type == "linear" and (any(cfg.encoder_attention()) or cfg.mid_attention):
            raise ValueError("audio VAE attn_type 'linear' is not supported (upstream does not implement it)")
        return cfg

    @property
    def downsample_factor(self) -> int:
        """Time and frequency reduction of the encoder (4 for three levels)."""
        return 2 ** (len(self.ch_mult) - 1)

    def decoded_frames(self, latent_frames: int) -> int:
        """Mel frames decoded from `latent_frames`: max(4T - 3, 1) when causal (each level drops its first
        upsampled row), 4T otherwise (4 = `downsample_factor` of the released configs)."""
        if not self.causal:
            return latent_frames * self.downsample_factor
        return max(latent_frames * self.downsample_factor - (self.downsample_factor - 1), 1)

    @property
    def latent_mel_bins(self) -> int:
        return self.mel_bins // self.downsample_factor

    @property
    def latent_features(self) -> int:
        """Width of a patchified latent token (z * latent mel bins; 128 for the released models)."""
        return self.z_channels * self.latent_mel_bins


def _mel_bins(audio_vae_config: dict) -> int:
    """`ddconfig.mel_bins`, else the front end's `preprocessing.mel.n_mel_channels`, else `variables.mel_bins`
    (the official order), else 64."""
    dd = audio_vae_config["model"]["params"]["ddconfig"]
    mel = audio_vae_config.get("preprocessing", {}).get("mel", {})
    return int(dd.get("mel_bins") or mel.get("n_mel_channels") or
               audio_vae_config.get("variables", {}).get("mel_bins") or 64)


def _layout_options(dd: dict) -> dict:
    """Causality, norm, downsampling and encoder-attention choices; ValueError where upstream refuses too or the
    choice is not implemented."""
    axis = dd.get("causality_axis", "height") or "none"  # JSON null is upstream's CausalityAxis.NONE
    norm_type = dd.get("norm_type", "pixel")
    attn_type = dd.get("attn_type", "vanilla")
    for key, value, allowed in (("causality_axis", axis, CAUSALITY_AXES), ("norm_type", norm_type, ("pixel", "group")),
                                ("attn_type", attn_type, (*ATTENTION_TYPES, "linear"))):
        if value not in allowed:
            raise ValueError(f"audio VAE {key}={value!r} is not supported (expected one of {allowed})")
    causal, conv_downsample = axis == "height", bool(dd.get("resamp_with_conv", True))
    if causal and norm_type == "group":
        raise ValueError("audio VAE norm_type='group' is not supported with causality_axis='height' (upstream "
                         "refuses causal resnets with GroupNorm)")
    if causal and not conv_downsample:
        raise ValueError("audio VAE resamp_with_conv=false is not supported with causality_axis='height' (upstream "
                         "only pools without causality)")
    return {"causal": causal, "group_norm": norm_type == "group", "conv_downsample": conv_downsample,
            "encoder_attention_type": attn_type}


class PerChannelStatistics(nn.Module):
    """Latent normalization statistics over patchified features, buffers `mean-of-means`, `std-of-means`."""

    def __init__(self, features: int):
        super().__init__()
        self.register_buffer("std-of-means", torch.empty(features))
        self.register_buffer("mean-of-means", torch.empty(features))

    def normalize(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (x - mean) / std."""
        mean, std = self.get_buffer("mean-of-means"), self.get_buffer("std-of-means")
        return (tokens - mean.to(tokens)) / std.to(tokens)

    def un_normalize(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> x * std + mean."""
        mean, std = self.get_buffer("mean-of-means"), self.get_buffer("std-of-means")
        return tokens * std.to(tokens) + mean.to(tokens)


class AudioVAE(nn.Module):
    """Audio VAE with the parts named in `parts` (`encoder`, `decoder`) and the shared statistics."""

    def __init__(self, cfg: AudioVAEConfig, parts: tuple[str, ...] = PARTS):
        super().__init__()
        unknown = set(parts) - set(PARTS)
        if unknown or not parts:
            raise ValueError(f"audio VAE parts must be a non-empty subset of {PARTS}, got {parts!r}")
        self.cfg = cfg
        self.parts = tuple(p for p in PARTS if p in parts)
        if "encoder" in parts:
            moments = cfg.z_channels * (2 if cfg.double_z else 1)
            self.encoder = AudioEncoderStack(cfg.in_channels, cfg.ch, cfg.ch_mult, cfg.num_res_blocks, moments,
                                             cfg.encoder_attention(), cfg.encoder_mid_attention, cfg.encoder_layout)
        if "decoder" in parts:
            self.decoder = AudioDecoderStack(cfg.z_channels, cfg.ch, cfg.ch_mult, cfg.num_res_blocks, cfg.out_ch,
                                             cfg.decoder_attention(), cfg.mid_attention, cfg.decoder_layout)
        self.per_channel_statistics = PerChannelStatistics(cfg.latent_features)

    def _require(self, part: str) -> nn.Module:
        if part not in self.parts:
            raise ValueError(f"this audio VAE was loaded without its {part} (parts={self.parts})")
        return getattr(self, part)

    @property
    def dtype(self) -> torch.dtype:
        return self.per_channel_statistics.get_buffer("std-of-means").dtype

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel (B, in_channels, T, mel_bins) -> normalized latent (B, z, ceil(T/4), mel_bins/4)."""
        encoder = self._require("encoder")
        c = self.cfg
        if mel.ndim != 4 or mel.shape[1] != c.in_channels or mel.shape[3] != c.mel_bins:
            raise ValueError(f"audio VAE encode expects a log-mel (batch, {c.in_channels}, frames, {c.mel_bins}), "
                             f"got {tuple(mel.shape)}")
        moments = encoder(mel.to(self.dtype))
        means = moments[:, : c.z_channels] if c.double_z else moments
        tokens = self.per_channel_statistics.normalize(patchify_audio_latent(means))
        return unpatchify_audio_latent(tokens, c.z_channels, means.shape[3])

    def encode_waveform(self, waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """(B, in_channels, N) float audio at `sample_rate` Hz -> normalized latent (the official encode_audio).

        Resampled to 16 kHz and turned into a log-mel in float32 first. Other channel counts or layouts: run
        `preprocess.prepare_audio` first.
        """
        if waveform.ndim != 3 or waveform.shape[1] != self.cfg.in_channels:
            raise ValueError(f"audio VAE encode_waveform expects (batch, {self.cfg.in_channels}, samples), got "
                             f"{tuple(waveform.shape)}; use preprocess.prepare_audio to mix channels")
        return self.encode(waveform_to_log_mel(waveform, sample_rate, self.cfg.front_end))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Normalized latent (B, z, T, mel_bins/4) -> log-mel (B, out_ch, max(4T-3, 1), mel_bins)."""
        decoder = self._require("decoder")
        c = self.cfg
        if latent.ndim != 4 or latent.shape[1] != c.z_channels or latent.shape[3] != c.latent_mel_bins:
            raise ValueError(f"audio VAE decode expects a latent (batch, {c.z_channels}, frames, "
                             f"{c.latent_mel_bins}), got {tuple(latent.shape)}")
        tokens = self.per_channel_statistics.un_normalize(patchify_audio_latent(latent.to(self.dtype)))
        mel = decoder(unpatchify_audio_latent(tokens, c.z_channels, c.latent_mel_bins))
        return _fit_mel(mel, c.out_ch, c.decoded_frames(latent.shape[2]), c.mel_bins)


def _fit_mel(mel: torch.Tensor, channels: int, frames: int, mel_bins: int) -> torch.Tensor:
    """Crop, or zero-pad at the end, the decoder output to (B, channels, frames, mel_bins)."""
    mel = mel[:, :channels, :frames, :mel_bins]
    pad_t, pad_f = frames - mel.shape[2], mel_bins - mel.shape[3]
    if pad_t > 0 or pad_f > 0:
        mel = torch.nn.functional.pad(mel, (0, max(pad_f, 0), 0, max(pad_t, 0)))
    return mel


def build_audio_vae(config: dict, parts: tuple[str, ...] = PARTS) -> AudioVAE:
    """Audio VAE from a decoded checkpoint `config` dict (the whole dict or its `audio_vae` entry).

    Builds in the current default device context (wrap in `build_on_meta` for a weightless model).
    """
    audio_cfg = config.get("audio_vae", config)
    return AudioVAE(AudioVAEConfig.from_config(audio_cfg), parts)


def load_audio_vae(
    ckpt: CheckpointFile | str,
    dtype: torch.dtype | None = torch.float32,
    device: torch.device | str = "cpu",
    parts: tuple[str, ...] = PARTS,
) -> AudioVAE:
    """Load the audio VAE parts from a single-file checkpoint, in eval mode."""
    ckpt = ckpt if isinstance(ckpt, CheckpointFile) else CheckpointFile(ckpt)
    if "audio_vae" not in ckpt.config:
        raise CheckpointError(f"{ckpt.path}: metadata config has no 'audio_vae' entry")
    model = build_on_meta(lambda: build_audio_vae(ckpt.config, tuple(parts)))
    others = [p for p in PARTS if p not in model.parts]
    ignore = [k[len(CHECKPOINT_PREFIX):] for k in ckpt.keys_with_prefix(CHECKPOINT_PREFIX)
              if any(k.startswith(f"{CHECKPOINT_PREFIX}{p}.") for p in others)]
    ignore += [f"per_channel_statistics.{name}" for name in UNUSED_STATISTICS]
    load_module(model, ckpt, CHECKPOINT_PREFIX, dtype=dtype, device=device, ignore=ignore, what="audio VAE")
    return model.eval().requires_grad_(False)
