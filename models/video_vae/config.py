"""Video VAE configuration read from the checkpoint's ``config["vae"]`` metadata.

Every behaviour choice follows the official configurators: block lists, widths, padding modes, patch size,
causality of the decoder and timestep conditioning. The 19B metadata may state ``timestep_conditioning:
false`` for a decoder that has the conditioning weights (or the opposite), so `from_checkpoint` lets the
presence of ``vae.decoder.*time_embedder*`` keys decide whenever the file holds a decoder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..checkpoint import CheckpointFile

ENCODER_PREFIX = "vae.encoder."
DECODER_PREFIX = "vae.decoder."
STATISTICS_PREFIX = "vae.per_channel_statistics."

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")  # the official PaddingModeType values
LOG_VAR_EXTRA_CHANNELS = {"uniform": 1, "constant": 1, "none": 0}  # "per_channel" doubles the channels

# (time, height, width) strides of the resampling blocks.
ENCODER_STRIDES = {  # space-to-depth downsamplers (channel multiplier default 2)
    "compress_space_res": (1, 2, 2),
    "compress_time_res": (2, 1, 1),
    "compress_all_res": (2, 2, 2),
}
ENCODER_CONV_STRIDES = {  # strided causal convolutions (channel multiplier: 1, or default 2 for _x_y)
    "compress_space": (1, 2, 2),
    "compress_time": (2, 1, 1),
    "compress_all": (2, 2, 2),
    "compress_all_x_y": (2, 2, 2),
}
NORM_LAYERS = ("pixel_norm", "group_norm")  # group_norm: GroupNorm(32) with weights in resnets and before conv_out
CHANNEL_RESNET = "res_x_y"  # one resnet that multiplies (encoder) or divides (decoder) the channels, default 2
DECODER_STRIDES = {
    "compress_space": (1, 2, 2),
    "compress_time": (2, 1, 1),
    "compress_all": (2, 2, 2),
}


ATTENTION = "attn"  # single-head self-attention within each frame, channels kept (both sides)
VAE_CLASS = "CausalVideoAutoencoder"  # `vae._class_name`; the official CausalDiffusionVAE (LTX-2.5) is another model


@dataclass(frozen=True)
class BlockSpec:
    """One entry of a block list: ``res_x`` (``num_layers`` resnets), ``res_x_y``, ``attn`` or a resampling block.

    `multiplier` is the channel growth (encoder) or reduction (decoder) of a resampling block or ``res_x_y``;
    `residual` adds the depth-to-space shortcut of a decoder upsampler; `inject_noise` adds learned-scale noise
    after each resnet convolution (decoder only: the official encoder ignores the flag).
    """

    name: str
    num_layers: int = 0
    multiplier: int = 1
    residual: bool = False
    stride: tuple[int, int, int] = (1, 1, 1)
    inject_noise: bool = False


def _default_multiplier(name: str, side: str) -> int:
    """The official defaults: encoder space-to-depth blocks, res_x_y and compress_all_x_y double the channels;
    decoder upsamplers keep them unless told."""
    if name == CHANNEL_RESNET or name == "compress_all_x_y" or (side == "encoder" and name in ENCODER_STRIDES):
        return 2
    return 1


def _multiplier(name: str, params: dict, side: str, where: str) -> int:
    """The block's channel multiplier; the encoder's plain strided convs keep the channels whatever it says."""
    if side == "encoder" and name in ENCODER_CONV_STRIDES and name != "compress_all_x_y":
        return 1
    multiplier = params.get("multiplier", _default_multiplier(name, side))
    if not isinstance(multiplier, int) or multiplier < 1:
        raise ValueError(f"{where}: {name} multiplier must be a positive integer, got {multiplier!r}")
    return multiplier


# This project's own extension key (AVGen-Tiny's VAE, trained before the official rule was followed here): honour
# `residual` on every decoder upsampler. The official decoder reads it on compress_all only and ignores it elsewhere.
RESIDUAL_ON_EVERY_UPSAMPLER = "avgen_residual_on_every_upsampler"


def _has_residual(name: str, params: dict, side: str, every_upsampler: bool) -> bool:
    upsampler = side == "decoder" and name in DECODER_STRIDES
    return upsampler and (name == "compress_all" or every_upsampler) and bool(params.get("residual", False))


def _block_spec(name: str, params: dict, strides: dict, side: str, where: str,
                residual_everywhere: bool = False) -> BlockSpec:
    noise = side == "decoder" and bool(params.get("inject_noise", False))
    if name == "res_x":
        if not isinstance(params.get("num_layers"), int) or params["num_layers"] < 0:
            raise ValueError(f"{where}: res_x needs num_layers >= 0, got {params.get('num_layers')!r}")
        return BlockSpec(name, num_layers=params["num_layers"], inject_noise=noise)
    if name == ATTENTION:
        return BlockSpec(name)
    if name in strides or name == CHANNEL_RESNET:
        return BlockSpec(
            name, multiplier=_multiplier(name, params, side, where),
            residual=_has_residual(name, params, side, residual_everywhere),
            stride=strides.get(name, (1, 1, 1)), inject_noise=noise and name == CHANNEL_RESNET,
        )
    if name == "attn_res_x" and side == "decoder":
        raise ValueError(f"{where}: attn_res_x is not supported (the official decoder cannot build it either: its "
                         "res_x block takes no attention_head_dim)")
    raise ValueError(f"{where}: unknown block {name!r}; expected res_x, {CHANNEL_RESNET}, {ATTENTION} or one of "
                     f"{sorted(strides)}")


def _parse_blocks(raw: list, strides: dict, side: str, residual_everywhere: bool = False) -> tuple[BlockSpec, ...]:
    blocks = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise ValueError(f"vae.{side}_blocks[{i}]: expected [name, params], got {entry!r}")
        name, params = entry
        params = {"num_layers": params} if isinstance(params, int) else dict(params or {})
        blocks.append(_block_spec(name, params, strides, side, f"vae.{side}_blocks[{i}]", residual_everywhere))
    return tuple(blocks)


def _scale_factors(blocks: tuple[BlockSpec, ...], patch_size: int) -> tuple[int, int, int]:
    t = math.prod(b.stride[0] for b in blocks)
    h = math.prod(b.stride[1] for b in blocks) * patch_size
    w = math.prod(b.stride[2] for b in blocks) * patch_size
    return t, h, w


@dataclass(frozen=True)
class VideoVAEConfig:
    """Architecture of the video VAE (encoder + decoder); sizes in channels, strides in frames/pixels."""

    in_channels: int
    out_channels: int
    latent_channels: int
    patch_size: int
    encoder_blocks: tuple[BlockSpec, ...]
    decoder_blocks: tuple[BlockSpec, ...]
    decoder_base_channels: int
    encoder_padding: str
    decoder_padding: str
    latent_log_var: str
    causal_decoder: bool
    timestep_conditioning: bool
    norm_layer: str = "pixel_norm"

    @classmethod
    def from_config(cls, config: dict) -> "VideoVAEConfig":
        """Build from the decoded checkpoint ``config`` (with a ``vae`` entry) or from the ``vae`` dict."""
        vae = config.get("vae", config)
        if isinstance(vae, dict) and vae.get("_class_name", VAE_CLASS) != VAE_CLASS:
            raise ValueError(f"vae._class_name {vae['_class_name']!r} is not supported (expected {VAE_CLASS!r}; the "
                             "diffusion VAE of later releases is another model)")
        if not isinstance(vae, dict) or ("decoder_blocks" not in vae and "encoder_blocks" not in vae):
            raise ValueError("checkpoint config has no 'vae' entry with encoder_blocks / decoder_blocks")
        if vae.get("dims", 3) != 3:
            raise ValueError(f"vae.dims must be 3 (video), got {vae.get('dims')}")
        norm_layer = vae.get("norm_layer", "pixel_norm")
        if norm_layer not in NORM_LAYERS:
            raise ValueError(f"vae.norm_layer must be one of {NORM_LAYERS}, got {norm_layer!r}")
        encoder_padding = vae.get("spatial_padding_mode", vae.get("encoder_spatial_padding_mode", "zeros"))
        decoder_padding = vae.get("spatial_padding_mode", vae.get("decoder_spatial_padding_mode", "reflect"))
        for what, mode in (("encoder", encoder_padding), ("decoder", decoder_padding)):
            if mode not in PADDING_MODES:
                raise ValueError(f"vae {what} spatial padding mode must be one of {PADDING_MODES}, got {mode!r}")
        log_var = vae.get("latent_log_var", "uniform")
        if log_var not in LOG_VAR_EXTRA_CHANNELS and log_var != "per_channel":
            raise ValueError(f"vae.latent_log_var {log_var!r} is not one of uniform/constant/per_channel/none")
        return cls(
            in_channels=int(vae.get("in_channels", 3)),
            out_channels=int(vae.get("out_channels", 3)),
            latent_channels=int(vae.get("latent_channels", 128)),
            patch_size=int(vae.get("patch_size", 4)),
            encoder_blocks=_parse_blocks(vae.get("encoder_blocks", []), {**ENCODER_STRIDES, **ENCODER_CONV_STRIDES},
                                         "encoder"),
            decoder_blocks=_parse_blocks(vae.get("decoder_blocks", []), DECODER_STRIDES, "decoder",
                                         bool(vae.get(RESIDUAL_ON_EVERY_UPSAMPLER, False))),
            decoder_base_channels=int(vae.get("decoder_base_channels", 128)),
            encoder_padding=encoder_padding,
            decoder_padding=decoder_padding,
            latent_log_var=log_var,
            causal_decoder=bool(vae.get("causal_decoder", False)),
            timestep_conditioning=bool(vae.get("timestep_conditioning", True)),
            norm_layer=norm_layer,
        )

    @classmethod
    def from_checkpoint(cls, ckpt: CheckpointFile) -> "VideoVAEConfig":
        """`from_config` on the file's metadata; decoder time-embedder keys decide timestep conditioning."""
        config = cls.from_config(ckpt.config)
        decoder_keys = ckpt.keys_with_prefix(DECODER_PREFIX)
        if decoder_keys:
            has_time = any("time_embedder" in k for k in decoder_keys)
            if has_time != config.timestep_conditioning:
                config = replace(config, timestep_conditioning=has_time)
        return config

    @property
    def encoder_scale(self) -> tuple[int, int, int]:
        """(time, height, width) compression of the encoder, e.g. (8, 32, 32)."""
        return _scale_factors(self.encoder_blocks, self.patch_size)

    @property
    def decoder_scale(self) -> tuple[int, int, int]:
        """(time, height, width) expansion of the decoder, e.g. (8, 32, 32)."""
        return _scale_factors(self.decoder_blocks, self.patch_size)

    @property
    def encoder_out_channels(self) -> int:
        """Width of the encoder's conv_out: latent means plus the log-variance channel(s)."""
        if self.latent_log_var == "per_channel":
            return 2 * self.latent_channels
        return self.latent_channels + LOG_VAR_EXTRA_CHANNELS[self.latent_log_var]

    @property
    def injects_noise(self) -> bool:
        """Whether any decoder block adds random noise (``inject_noise``), so decoding draws random numbers."""
        return any(b.inject_noise for b in self.decoder_blocks)

    @property
    def decoder_bottleneck_channels(self) -> int:
        """Width after the decoder's conv_in: base channels times every upsampler's channel reduction."""
        return self.decoder_base_channels * math.prod(b.multiplier for b in self.decoder_blocks if b.name != "res_x")

