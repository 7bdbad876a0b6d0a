"""Extend and join: continue a sampled clip by N seconds from an overlap of its own video and sound, and join the
decoded clips into one.

AVGen Extend makes the next clip's AV latent: its first `overlap_frames` pixel frames are the end of the previous
clip (decoded, then encoded again as the start of a clip: the VAE encodes a clip's first frame alone, so a slice
of latent frames from the middle could not be reused), pinned like a first frame; its first audio latent frames
are the previous clip's last ones over the same time, kept exactly by a temporal region mask. AVGen Join overlays
the two clips over the overlap, crossfading picture and sound from the first to the second (both show the same
moment there: the decodes differ a little), then continues with the second.
"""
from __future__ import annotations

import logging

import torch

from ..models.positions import AUDIO_LATENTS_PER_SECOND, VIDEO_SCALE_FACTORS, audio_positions, latent_shape_for
from ..models.sampling import LatentIndexConditioning, TemporalRegionMask
from .encode import _check_image, _check_latent, encode_source
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .latent import check_frames
from .types import AUDIO, AV_LATENT, IMAGE, VIDEO_VAE, AVLatent, PixelSource

log = logging.getLogger(__name__)

EXTEND, JOIN = "AVGenExtend", "AVGenJoin"


def check_extend_values(seconds=None, overlap_frames=None) -> None:
    within_widgets(EXTEND, AVGenExtend, seconds=seconds, overlap_frames=overlap_frames)
    check_frames(EXTEND, "overlap_frames", overlap_frames)


def _decoded_tail(video_vae, latent: AVLatent, frames: int) -> torch.Tensor:
    """The clip's last `frames` pixel frames of its first batch item, (frames, H, W, 3) in 0..1 (no decode noise)."""
    vae = video_vae.vae
    video = latent.video[:1].to(next(vae.parameters()).device)
    with torch.no_grad():
        pixels = vae.decode(video, noise=torch.zeros_like(video))
    return ((pixels[0, :, -frames:].float().clamp(-1, 1) + 1) / 2).permute(1, 2, 3, 0).cpu()


def _given_tail(frames, latent: AVLatent, count: int) -> torch.Tensor:
    """The last `count` of the first clip's decoded frames (IMAGE of batch x pixel_frames frames)."""
    frames = _check_image(EXTEND, "frames", frames)
    if frames.shape[0] % latent.pixel_frames or tuple(frames.shape[1:3]) != (latent.height, latent.width):
        raise NodeInputError(EXTEND, f"frames are {frames.shape[0]} of {frames.shape[2]}x{frames.shape[1]}, the "
                                     f"clip has {latent.pixel_frames} of {latent.width}x{latent.height}: connect the "
                                     "video decode of this latent")
    return frames[latent.pixel_frames - count:latent.pixel_frames].float().cpu()


class AVGenExtend:
    DESCRIPTION = (
        "Continues a sampled clip: makes the AV latent of the next clip, which starts with the last overlap_frames of "
        "this one (picture pinned like a first frame, sound kept exactly) and runs `seconds` further. Sample it with "
        "the next prompt, decode it, and join it to the first clip with AVGen Join; chain for any length."
    )
    CATEGORY = "AVGen/latent"
    FUNCTION = "extend"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The next clip's AV latent (overlap + new seconds), ready for the sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": (AV_LATENT, {"tooltip": "The clip to continue (a sampler's output)."}),
                "video_vae": (VIDEO_VAE, {"tooltip": "The model's video VAE (decodes the overlap and encodes it as "
                                                     "the new clip's start)."}),
                "seconds": ("FLOAT", {"default": 4.0, "min": 0.1, "max": 600.0, "step": 0.1,
                                      "tooltip": "New seconds after the overlap (rounded so the clip has 8k+1 "
                                                 "frames)."}),
                "overlap_frames": ("INT", {"default": 9, "min": 1, "max": 1025, "step": 8, "tooltip": (
                    "Frames at the end of the clip the next one starts from (8k+1: 9, 17, 25 ...). More overlap "
                    "carries more motion across the seam.")}),
            },
            "optional": {
                "frames": (IMAGE, {"tooltip": "The clip's decoded frames (AVGen Video Decode): the overlap is taken "
                                              "from them instead of decoding the clip again."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, seconds=None, overlap_frames=None):
        return validation_result(check_extend_values, seconds=seconds, overlap_frames=overlap_frames)

    def extend(self, latent: AVLatent, video_vae, seconds: float, overlap_frames: int, frames=None):
        check_extend_values(seconds, overlap_frames)
        latent = _check_latent(EXTEND, latent)
        if not (latent.has_video and latent.has_audio):
            raise NodeInputError(EXTEND, "latent must be a sampled clip (video and audio); connect a sampler's output")
        if overlap_frames > latent.pixel_frames:
            raise NodeInputError(EXTEND, f"overlap_frames {overlap_frames} is longer than the clip's "
                                         f"{latent.pixel_frames} frames")
        tail = _decoded_tail(video_vae, latent, overlap_frames) if frames is None else \
            _given_tail(frames, latent, overlap_frames)
        step = VIDEO_SCALE_FACTORS[0]
        total = overlap_frames + max(step, step * round(seconds * latent.fps / step))
        source = PixelSource(tail, "stretch")
        encoded = encode_source(video_vae, source, latent.height, latent.width)
        if encoded.shape[1:2] + encoded.shape[3:] != latent.video.shape[1:2] + latent.video.shape[3:]:
            raise NodeInputError(EXTEND, f"the video VAE encodes {tuple(encoded.shape[1:])}, the clip's latent is "
                                         f"{tuple(latent.video.shape[1:])}: connect the model's own video VAE")
        batch = latent.video.shape[0]
        (lat_f, lat_h, lat_w), audio_frames = latent_shape_for(total, latent.height, latent.width, latent.fps,
                                                               latent.scale_factors)
        video = torch.zeros(batch, latent.video.shape[1], lat_f, lat_h, lat_w)
        key = LatentIndexConditioning(latent=encoded.expand(batch, -1, -1, -1, -1).contiguous(), latent_idx=0,
                                      source=source)
        overlap_audio = round(overlap_frames / latent.fps * AUDIO_LATENTS_PER_SECOND)
        kept = min(latent.audio.shape[2], audio_frames - 1, overlap_audio)
        audio = torch.zeros(batch, *latent.audio.shape[1:2], audio_frames, latent.audio.shape[3])
        audio_conditionings = ()
        if kept > 0:
            audio[:, :, :kept] = latent.audio[:, :, -kept:]
            start = float(audio_positions(1, kept)[0, 0, -1, 1])  # where the kept audio frames end
            audio_conditionings = (TemporalRegionMask(start, total / latent.fps + 1.0),)
        result = AVLatent(video=video, audio=audio, fps=latent.fps, pixel_frames=total, height=latent.height,
                          width=latent.width, conditionings=(key,), scale_factors=latent.scale_factors,
                          audio_conditionings=audio_conditionings)
        note = (f"next clip: {total} frames ({total / latent.fps:.3f} s), starting with the last {overlap_frames} "
                f"frames and {kept} audio latent frames ({kept / AUDIO_LATENTS_PER_SECOND:.2f} s) of this one")
        log.info("%s: %s", EXTEND, note)
        return {"ui": {"text": [note]}, "result": (result,)}


def _check_audio(name: str, audio) -> tuple[torch.Tensor, int]:
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise NodeInputError(JOIN, f"{name} must be an AUDIO (waveform + sample_rate), got {type(audio).__name__}")
    return audio["waveform"].float(), int(audio["sample_rate"])


class AVGenJoin:
    DESCRIPTION = (
        "Joins two decoded clips where the second continues the first (AVGen Extend): over the overlap the picture "
        "and the sound cross-fade from the first clip to the second, then the second continues, so there is no jump "
        "or click at the seam."
    )
    CATEGORY = "AVGen/latent"
    FUNCTION = "join"
    RETURN_TYPES = (IMAGE, AUDIO)
    RETURN_NAMES = ("frames", "audio")
    OUTPUT_TOOLTIPS = ("The first clip, the overlap cross-faded, then the rest of the second clip.",
                       "The first clip's sound continued by the second's.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": (IMAGE, {"tooltip": "The first clip's frames."}),
                "audio": (AUDIO, {"tooltip": "The first clip's sound (exactly frames / fps long)."}),
                "next_frames": (IMAGE, {"tooltip": "The continuing clip's frames (from AVGen Extend's latent)."}),
                "next_audio": (AUDIO, {"tooltip": "The continuing clip's sound."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 240.0, "tooltip": "Frame rate of both clips."}),
                "overlap_frames": ("INT", {"default": 9, "min": 1, "max": 1025, "step": 8,
                                           "tooltip": "The overlap AVGen Extend was given."}),
            }
        }

    def join(self, frames, audio, next_frames, next_audio, fps: float, overlap_frames: int):
        first, second = _check_image(JOIN, "frames", frames), _check_image(JOIN, "next_frames", next_frames)
        if first.shape[1:] != second.shape[1:]:
            raise NodeInputError(JOIN, f"the clips differ in size: {tuple(first.shape[1:3])} and "
                                       f"{tuple(second.shape[1:3])}")
        if overlap_frames >= second.shape[0] or overlap_frames > first.shape[0]:
            raise NodeInputError(JOIN, f"overlap_frames {overlap_frames} must be shorter than the continuing clip "
                                       f"({second.shape[0]} frames) and at most the first ({first.shape[0]})")
        wave, rate = _check_audio("audio", audio)
        next_wave, next_rate = _check_audio("next_audio", next_audio)
        if rate != next_rate or wave.shape[:2] != next_wave.shape[:2]:
            raise NodeInputError(JOIN, f"the sounds differ: {rate} Hz / {tuple(wave.shape[:2])} and {next_rate} Hz / "
                                       f"{tuple(next_wave.shape[:2])}")
        seam = round(overlap_frames / fps * rate)  # where the second clip's new sound starts
        fade = min(seam, wave.shape[-1])
        ramp = torch.linspace(0.0, 1.0, fade + 2)[1:-1]
        blended = wave[..., wave.shape[-1] - fade:] * (1 - ramp) + next_wave[..., seam - fade:seam] * ramp
        joined = torch.cat([wave[..., :wave.shape[-1] - fade], blended, next_wave[..., seam:]], dim=-1)
        weight = torch.linspace(0.0, 1.0, overlap_frames + 2)[1:-1].view(-1, 1, 1, 1)
        crossed = first[-overlap_frames:] * (1 - weight) + second[:overlap_frames] * weight
        video = torch.cat([first[:-overlap_frames], crossed, second[overlap_frames:]])
        return video, {"waveform": joined.contiguous(), "sample_rate": rate}


NODE_CLASS_MAPPINGS = {EXTEND: AVGenExtend, JOIN: AVGenJoin}
NODE_DISPLAY_NAME_MAPPINGS = {EXTEND: "AVGen Extend", JOIN: "AVGen Join"}
