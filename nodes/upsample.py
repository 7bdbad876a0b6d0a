"""Two-stage generation: load a latent upsampler and upsample a sampled AV latent for a refinement pass.

The official two-stage pipelines sample at half size, upsample the video latent (un-normalised with the video VAE's
statistics, see models.upsampler) and refine it with the distilled schedule's last steps. The latent upsample node
keeps the audio latent (frozen in stage 2, or refined with the video) and carries the conditionings to the new
size so stage 2 honours them: images encoded again at the new size from the frames they came from (as the
official pipelines do), other guide latents through the same upsampler, IC-LoRA references kept at their size with
a scaled downscale factor (or dropped, as the official IC-LoRA pipeline's stage 2 does).
"""
from __future__ import annotations

import logging
import re
from dataclasses import replace

import torch
import torch.nn.functional as F

from ..models.camera_guide import ValidGuideTokens
from ..models.checkpoint import CheckpointError, CheckpointFile
from ..models.family import FAMILY_TITLES, family_for_version, inspect_checkpoint
from ..models.sampling import (
    GeneratedKeyframeSlots, KeyframeConditioning, LatentIndexConditioning, ReferenceConditioning, TemporalRegionMask,
)
from ..models.upsampler import DEFAULT_FRAMES_PER_CHUNK, check_is_upsampler, load_latent_upsampler, upsample_video
from ..tiny import builtin
from . import comfy_adapter, model_cache
from .encode import _check_latent, _to_batch, encode_source
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .loaders import DEVICES, resolve_device
from .model_files import missing_file_advice
from .types import AV_LATENT, LATENT_UPSAMPLER, VIDEO_VAE, AVLatent, UpsamplerHandle

log = logging.getLogger(__name__)

LOADER = "AVGenLatentUpsamplerLoader"
NODE = "AVGenLatentUpsample"
FOLDER = "latent_upscale_models"
NO_UPSAMPLERS = f"(no files in {FOLDER}/)"
AUDIO_CHOICES = ("keep", "refine")
REFERENCE_CHOICES = ("keep", "drop")
LOADER_DTYPES = {"auto": None, "bf16": torch.bfloat16, "fp32": torch.float32}


def _upsampler_names() -> list[str]:
    names = comfy_adapter.list_models(FOLDER)
    return ([builtin.BUILTIN_UPSCALER_NAME] if builtin.upscaler_available() else []) + names or [NO_UPSAMPLERS]


def upsampler_path(name: str):
    """The file behind the loader's choice (the built-in entry, or a file in latent_upscale_models/)."""
    if name == builtin.BUILTIN_UPSCALER_NAME and builtin.upscaler_available():
        return builtin.upscaler_path()
    if name == NO_UPSAMPLERS:
        raise NodeInputError(LOADER, f"upscale_model: no files in {FOLDER}/; put a latent upscaler there (e.g. "
                                     "ltx-2.3-spatial-upscaler-x2-1.1.safetensors)")
    try:
        return comfy_adapter.model_path(FOLDER, name)
    except comfy_adapter.ModelNotFoundError as exc:
        advice = missing_file_advice(name, FOLDER)
        raise NodeInputError(LOADER, f"upscale_model: {exc}" + (f"; {advice}" if advice else "")) from exc


def file_family(ckpt: CheckpointFile, name: str) -> str | None:
    """The release an upsampler belongs to: its `model_version` metadata, else its released file name."""
    try:
        family = family_for_version(ckpt)
    except CheckpointError as exc:
        raise NodeInputError(LOADER, f"upscale_model {name!r} is for model version "
                                     f"{ckpt.metadata['model_version']}: only LTX-2, LTX-2.3 and LTX-2.5 upsamplers "
                                     "are supported") from exc
    if family is not None:
        return family
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if re.match(r"ltx-?2\.5", base):
        return "ltx25"
    if re.match(r"ltx-?2\.3", base):
        return "ltx23"
    if re.match(r"ltx-?2-", base):
        return "ltx2"
    return None


def _what_else(ckpt: CheckpointFile) -> str:
    try:
        info = inspect_checkpoint(ckpt)
    except CheckpointError as exc:
        return str(exc)
    return (f"it is an {FAMILY_TITLES.get(info.family, 'LTX')} model file holding "
            f"{', '.join(sorted(info.components)).replace('_', ' ')}: choose it in AVGen Checkpoint Loader")


def _open_upsampler(name: str, dtype, device) -> UpsamplerHandle:
    try:
        ckpt = CheckpointFile(upsampler_path(name))
    except CheckpointError as exc:
        raise NodeInputError(LOADER, f"upscale_model {name!r}: {exc}") from exc
    try:
        check_is_upsampler(ckpt)
    except CheckpointError as exc:
        raise NodeInputError(LOADER, f"upscale_model {name!r} is not a latent upsampler; {_what_else(ckpt)}") from exc
    family = file_family(ckpt, name)
    key = model_cache.file_key(ckpt.path, part="latent_upsampler", dtype=dtype, device=device)
    try:
        upsampler = model_cache.get_or_load(key, lambda: load_latent_upsampler(ckpt, dtype, device))
    except CheckpointError as exc:
        raise NodeInputError(LOADER, f"upscale_model {name!r}: {exc}") from exc
    return UpsamplerHandle(upsampler, name, family)


def check_loader_values(upscale_model=None, dtype=None, device=None) -> None:
    """The file exists where it belongs (else where to get it), the choices exist."""
    within_widgets(LOADER, AVGenLatentUpsamplerLoader, dtype=dtype)
    if device is not None:
        resolve_device(LOADER, device)
    if upscale_model is not None:
        upsampler_path(upscale_model)


class AVGenLatentUpsamplerLoader:
    DESCRIPTION = ("Loads an LTX latent upsampler (latent_upscale_models/): spatial x2, spatial x1.5 or temporal "
                   "x2, for two-stage generation with AVGen Latent Upsample. Use the file of the same release as "
                   "the checkpoint (ltx-2-... for LTX-2, ltx-2.3-... for LTX-2.3).")
    CATEGORY = "AVGen/loaders"
    FUNCTION = "load"
    RETURN_TYPES = (LATENT_UPSAMPLER,)
    RETURN_NAMES = ("upscale_model",)
    OUTPUT_TOOLTIPS = ("The latent upsampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "upscale_model": (_upsampler_names(), {"tooltip": (
                    f"Latent upscaler file in {FOLDER}/ (LTX-2: ltx-2-spatial-upscaler-x2-1.0; LTX-2.3: "
                    f"ltx-2.3-spatial-upscaler-x2-1.1 or -x1.5-1.0, temporal-upscaler-x2-1.0); "
                    f"{builtin.BUILTIN_UPSCALER_NAME}: AVGen-Tiny's own.")}),
                "dtype": (list(LOADER_DTYPES), {"default": "auto", "tooltip": (
                    "Weight type. auto: bf16 on CUDA, fp32 on the CPU.")}),
                "device": (DEVICES, {"tooltip": "Where it runs. auto: the GPU when there is one."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, upscale_model=None, dtype=None, device=None):
        return validation_result(check_loader_values, upscale_model=upscale_model, dtype=dtype, device=device)

    def load(self, upscale_model: str, dtype: str, device: str):
        check_loader_values(upscale_model, dtype, device)
        target = resolve_device(LOADER, device)
        weights = LOADER_DTYPES[dtype] or (torch.bfloat16 if target.type == "cuda" else torch.float32)
        handle = _open_upsampler(upscale_model, weights, target)
        config = handle.upsampler.config
        note = (f"{upscale_model}: {config.describe()}, {config.in_channels} latent channels, "
                f"{FAMILY_TITLES.get(handle.family, 'release unknown')}")
        log.info("%s: %s", LOADER, note)
        return {"ui": {"text": [note]}, "result": (handle,)}


# --- latent upsample -----------------------------------------------------------------------------------------


def upsampled_video(video_vae, upsampler, latent: torch.Tensor, chunk: int) -> torch.Tensor:
    """A normalized (B, C, F, H, W) latent through the upsampler (framed by the VAE's statistics), on the CPU."""
    with torch.no_grad():
        return upsample_video(latent, video_vae.vae.per_channel_statistics, upsampler, chunk).to("cpu")


class _Resizer:
    """Carries conditionings from a latent (`latent`) to its upsampled version (`out`)."""

    def __init__(self, video_vae, upsampler, latent: AVLatent, out: AVLatent, chunk: int, references: str):
        self.video_vae, self.upsampler, self.chunk = video_vae, upsampler, chunk
        self.config = upsampler.config
        self.latent, self.out, self.references = latent, out, references

    def upsampled(self, latent: torch.Tensor) -> torch.Tensor:
        return upsampled_video(self.video_vae, self.upsampler, latent, self.chunk)

    def image_latent(self, item) -> torch.Tensor:
        """An image key's latent at the new size: encoded again from its frames (spatial upsamplers, when the VAE
        has an encoder), else through the upsampler."""
        source = getattr(item, "source", None)
        if source is not None and not self.config.temporal and self.video_vae.vae.encoder is not None:
            encoded = encode_source(self.video_vae, source, self.out.height, self.out.width)
            return _to_batch(NODE, "a re-encoded key", encoded, self.out.video.shape[0])
        return self.upsampled(item.latent)

    def frame(self, frame: int) -> int:
        return 2 * frame if self.config.temporal else frame

    def carry(self, item):
        if isinstance(item, LatentIndexConditioning):
            return replace(item, latent=self.image_latent(item), latent_idx=self.frame(item.latent_idx))
        if isinstance(item, KeyframeConditioning):
            frames = item.num_pixel_frames
            return replace(item, latent=self.image_latent(item), frame_idx=self.frame(item.frame_idx),
                           num_pixel_frames=self.frame(frames - 1) + 1)
        if isinstance(item, ValidGuideTokens):
            guide = self.carry(item.guide)
            grid = tuple(self.latent.video.shape[2:])
            keep = item.keep.view(1, 1, *grid).float()
            keep = F.interpolate(keep, size=tuple(guide.latent.shape[2:]), mode="nearest") > 0.5
            return ValidGuideTokens(guide, keep.flatten())
        if isinstance(item, TemporalRegionMask):  # a span in seconds: the same at any size and frame rate
            return item
        if isinstance(item, GeneratedKeyframeSlots):  # stage 1 only: their effect is in the stage-1 latent
            return None
        if isinstance(item, ReferenceConditioning):
            if self.references == "drop":
                return None
            step = 2 if self.config.temporal else 1
            return replace(item, downscale_factor=item.downscale_factor * self.config.spatial_factor,
                           temporal_scale_factor=item.temporal_scale_factor * step)
        raise NodeInputError(NODE, f"the latent carries a {type(item).__name__} conditioning, which this node cannot "
                                   "move to the upsampled size: add it after upsampling instead")


def check_upsample_values(audio=None, ic_lora_guides=None, frames_per_chunk=None) -> None:
    within_widgets(NODE, AVGenLatentUpsample, audio=audio, ic_lora_guides=ic_lora_guides,
                   frames_per_chunk=frames_per_chunk)


def _check_pair(latent: AVLatent, handle, video_vae) -> None:
    if not isinstance(handle, UpsamplerHandle):
        raise NodeInputError(NODE, f"upscale_model must come from AVGen Latent Upsampler Loader, got "
                                   f"{type(handle).__name__}")
    config, channels = handle.upsampler.config, latent.video.shape[1]
    if not latent.has_video:
        raise NodeInputError(NODE, "the latent's video is still empty: upsample the sampler's output (stage 1), not "
                                   "the empty latent")
    vae_family = getattr(video_vae, "family", None)
    if handle.family and vae_family and handle.family != vae_family:
        raise NodeInputError(NODE, f"upscale_model {handle.name!r} is an {FAMILY_TITLES[handle.family]} upsampler "
                                   f"but the video VAE is {FAMILY_TITLES[vae_family]}'s: their latent spaces differ "
                                   "(the result would be noise); load the upsampler of the checkpoint's release")
    if config.in_channels != channels:
        raise NodeInputError(NODE, f"upscale_model {handle.name!r} takes {config.in_channels}-channel latents, the "
                                   f"latent has {channels}: it belongs to another model")


class AVGenLatentUpsample:
    DESCRIPTION = (
        "Stage 2 of two-stage generation: upsamples the video of a sampled AV latent with a latent upsampler "
        "(spatial x2 / x1.5: larger frames; temporal x2: twice the frame rate). The audio is kept; the first frame, "
        "keyframes and guides move to the new size (images encoded again at the new size). Then refine with AVGen "
        "DiT Sampler: schedule distilled_stage2 (distilled model, or the distilled LoRA), cfg 1, stg 0."
    )
    CATEGORY = "AVGen/latent"
    FUNCTION = "upsample"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The AV latent at the new size, ready for the refinement pass.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": (AV_LATENT, {"tooltip": "The stage-1 sampler's output."}),
                "upscale_model": (LATENT_UPSAMPLER, {"tooltip": "From AVGen Latent Upsampler Loader."}),
                "video_vae": (VIDEO_VAE, {"tooltip": "The model's video VAE: its latent statistics frame the "
                                                     "upsampler, its encoder re-encodes the keyframe images."}),
                "audio": (list(AUDIO_CHOICES), {"default": "keep", "tooltip": (
                    "keep: stage 1's audio is kept exactly and stage 2 refines the video against it (as the "
                    "official TI2Vid two-stage pipelines keep stage 1's audio); refine: stage 2 re-noises and "
                    "refines the audio with the video (the official distilled and keyframe pipelines).")}),
                "ic_lora_guides": (list(REFERENCE_CHOICES), {"default": "keep", "tooltip": (
                    "IC-LoRA control videos: keep them for stage 2 (placed over the larger frame; keep the IC-LoRA "
                    "on the stage-2 model) or drop them (the official IC-LoRA pipeline refines without them).")}),
                "frames_per_chunk": ("INT", {"default": DEFAULT_FRAMES_PER_CHUNK, "min": 1, "max": 1024, "tooltip": (
                    "Latent frames upsampled at a time: lower uses less memory on long clips; the result is the "
                    "same.")}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, audio=None, ic_lora_guides=None, frames_per_chunk=None):
        return validation_result(check_upsample_values, audio=audio, ic_lora_guides=ic_lora_guides,
                                 frames_per_chunk=frames_per_chunk)

    def upsample(self, latent: AVLatent, upscale_model: UpsamplerHandle, video_vae, audio: str,
                 ic_lora_guides: str, frames_per_chunk: int):
        check_upsample_values(audio, ic_lora_guides, frames_per_chunk)
        latent = _check_latent(NODE, latent)
        _check_pair(latent, upscale_model, video_vae)
        config = upscale_model.upsampler.config
        video = upsampled_video(video_vae, upscale_model.upsampler, latent.video, frames_per_chunk)
        frames, height, width = video.shape[2:]
        steps = latent.scale_factors
        out = latent.replace(
            video=video, height=height * steps[1], width=width * steps[2],
            pixel_frames=(frames - 1) * steps[0] + 1, fps=latent.fps * (2 if config.temporal else 1),
            keep_audio=latent.keep_audio or audio == "keep")
        resizer = _Resizer(video_vae, upscale_model.upsampler, latent, out, frames_per_chunk, ic_lora_guides)
        with torch.no_grad():
            carried = [resizer.carry(item) for item in latent.conditionings]
        out = out.replace(conditionings=tuple(c for c in carried if c is not None))
        dropped = len(carried) - len(out.conditionings)
        note = (f"{config.describe()}: {latent.width}x{latent.height}, {latent.pixel_frames} frames at "
                f"{latent.fps:g} fps -> {out.width}x{out.height}, {out.pixel_frames} frames at {out.fps:g} fps; "
                f"{len(out.conditionings)} conditioning(s) carried" + (f", {dropped} dropped" if dropped else "")
                + f"; audio {'kept' if out.keep_audio else 'refined in stage 2'}")
        log.info("%s: %s", NODE, note)
        return {"ui": {"text": [note]}, "result": (out,)}


NODE_CLASS_MAPPINGS = {LOADER: AVGenLatentUpsamplerLoader, NODE: AVGenLatentUpsample}
NODE_DISPLAY_NAME_MAPPINGS = {LOADER: "AVGen Latent Upsampler Loader", NODE: "AVGen Latent Upsample"}
