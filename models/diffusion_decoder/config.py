"""Architecture of the LTX-2.5 diffusion video decoder ("DiffVAE"), read from a video-VAE file's ``config["vae"]``.

A video-VAE config whose ``_class_name`` is absent or ``"CausalVideoAutoencoder"`` describes the convolutional
decoder; any other class (2.5: ``"CausalDiffusionVAE"``) the diffusion decoder. Decoder fields sit under
``vae.decoder`` (falling back to the flat ``vae`` dict); ``model_output_type`` sits at the top of ``vae``.

The network has five stages: four deterministic neighbourhood-attention stages, each closed by a pixel-shuffle
upsample (``upsamples[i]``), turn the latent into a context volume at stage-5 token resolution; stage 5 denoises
4x4-patchified pixels guided by that context. Derived sizes below are in latent cells, stage-4-input cells
(the grid the decode tiles are laid on) or pixels, as named.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

CONV_VAE_CLASS = "CausalVideoAutoencoder"
OUTPUT_TYPES = ("v", "x0")
STAGES = 5  # four deterministic stages + the diffusion stage
MLP_RATIO = 4
MLP_ROUNDING = 16


class DiffusionDecoderConfigError(ValueError):
    """The checkpoint's ``vae`` config cannot describe a diffusion video decoder this code can build."""


class NotDiffusionVAEError(DiffusionDecoderConfigError):
    """The video-VAE file holds the convolutional decoder, not the diffusion decoder."""


Kernel = tuple[int, int, int]


@dataclass(frozen=True)
class UpsampleSpec:
    """One Linear pixel-shuffle upsample: (time, height, width) stride and the channel reduction factor."""

    stride: Kernel
    reduction: int


_DEFAULT_KERNELS: tuple[Kernel, ...] = ((3, 7, 7), (3, 7, 7), (3, 5, 5), (3, 5, 5), (3, 3, 3))
_DEFAULT_UPSAMPLES = (
    UpsampleSpec((1, 2, 2), 2), UpsampleSpec((2, 1, 1), 2), UpsampleSpec((2, 2, 2), 1), UpsampleSpec((2, 2, 2), 2),
)


def is_diffusion_vae(config: dict) -> bool:
    """Whether a decoded checkpoint config (or its ``vae`` dict) describes the diffusion video decoder."""
    vae = config.get("vae", config) if isinstance(config, dict) else {}
    return isinstance(vae, dict) and vae.get("_class_name", CONV_VAE_CLASS) != CONV_VAE_CLASS


def default_rope_split(head_dim: int) -> Kernel:
    """Per-head RoPE channels (time, height, width): time gets 2·⌊head_dim/8⌋, height and width share the rest
    equally, and when that share is odd time gives up two channels (64 -> (16, 24, 24), 24 -> (4, 10, 10))."""
    if head_dim % 8 or head_dim <= 8:
        raise DiffusionDecoderConfigError(f"vae.decoder.head_dim must be a multiple of 8 above 8, got {head_dim}")
    d_t = 2 * (head_dim // 8)
    d_hw = (head_dim - d_t) // 2
    if d_hw % 2:
        d_t -= 2
        d_hw = (head_dim - d_t) // 2
    return d_t, d_hw, d_hw


def mlp_hidden(dim: int) -> int:
    """SwiGLU hidden width: 4·dim rounded up to a multiple of 16."""
    return -(-dim * MLP_RATIO // MLP_ROUNDING) * MLP_ROUNDING


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class DiffusionDecoderConfig:
    """Sizes in channels, kernels and strides as (time, height, width); defaults are the official class defaults."""

    latent_channels: int = 128
    out_channels: int = 3
    patch_size: int = 4
    head_dim: int = 64
    t_emb_dim: int = 384
    default_num_steps: int = 2
    timestep_scale_multiplier: float = 1.0
    stage_channels: tuple[int, ...] = (1024, 512, 256, 256, 128)
    stage_depths: tuple[int, ...] = (4, 6, 4, 2, 8)
    stage_kernels: tuple[Kernel, ...] = _DEFAULT_KERNELS
    upsamples: tuple[UpsampleSpec, ...] = _DEFAULT_UPSAMPLES
    stage5_kernel: Kernel = (3, 7, 7)
    stage5_channels: int | None = None
    model_output_type: str = "v"

    def __post_init__(self):
        where = "vae.decoder"
        for name in ("latent_channels", "out_channels", "patch_size", "t_emb_dim", "default_num_steps"):
            if getattr(self, name) < 1:
                raise DiffusionDecoderConfigError(f"{where}: {name} must be >= 1, got {getattr(self, name)}")
        default_rope_split(self.head_dim)
        if self.model_output_type not in OUTPUT_TYPES:
            raise DiffusionDecoderConfigError(
                f"vae.model_output_type must be one of {OUTPUT_TYPES}, got {self.model_output_type!r}")
        lengths = (len(self.stage_channels), len(self.stage_depths), len(self.stage_kernels), len(self.upsamples) + 1)
        if set(lengths) != {STAGES}:
            raise DiffusionDecoderConfigError(
                f"{where}: expected {STAGES} stage_channels / stage_depths / stage_kernels and {STAGES - 1} upsamples, "
                f"got {lengths[0]} / {lengths[1]} / {lengths[2]} and {lengths[3] - 1}")
        if any(d < 0 for d in self.stage_depths):
            raise DiffusionDecoderConfigError(f"{where}: stage_depths must be >= 0, got {self.stage_depths}")
        for kernel in (*self.stage_kernels, self.stage5_kernel):
            if len(kernel) != 3 or min(kernel) < 1:
                raise DiffusionDecoderConfigError(f"{where}: kernels must be 3 positive sizes, got {kernel}")
        for c in (*self.stage_channels, self.diffusion_channels):
            if c < 1 or c % self.head_dim:
                raise DiffusionDecoderConfigError(
                    f"{where}: stage widths must be positive multiples of head_dim={self.head_dim}, got "
                    f"stage_channels {self.stage_channels}, stage5_channels {self.diffusion_channels}")
        for i, up in enumerate(self.upsamples):
            if len(up.stride) != 3 or min(up.stride) < 1 or up.stride[0] > 2 or up.reduction < 1:
                raise DiffusionDecoderConfigError(
                    f"{where}: upsamples[{i}] needs strides >= 1 (time 1 or 2) and a reduction >= 1, got {up}")
            width, next_width = self.stage_channels[i], self.stage_channels[i + 1]
            if width % up.reduction or width // up.reduction != next_width:
                raise DiffusionDecoderConfigError(
                    f"{where}: upsamples[{i}] turns {width} channels into {width / up.reduction:g}, but stage {i + 2} "
                    f"has {next_width}")

    @classmethod
    def from_vae_config(cls, config: dict) -> DiffusionDecoderConfig:
        """From a decoded checkpoint ``config`` (with a ``vae`` entry) or from the ``vae`` dict itself."""
        vae = config.get("vae", config) if isinstance(config, dict) else None
        if not isinstance(vae, dict):
            raise DiffusionDecoderConfigError("checkpoint config has no 'vae' entry")
        if not is_diffusion_vae(vae):
            raise NotDiffusionVAEError(
                f"vae._class_name is {vae.get('_class_name', CONV_VAE_CLASS)!r}: this file holds the convolutional "
                "video decoder (load it with models.video_vae.load_video_vae)")
        decoder = vae.get("decoder", vae)
        if not isinstance(decoder, dict):
            raise DiffusionDecoderConfigError(f"vae.decoder must be a dict, got {type(decoder).__name__}")
        fields: dict = {}
        try:
            fields["latent_channels"] = int(decoder.get("in_channels", vae.get("latent_channels", 128)))
            for key, name in (("out_channels", "out_channels"), ("patch_size", "patch_size"),
                              ("t_emb_dim", "t_emb_dim"), ("default_num_inference_steps", "default_num_steps")):
                if key in decoder:
                    fields[name] = int(decoder[key])
            head_dim = decoder.get("head_dim", decoder.get("na_head_dim"))
            if head_dim is not None:
                fields["head_dim"] = int(head_dim)
            if "timestep_scale_multiplier" in decoder:
                fields["timestep_scale_multiplier"] = float(decoder["timestep_scale_multiplier"])
            if "stage_channels" in decoder:
                fields["stage_channels"] = tuple(int(c) for c in decoder["stage_channels"])
            if "stage_depths" in decoder:
                fields["stage_depths"] = tuple(int(d) for d in decoder["stage_depths"])
            if "stage_kernels" in decoder:
                fields["stage_kernels"] = tuple(tuple(int(k) for k in kernel) for kernel in decoder["stage_kernels"])
            if "upsamples" in decoder:
                fields["upsamples"] = tuple(UpsampleSpec(tuple(int(s) for s in stride), int(reduction))
                                            for stride, reduction in decoder["upsamples"])
            if "stage5_kernel" in decoder:
                fields["stage5_kernel"] = tuple(int(k) for k in decoder["stage5_kernel"])
            if decoder.get("stage5_channels") is not None:
                fields["stage5_channels"] = int(decoder["stage5_channels"])
        except (TypeError, ValueError) as exc:
            raise DiffusionDecoderConfigError(f"vae.decoder has a malformed field: {exc}") from exc
        fields["model_output_type"] = vae.get("model_output_type", "v")
        return cls(**fields)

    # ---- widths ---------------------------------------------------------------------------------------------
    @property
    def context_channels(self) -> int:
        """Width of the stage-4 output that guides stage 5 (the last ``stage_channels`` entry)."""
        return self.stage_channels[-1]

    @property
    def diffusion_channels(self) -> int:
        """Width of the stage-5 blocks (``stage5_channels``, else the context width)."""
        return self.stage5_channels if self.stage5_channels is not None else self.context_channels

    @property
    def patch_channels(self) -> int:
        """Channels of one patchified pixel token: out_channels · patch²."""
        return self.out_channels * self.patch_size ** 2

    @property
    def rope_split(self) -> Kernel:
        return default_rope_split(self.head_dim)

    # ---- geometry -------------------------------------------------------------------------------------------
    @property
    def scale_factors(self) -> Kernel:
        """(time, height, width) expansion latent -> pixels; F latent frames give (F − 1)·time + 1 frames."""
        return (math.prod(u.stride[0] for u in self.upsamples),
                math.prod(u.stride[1] for u in self.upsamples) * self.patch_size,
                math.prod(u.stride[2] for u in self.upsamples) * self.patch_size)

    @property
    def ghost_latent_frames(self) -> int:
        """Copies of the last latent frame appended through stages 1-4 (the NATTEN last-frame border fix)."""
        return (self.stage_kernels[0][0] // 2) * 2

    @property
    def min_latent_size(self) -> Kernel:
        """Smallest latent (T, H, W) for which every stage's axes reach its kernel; smaller latents are padded."""
        mins = [1, 1, 1]
        cumulative = (1, 1, 1)
        for kernel, up in zip(self.stage_kernels[:-1], self.upsamples):
            mins = [max(m, _ceil_div(k, c)) for m, k, c in zip(mins, kernel, cumulative)]
            cumulative = tuple(c * s for c, s in zip(cumulative, up.stride))
        return tuple(max(m, _ceil_div(k, c)) for m, k, c in zip(mins, self.stage5_kernel, cumulative))

    @property
    def stage4_stride(self) -> Kernel:
        return self.upsamples[-1].stride

    @property
    def stage4_pixel_scale(self) -> Kernel:
        """Pixels (frames, rows, columns) per stage-4-input cell: the last upsample times the patch."""
        st, sh, sw = self.stage4_stride
        return st, sh * self.patch_size, sw * self.patch_size

    @property
    def min_tile_size(self) -> Kernel:
        """Smallest stage-4-input tile (T, H, W) for which stages 4 and 5 both reach their kernels."""
        return tuple(max(k4, _ceil_div(k5, s)) for k4, k5, s in
                     zip(self.stage_kernels[3], self.stage5_kernel, self.stage4_stride))

    @property
    def tile_halos(self) -> tuple[Kernel, Kernel]:
        """One-sided receptive-field halos (T, H, W) of stage 4 and of stage 5, in stage-4-input cells."""
        halo4 = tuple(self.stage_depths[3] * (k // 2) for k in self.stage_kernels[3])
        halo5 = tuple(_ceil_div(self.stage_depths[4] * (k // 2), s)
                      for k, s in zip(self.stage5_kernel, self.stage4_stride))
        return halo4, halo5

    @property
    def min_tile_overlap(self) -> tuple[int, int]:
        """Smallest (frames, pixels) overlap a decode tiling may use: the larger halo, rounded up to 8 frames and
        32 pixels."""
        halo4, halo5 = self.tile_halos
        st, sh, _ = self.stage4_pixel_scale
        frames = _ceil_div(max(halo4[0], halo5[0]) * st, 8) * 8
        pixels = _ceil_div(max(halo4[1], halo5[1], halo4[2], halo5[2]) * sh, 32) * 32
        return frames, pixels

    def pixel_size(self, latent_thw: Kernel) -> Kernel:
        """Pixel (frames, height, width) decoded from a latent of (T, H, W) cells."""
        st, sh, sw = self.scale_factors
        t, h, w = latent_thw
        return (t - 1) * st + 1, h * sh, w * sw

    def stage4_size(self, latent_thw: Kernel) -> Kernel:
        """Stage-4-input (T, H, W) of a latent: three upsamples, each temporal doubling dropping its first frame."""
        t, h, w = latent_thw
        for up in self.upsamples[:3]:
            st, sh, sw = up.stride
            t, h, w = t * st - (1 if st == 2 else 0), h * sh, w * sw
        return t, h, w
