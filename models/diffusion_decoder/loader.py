"""Loading the LTX-2.5 video-VAE file: the diffusion decoder and the convolutional (2.3-style) encoder.

The file's keys are bare split-layout names (``decoder.*``, ``encoder.*``, ``per_channel_statistics.*``) or the
monolith's ``vae.``-prefixed ones; both are accepted. Decoder key changes at load time:

* fused ``….attn.qkv.{weight,bias}`` -> ``….attn.to_q / to_k / to_v`` (thirds, in that order);
* ``t_embedder.mlp.0`` / ``mlp.2`` (or ``t_embedder.timestep_embedder.linear_1`` / ``linear_2``) ->
  ``t_embedder.linear_1`` / ``linear_2``;
* static per-block gates ``gate_msa`` / ``gate_mlp`` / ``gate_ctx`` (length C) multiply the output rows and bias
  of ``attn.proj`` / ``mlp.w_down`` / ``context_proj`` (in float32, rounded back to the file's dtype) and are
  dropped;
* ``coarse_*`` (a preview head) is dropped.
Statistics: ``mean-of-means`` and ``std-of-means`` are kept in float32; the other statistics are unused.
"""
from __future__ import annotations

import os

import torch

from ..checkpoint import CheckpointError, CheckpointFile, build_on_meta, load_module
from ..video_vae.config import VideoVAEConfig
from ..video_vae.vae import UNUSED_STATISTICS, VideoVAE
from .config import DiffusionDecoderConfig, DiffusionDecoderConfigError
from .model import DiffusionVideoDecoder

DECODER_PREFIXES = ("vae.decoder.", "decoder.")
ENCODER_PREFIXES = ("vae.encoder.", "encoder.")
STATISTICS_PREFIXES = ("vae.per_channel_statistics.", "per_channel_statistics.")
STATISTICS_MODULE = "per_channel_statistics."
DROPPED_PREFIX = "coarse_"
RENAMES = (
    ("t_embedder.mlp.0.", "t_embedder.linear_1."),
    ("t_embedder.mlp.2.", "t_embedder.linear_2."),
    ("t_embedder.timestep_embedder.", "t_embedder."),
)
FUSED_QKV = ".attn.qkv."
GATE_TARGETS = {
    "gate_msa": ("attn.proj.weight", "attn.proj.bias"),
    "gate_mlp": ("mlp.w_down.weight", "mlp.w_down.bias"),
    "gate_ctx": ("context_proj.weight", "context_proj.bias"),
}


def _open(ckpt: CheckpointFile | str | os.PathLike) -> CheckpointFile:
    return ckpt if isinstance(ckpt, CheckpointFile) else CheckpointFile(ckpt)


def component_prefix(ckpt: CheckpointFile, candidates: tuple[str, ...], what: str) -> str:
    """The first of `candidates` under which `ckpt` holds tensors; CheckpointError when none does."""
    for prefix in candidates:
        if ckpt.has_prefix(prefix):
            return prefix
    raise CheckpointError(f"{ckpt.path} holds no {what} tensors (looked for {', '.join(candidates)}*)")


def _renamed(name: str) -> str:
    for old, new in RENAMES:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def _gate_for(name: str, gates: dict[str, str]) -> str | None:
    """The file key of the gate that scales the decoder parameter `name`, if any."""
    for gate, targets in GATE_TARGETS.items():
        for target in targets:
            if name.endswith("." + target):
                return gates.get(name[:-len(target)] + gate)
    return None


def decoder_sources(ckpt: CheckpointFile, prefix: str) -> dict[str, tuple[str, int | None, str | None]]:
    """Module parameter name -> (file key, third of a fused qkv or None, file key of its gate or None)."""
    names = [k[len(prefix):] for k in ckpt.keys_with_prefix(prefix) if not k[len(prefix):].startswith(DROPPED_PREFIX)]
    gates = {n: prefix + n for n in names if n.rsplit(".", 1)[-1] in GATE_TARGETS}
    sources: dict[str, tuple[str, int | None, str | None]] = {}
    for name in names:
        if name in gates:
            continue
        if FUSED_QKV in name:
            head, leaf = name.split(FUSED_QKV)
            for third, part in enumerate(("to_q", "to_k", "to_v")):
                sources[f"{head}.attn.{part}.{leaf}"] = (prefix + name, third, None)
            continue
        target = _renamed(name)
        sources[target] = (prefix + name, None, _gate_for(target, gates))
    used = {gate for _, _, gate in sources.values() if gate}
    unused = sorted(set(gates.values()) - used)
    if unused:
        raise CheckpointError(f"{ckpt.path}: gates {unused[:3]} have no attn.proj / mlp.w_down / context_proj to fold "
                              "into")
    return sources


def _read(ckpt: CheckpointFile, key: str, third: int | None, gate: str | None) -> torch.Tensor:
    tensor = ckpt.get(key)
    if third is not None:
        if tensor.shape[0] % 3:
            raise CheckpointError(f"{ckpt.path}: fused {key} has {tensor.shape[0]} rows, not a multiple of 3")
        rows = tensor.shape[0] // 3
        tensor = tensor[third * rows:(third + 1) * rows]
    if gate is not None:
        scale = ckpt.get(gate).to(torch.float32)
        if scale.shape != tensor.shape[:1]:
            raise CheckpointError(f"{ckpt.path}: gate {gate} {tuple(scale.shape)} does not match {key} "
                                  f"{tuple(tensor.shape)}")
        view = scale.view(-1, *([1] * (tensor.ndim - 1)))
        tensor = (tensor.to(torch.float32) * view).to(tensor.dtype)
    return tensor


def load_decoder_weights(decoder: DiffusionVideoDecoder, ckpt: CheckpointFile, dtype: torch.dtype | None,
                         device: torch.device | str) -> None:
    """Fill the (meta-built) network weights of `decoder` from `ckpt`, applying the key changes above."""
    prefix = component_prefix(ckpt, DECODER_PREFIXES, "diffusion video decoder")
    sources = decoder_sources(ckpt, prefix)
    expected = {k: v for k, v in decoder.state_dict(keep_vars=True).items() if not k.startswith(STATISTICS_MODULE)}
    missing, unexpected = sorted(set(expected) - set(sources)), sorted(set(sources) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{ckpt.path}: the diffusion video decoder weights do not match its config; missing "
                              f"{missing[:5]}, unexpected {unexpected[:5]}")
    loaded = {}
    for name, target in expected.items():
        tensor = _read(ckpt, *sources[name])
        if tuple(tensor.shape) != tuple(target.shape):
            raise CheckpointError(f"{ckpt.path}: {sources[name][0]} gives {name} the shape {tuple(tensor.shape)}, the "
                                  f"decoder built from the file's config expects {tuple(target.shape)}")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        loaded[name] = tensor.to(device)
    decoder.load_state_dict(loaded, strict=False, assign=True)


def load_diffusion_decoder(ckpt: CheckpointFile | str | os.PathLike, dtype: torch.dtype | None = None,
                           device: torch.device | str = "cpu") -> DiffusionVideoDecoder:
    """The diffusion video decoder of a 2.5 video-VAE file (config from its ``vae`` metadata), eval mode, no grads.

    `dtype` applies to the network weights (None keeps the file's); the statistics stay float32. Raises
    `NotDiffusionVAEError` for a convolutional-decoder file, `DiffusionDecoderConfigError` for an unusable
    config and `CheckpointError` for weights that do not match it."""
    ckpt = _open(ckpt)
    decoder = build_on_meta(lambda: DiffusionVideoDecoder(DiffusionDecoderConfig.from_vae_config(ckpt.config)))
    load_decoder_weights(decoder, ckpt, dtype, device)
    load_module(decoder.per_channel_statistics, ckpt, component_prefix(ckpt, STATISTICS_PREFIXES, "statistics"),
                torch.float32, device, ignore=UNUSED_STATISTICS, what="video VAE per-channel statistics")
    return decoder.eval().requires_grad_(False)


def encoder_config(config: dict) -> VideoVAEConfig:
    """The convolutional encoder's config from a 2.5 ``vae`` config (fields nested under ``vae.encoder``,
    ``out_channels`` = latent width), in the flat form `VideoVAEConfig` reads."""
    vae = config.get("vae", config)
    encoder = vae.get("encoder") if isinstance(vae, dict) else None
    if not isinstance(encoder, dict):
        raise DiffusionDecoderConfigError("the video-VAE config has no 'vae.encoder' dict")
    flat = {
        "dims": encoder.get("dims", vae.get("dims", 3)),
        "in_channels": encoder.get("in_channels", 3),
        "latent_channels": encoder.get("out_channels", vae.get("latent_channels", 128)),
        "patch_size": encoder.get("patch_size", 4),
        "encoder_blocks": encoder.get("blocks", encoder.get("encoder_blocks", [])),
        "norm_layer": encoder.get("norm_layer", "pixel_norm"),
        "latent_log_var": encoder.get("latent_log_var", "uniform"),
        "encoder_spatial_padding_mode": encoder.get("spatial_padding_mode",
                                                    vae.get("encoder_spatial_padding_mode", "zeros")),
    }
    return VideoVAEConfig.from_config(flat)


def load_video_encoder_25(ckpt: CheckpointFile | str | os.PathLike, dtype: torch.dtype | None = None,
                          device: torch.device | str = "cpu") -> VideoVAE:
    """The convolutional encoder of a 2.5 video-VAE file as an encoder-only `VideoVAE` (``encode`` gives
    normalized latents, like the 2.3 VAE), eval mode, no grads."""
    ckpt = _open(ckpt)
    vae = build_on_meta(lambda: VideoVAE(encoder_config(ckpt.config), parts=("encoder",)))
    load_module(vae.encoder, ckpt, component_prefix(ckpt, ENCODER_PREFIXES, "video VAE encoder"), dtype, device,
                what="video VAE encoder")
    load_module(vae.per_channel_statistics, ckpt, component_prefix(ckpt, STATISTICS_PREFIXES, "statistics"),
                torch.float32, device, ignore=UNUSED_STATISTICS, what="video VAE per-channel statistics")
    return vae.eval().requires_grad_(False)
