"""Socket types of the pack and the Python objects that travel through them.

ComfyUI connects sockets whose type strings match; these names are part of saved workflows and never change.
Standard ComfyUI types are used where they fit (IMAGE [B,H,W,C] float in 0..1, MASK [B,H,W],
AUDIO {"waveform": [B,C,T], "sample_rate": int}).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from ..models.lora import combined_reference_factors
from ..models.positions import VIDEO_SCALE_FACTORS
from . import model_cache

MODEL = "AVGEN_MODEL"
TEXT_ENCODER = "AVGEN_TEXT_ENCODER"
CONDITIONING = "AVGEN_CONDITIONING"
AV_LATENT = "AVGEN_AV_LATENT"
VIDEO_LATENT = "AVGEN_VIDEO_LATENT"
VIDEO_VAE = "AVGEN_VIDEO_VAE"
AUDIO_VAE = "AVGEN_AUDIO_VAE"
IMAGE = "IMAGE"
MASK = "MASK"
AUDIO = "AUDIO"
CAMERA_PATH = "AVGEN_CAMERA_PATH"  # models.camera_path.CameraPath: per-frame pinhole cameras
LATENT_UPSAMPLER = "AVGEN_LATENT_UPSAMPLER"
DURATION_HEAD = "AVGEN_DURATION_HEAD"  # models.duration_head.DurationHead (LTX-2.5)


@dataclass(frozen=True)
class ModelHandle:
    """AVGEN_MODEL: a loaded DiT with what other nodes need to know about its checkpoint.

    `checkpoint` is a models.ltx.LTXCheckpoint; `transformer` the shared, cached AVTransformer (never mutated by
    nodes); `key` identifies file + options for caches; `loras` is the LoRA stack applied at sampling time
    (a tuple of models.lora.LoraSpec, bottom first).
    """

    checkpoint: Any
    transformer: Any
    key: str
    dtype: torch.dtype
    device: torch.device
    loras: tuple = ()

    @property
    def family(self) -> str | None:
        return self.checkpoint.family

    @property
    def config(self):
        return self.transformer.config

    def with_loras(self, loras: tuple) -> "ModelHandle":
        return replace(self, loras=loras)

    def ic_lora_factors(self) -> dict:
        """IC-LoRA reference factors of the LoRA stack (`reference_downscale_factor`,
        `reference_temporal_scale_factor`, `reference_spatial_scale_factor`): 1 unless a LoRA's metadata sets
        one; models.lora.LoraError when two LoRAs set different values."""
        return combined_reference_factors(self.loras)


@dataclass(frozen=True)
class VideoVAEHandle:
    """AVGEN_VIDEO_VAE: a video VAE (models.video_vae.VideoVAE), loaded through the model cache on first use so
    a checkpoint loader whose VAE output is not used costs no memory."""

    key: str
    load: Callable[[], Any]
    label: str = ""
    family: str | None = None  # "ltx2" / "ltx23" where the file tells it

    @property
    def vae(self):
        return model_cache.get_or_load(self.key, self.load)


@dataclass(frozen=True)
class AudioVAEHandle:
    """AVGEN_AUDIO_VAE: an audio VAE (models.audio.AudioVAE) and its vocoder, loaded on first use through the
    model cache (`load` returns the pair)."""

    key: str
    load: Callable[[], tuple[Any, Any]]
    label: str = ""

    @property
    def vae(self):
        return model_cache.get_or_load(self.key, self.load)[0]

    @property
    def vocoder(self):
        return model_cache.get_or_load(self.key, self.load)[1]


@dataclass(frozen=True)
class TextEncoderHandle:
    """AVGEN_TEXT_ENCODER: where the Gemma 3 weights and tokenizer are, and how to run them.

    Gemma is loaded only when a prompt is not in the on-disk prompt cache, and released after encoding unless
    `keep_loaded`. `identity` (paths + sizes + mtimes) keys the prompt cache.
    """

    path: str
    tokenizer_path: str | None
    dtype: torch.dtype
    device: torch.device
    keep_loaded: bool
    identity: str
    vram_budget_gb: float = 0.0  # GPU memory Gemma's weights may take (0: automatic), see models.streaming


@dataclass(frozen=True)
class Conditioning:
    """AVGEN_CONDITIONING: text contexts (B, L, D) for the video and audio streams, positive and negative.

    The negative contexts are None when no negative prompt was given (guidance then uses the positive one for
    a stream without its own negative, as the official guider does).
    """

    video: torch.Tensor
    audio: torch.Tensor
    negative_video: torch.Tensor | None = None
    negative_audio: torch.Tensor | None = None
    prompt: str = ""  # the prompt that was encoded (the enhanced one when AVGen Text Encode enhanced it)
    negative_prompt: str = ""
    user_prompt: str = ""  # the prompt as the user wrote it


@dataclass(frozen=True)
class PixelSource:
    """The frames a conditioning latent was encoded from, to encode it again at another clip size (the latent
    upsample node): (N, H, W, 3) in 0..1 at their own size (after any H.264 round trip) and how they are fitted to
    the clip (a frame_prep resize mode)."""

    frames: torch.Tensor
    resize_mode: str


@dataclass(frozen=True)
class VideoLatent:
    """AVGEN_VIDEO_LATENT: an encoded image or video, normalized latent (B, C, F, H, W) with its pixel size and,
    when known, the frames it was encoded from."""

    latent: torch.Tensor
    pixel_frames: int
    height: int
    width: int
    source: PixelSource | None = None


@dataclass(frozen=True)
class UpsamplerHandle:
    """AVGEN_LATENT_UPSAMPLER: a loaded models.upsampler.LatentUpsampler, its file name and release family
    ("ltx2" / "ltx23", None when neither its metadata nor its name tells)."""

    upsampler: Any
    name: str
    family: str | None


@dataclass(frozen=True)
class AVLatent:
    """AVGEN_AV_LATENT: the audio-video latent a sampler starts from and returns.

    video (B, C, F, H, W) and audio (B, z, T, mel_bins) are normalized latents (zeros for an empty start);
    the pixel size / frame count / fps say what they decode to. `keep_video` / `keep_audio` freeze a stream
    (video-to-audio / audio-to-video): its latent is kept exactly. `has_video` / `has_audio` say the latent holds
    real content (an encoded input) rather than an empty start, which `denoise` < 1 needs. `conditionings` are
    models.sampling conditioning items (first-frame latents, keyframe guides, retake spans) applied by the sampler to
    the video stream, `audio_conditionings` those applied to the audio stream (retake spans).
    `scale_factors` are the video VAE's (frames, pixels high, pixels wide) per latent cell.
    """

    video: torch.Tensor
    audio: torch.Tensor
    fps: float
    pixel_frames: int
    height: int
    width: int
    keep_video: bool = False
    keep_audio: bool = False
    has_video: bool = False
    has_audio: bool = False
    conditionings: tuple = field(default=())
    scale_factors: tuple[int, int, int] = VIDEO_SCALE_FACTORS
    audio_conditionings: tuple = field(default=())

    @property
    def seconds(self) -> float:
        return self.pixel_frames / self.fps

    def replace(self, **changes) -> "AVLatent":
        return replace(self, **changes)
