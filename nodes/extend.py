"""Extend and join: continue a sampled clip by N seconds (forward, or backward before its start) from an overlap
of its own video and sound, and join the decoded clips into one.

AVGen Extend makes the AV latent of the neighbouring clip. Forward, its first `overlap_frames` pixel frames are the
end of the given clip (decoded, then encoded again as the start of a clip: the VAE encodes a clip's first frame
alone, so a slice of latent frames from the middle could not be reused), pinned like a first frame; backward, its
last `overlap_frames` are the given clip's first ones, encoded the same way and pinned as a multi-frame keyframe
(guide tokens) at the end. The audio latent frames over the overlap are the given clip's over the same time
(taken by time: the overlap starts round(frames before it / fps x 25) audio latent frames into the clip), kept
exactly by a temporal region mask. AVGen Join overlays the two clips over the overlap, crossfading picture and
sound from the earlier to the later one (both show the same moment there: the decodes differ a little).
"""
from __future__ import annotations

import logging

import torch

from ..models.positions import AUDIO_LATENTS_PER_SECOND, VIDEO_SCALE_FACTORS, audio_positions, latent_shape_for
from ..models.sampling import KeyframeConditioning, LatentIndexConditioning, TemporalRegionMask
from .encode import _check_image, _check_latent, encode_source
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .latent import check_frames
from .types import AUDIO, AV_LATENT, IMAGE, VIDEO_VAE, AVLatent, PixelSource

log = logging.getLogger(__name__)

EXTEND, JOIN = "AVGenExtend", "AVGenJoin"
DIRECTIONS = ("forward", "backward")


def check_extend_values(seconds=None, overlap_frames=None, direction=None) -> None:
    within_widgets(EXTEND, AVGenExtend, seconds=seconds, overlap_frames=overlap_frames, direction=direction)
    check_frames(EXTEND, "overlap_frames", overlap_frames)


def audio_offset(frames: int, fps: float) -> int:
    """Audio latent frames between the starts of two clips whose first pixel frames are `frames` apart."""
    return round(frames / fps * AUDIO_LATENTS_PER_SECOND)


def continued_audio(previous: torch.Tensor, offset: int, overlap_frames: int, fps: float, audio_frames: int,
                    seconds: float) -> tuple[torch.Tensor, tuple]:
    """Audio latent (B, z, audio_frames, bins) of a clip that starts `offset` audio latent frames into `previous`
    (B, z, T, bins): its first frames over the overlap are `previous`'s from there (at most all but one of the
    new clip's), kept by a region mask that regenerates the rest (`seconds`: the new clip's length); and that
    mask (none when nothing is kept)."""
    kept = max(0, min(round(overlap_frames / fps * AUDIO_LATENTS_PER_SECOND), previous.shape[2] - offset,
                      audio_frames - 1))
    audio = previous.new_zeros(*previous.shape[:2], audio_frames, previous.shape[3])
    if not kept:
        return audio, ()
    audio[:, :, :kept] = previous[:, :, offset:offset + kept]
    start = float(audio_positions(1, kept)[0, 0, -1, 1])  # where the kept audio frames end
    return audio, (TemporalRegionMask(start, seconds + 1.0),)


def preceding_audio(following: torch.Tensor, offset: int, audio_frames: int) -> tuple[torch.Tensor, tuple]:
    """Audio latent (B, z, audio_frames, bins) of a clip that `following` (B, z, T, bins) starts `offset` audio
    latent frames into: from there to its end the frames are `following`'s first ones (the kept part is moved
    later if `following` is too short to reach the end), kept by a region mask that regenerates what is before."""
    offset = max(1, offset, audio_frames - following.shape[2])
    audio = following.new_zeros(*following.shape[:2], audio_frames, following.shape[3])
    audio[:, :, offset:] = following[:, :, :audio_frames - offset]
    start = float(audio_positions(1, offset + 1)[0, 0, -1, 0])  # where the kept audio frames begin
    return audio, (TemporalRegionMask(0.0, start),)


def encode_overlap(node: str, video_vae, pixels: torch.Tensor, latent: AVLatent) -> tuple[torch.Tensor, PixelSource]:
    """Overlap frames (8k+1, H, W, 3) in 0..1 encoded as the start of a clip of `latent`'s size, batch-expanded:
    (B, C, k+1, h, w) and the source they were encoded from."""
    source = PixelSource(pixels, "stretch")
    encoded = encode_source(video_vae, source, latent.height, latent.width)
    if encoded.shape[1:2] + encoded.shape[3:] != latent.video.shape[1:2] + latent.video.shape[3:]:
        raise NodeInputError(node, f"the video VAE encodes {tuple(encoded.shape[1:])}, the clip's latent is "
                                   f"{tuple(latent.video.shape[1:])}: connect the model's own video VAE")
    return encoded.expand(latent.video.shape[0], -1, -1, -1, -1).contiguous(), source


def _decoded_frames(video_vae, latent: AVLatent, first: int, last: int) -> torch.Tensor:
    """Pixel frames [first, last) of the clip's first batch item, (frames, H, W, 3) in 0..1 (no decode noise)."""
    vae = video_vae.vae
    video = latent.video[:1].to(next(vae.parameters()).device)
    with torch.no_grad():
        pixels = vae.decode(video, noise=torch.zeros_like(video))
    return ((pixels[0, :, first:last].float().clamp(-1, 1) + 1) / 2).permute(1, 2, 3, 0).cpu()


def _given_frames(frames, latent: AVLatent, first: int, last: int) -> torch.Tensor:
    """Frames [first, last) of the clip's decoded frames (IMAGE of batch x pixel_frames frames)."""
    frames = _check_image(EXTEND, "frames", frames)
    if frames.shape[0] % latent.pixel_frames or tuple(frames.shape[1:3]) != (latent.height, latent.width):
        raise NodeInputError(EXTEND, f"frames are {frames.shape[0]} of {frames.shape[2]}x{frames.shape[1]}, the "
                                     f"clip has {latent.pixel_frames} of {latent.width}x{latent.height}: connect the "
                                     "video decode of this latent")
    return frames[first:last].float().cpu()


class AVGenExtend:
    DESCRIPTION = (
        "Continues a sampled clip: makes the AV latent of the next clip, which starts with the last overlap_frames of "
        "this one (picture pinned like a first frame, sound kept exactly) and runs `seconds` further; backward, the "
        "clip before it, which runs `seconds` and ends with this one's first overlap_frames. Sample it with the "
        "next prompt, decode it, and join the two with AVGen Join; chain for any length (or use AVGen Long Video)."
    )
    CATEGORY = "AVGen/latent"
    FUNCTION = "extend"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The new clip's AV latent (new seconds + overlap), ready for the sampler.",)

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
                "direction": (list(DIRECTIONS), {"default": "forward", "tooltip": (
                    "forward: the new clip continues after this one (starts with its last overlap_frames). "
                    "backward: the new clip leads into this one: it ends with this clip's first overlap_frames "
                    "(pinned as a keyframe at its end, their sound kept); join with AVGen Join, direction backward.")}),
            },
            "optional": {
                "frames": (IMAGE, {"tooltip": "The clip's decoded frames (AVGen Video Decode): the overlap is taken "
                                              "from them instead of decoding the clip again."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, seconds=None, overlap_frames=None, direction=None):
        return validation_result(check_extend_values, seconds=seconds, overlap_frames=overlap_frames,
                                 direction=direction)

    def extend(self, latent: AVLatent, video_vae, seconds: float, overlap_frames: int, direction: str = "forward",
               frames=None):
        check_extend_values(seconds, overlap_frames, direction)
        latent = _check_latent(EXTEND, latent)
        if not (latent.has_video and latent.has_audio):
            raise NodeInputError(EXTEND, "latent must be a sampled clip (video and audio); connect a sampler's output")
        if overlap_frames > latent.pixel_frames:
            raise NodeInputError(EXTEND, f"overlap_frames {overlap_frames} is longer than the clip's "
                                         f"{latent.pixel_frames} frames")
        forward = direction == "forward"
        first = latent.pixel_frames - overlap_frames if forward else 0
        shared = _decoded_frames(video_vae, latent, first, first + overlap_frames) if frames is None else \
            _given_frames(frames, latent, first, first + overlap_frames)
        step = VIDEO_SCALE_FACTORS[0]
        total = overlap_frames + max(step, step * round(seconds * latent.fps / step))
        encoded, source = encode_overlap(EXTEND, video_vae, shared, latent)
        batch = latent.video.shape[0]
        (lat_f, lat_h, lat_w), audio_frames = latent_shape_for(total, latent.height, latent.width, latent.fps,
                                                               latent.scale_factors)
        video = torch.zeros(batch, latent.video.shape[1], lat_f, lat_h, lat_w)
        if forward:
            key = LatentIndexConditioning(latent=encoded, latent_idx=0, source=source)
            audio, audio_conditionings = continued_audio(latent.audio, audio_offset(first, latent.fps),
                                                         overlap_frames, latent.fps, audio_frames, total / latent.fps)
        else:
            key = KeyframeConditioning(latent=encoded, frame_idx=total - overlap_frames,
                                       num_pixel_frames=overlap_frames, source=source)
            audio, audio_conditionings = preceding_audio(latent.audio, audio_offset(total - overlap_frames,
                                                                                    latent.fps), audio_frames)
        result = AVLatent(video=video, audio=audio, fps=latent.fps, pixel_frames=total, height=latent.height,
                          width=latent.width, conditionings=(key,), scale_factors=latent.scale_factors,
                          audio_conditionings=audio_conditionings)
        where = "starting with the last" if forward else "ending with the first"
        note = (f"{direction} clip: {total} frames ({total / latent.fps:.3f} s), {where} {overlap_frames} frames of "
                f"this one and its sound over them")
        log.info("%s: %s", EXTEND, note)
        return {"ui": {"text": [note]}, "result": (result,)}


def _check_audio(name: str, audio) -> tuple[torch.Tensor, int]:
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise NodeInputError(JOIN, f"{name} must be an AUDIO (waveform + sample_rate), got {type(audio).__name__}")
    return audio["waveform"].float(), int(audio["sample_rate"])


def check_join_values(fps=None, overlap_frames=None, direction=None) -> None:
    within_widgets(JOIN, AVGenJoin, fps=fps, overlap_frames=overlap_frames, direction=direction)


class AVGenJoin:
    DESCRIPTION = (
        "Joins two decoded clips where one continues the other (AVGen Extend): over the overlap the picture and the "
        "sound cross-fade from the earlier clip to the later one, then the later one continues, so there is no jump "
        "or click at the seam. direction says which is earlier: forward, this clip then the next one; backward "
        "(AVGen Extend backward), the next clip then this one."
    )
    CATEGORY = "AVGen/latent"
    FUNCTION = "join"
    RETURN_TYPES = (IMAGE, AUDIO)
    RETURN_NAMES = ("frames", "audio")
    OUTPUT_TOOLTIPS = ("The earlier clip, the overlap cross-faded, then the rest of the later clip.",
                       "The earlier clip's sound continued by the later one's.")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "frames": (IMAGE, {"tooltip": "This clip's frames (the one AVGen Extend was given)."}),
                "audio": (AUDIO, {"tooltip": "This clip's sound (exactly frames / fps long)."}),
                "next_frames": (IMAGE, {"tooltip": "The new clip's frames (from AVGen Extend's latent)."}),
                "next_audio": (AUDIO, {"tooltip": "The new clip's sound."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 240.0, "tooltip": "Frame rate of both clips."}),
                "overlap_frames": ("INT", {"default": 9, "min": 1, "max": 1025, "step": 8,
                                           "tooltip": "The overlap AVGen Extend was given."}),
                "direction": (list(DIRECTIONS), {"default": "forward", "tooltip": (
                    "The direction AVGen Extend was given: forward, the new clip comes after this one; backward, "
                    "before it.")}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, fps=None, overlap_frames=None, direction=None):
        return validation_result(check_join_values, fps=fps, overlap_frames=overlap_frames, direction=direction)

    def join(self, frames, audio, next_frames, next_audio, fps: float, overlap_frames: int,
             direction: str = "forward"):
        check_join_values(fps, overlap_frames, direction)
        first, second = _check_image(JOIN, "frames", frames), _check_image(JOIN, "next_frames", next_frames)
        if first.shape[1:] != second.shape[1:]:
            raise NodeInputError(JOIN, f"the clips differ in size: {tuple(first.shape[1:3])} and "
                                       f"{tuple(second.shape[1:3])}")
        wave, rate = _check_audio("audio", audio)
        next_wave, next_rate = _check_audio("next_audio", next_audio)
        if rate != next_rate or wave.shape[:2] != next_wave.shape[:2]:
            raise NodeInputError(JOIN, f"the sounds differ: {rate} Hz / {tuple(wave.shape[:2])} and {next_rate} Hz / "
                                       f"{tuple(next_wave.shape[:2])}")
        if direction == "backward":
            (first, wave), (second, next_wave) = (second, next_wave), (first, wave)
        if overlap_frames >= second.shape[0] or overlap_frames > first.shape[0]:
            raise NodeInputError(JOIN, f"overlap_frames {overlap_frames} must be shorter than the later clip "
                                       f"({second.shape[0]} frames) and at most the earlier one ({first.shape[0]})")
        seam = round(overlap_frames / fps * rate)  # where the later clip's new sound starts
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
