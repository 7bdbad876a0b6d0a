"""Empty AV Latent: the zero audio-video latent a sampler starts from, sized from pixels, frames (or seconds) and
fps, with an optional first-frame image conditioning."""
from __future__ import annotations

import itertools
import logging

import torch

from ..models.audio.audio_vae import AudioVAEConfig
from ..models.audio.vocoder_config import GRIFFIN_LIM_TYPE
from ..models.positions import AUDIO_LATENTS_PER_SECOND, VIDEO_SCALE_FACTORS, audio_latent_frames, latent_shape_for
from ..models.sampling import LatentIndexConditioning
from ..models.sampling.state import AudioGrid
from ..models.video_vae.config import VideoVAEConfig
from .errors import NodeInputError
from .input_checks import multiple_of, number, validation_result, within_widgets
from .types import AV_LATENT, MODEL, VIDEO_LATENT, AVLatent, ModelHandle, VideoLatent

log = logging.getLogger(__name__)

NODE = "AVGenEmptyAVLatent"
MIN_SIDE = 64  # the 19B decoder pads by reflection: latent sides must be >= 2
MAX_SIDE = 8192
MAX_FRAMES = 8 * 1250 + 1
FINEST_SIDE_STEP = 16  # pixels per latent cell of the finest supported VAE (AVGen-Tiny; the LTX VAEs: 32)
SIDE = {"min": MIN_SIDE, "max": MAX_SIDE, "step": FINEST_SIDE_STEP}  # the width / height widgets (also Image Encode)


def audio_latent_layout(model: ModelHandle) -> tuple[int, int]:
    """(z channels, latent mel bins) of the model's audio latent.

    From the checkpoint's audio VAE config when it has one; otherwise the released layout of 16 latent mel bins.
    The DiT's audio token width must equal z * mel bins.
    """
    token_width = model.config.audio_in_channels
    vae_config = model.checkpoint.config.get("audio_vae")
    if vae_config:
        vae = AudioVAEConfig.from_config(vae_config)
        z, mel_bins = vae.z_channels, vae.latent_mel_bins
    else:
        mel_bins = AudioGrid.mel_bins
        z = token_width // mel_bins
    if z * mel_bins != token_width:
        raise NodeInputError(NODE, f"the model's audio token width {token_width} is not z channels x {mel_bins} "
                                   f"latent mel bins (z = {z}); the checkpoint's audio VAE and DiT do not match")
    return z, mel_bins


def video_scale_factors(model: ModelHandle) -> tuple[int, int, int]:
    """(frames, pixels high, pixels wide) per video latent cell: the checkpoint's video VAE config when it has one
    (AVGen-Tiny: 8 x 16 x 16), else the released VAEs' 8 x 32 x 32."""
    vae_config = model.checkpoint.config.get("vae")
    if not vae_config:
        return VIDEO_SCALE_FACTORS
    try:
        scale = VideoVAEConfig.from_config(vae_config).encoder_scale
    except ValueError as exc:
        raise NodeInputError(NODE, f"model: its checkpoint's video VAE config is unreadable ({exc})") from None
    if scale[0] != VIDEO_SCALE_FACTORS[0]:
        raise NodeInputError(NODE, f"the checkpoint's video VAE compresses {scale[0]} frames per latent frame; "
                                   f"only {VIDEO_SCALE_FACTORS[0]} (frame counts 8k+1) is supported")
    return scale


def audio_frames_needed(model: ModelHandle) -> int:
    """Audio latent frames the model's audio decoder needs: 1, or enough for two decoded mel frames when the
    checkpoint's vocoder is Griffin-Lim (AVGen-Tiny: it inverts a centred STFT, (mel frames - 1) hops long)."""
    config = model.checkpoint.config
    vocoder, audio_vae = config.get("vocoder"), config.get("audio_vae")
    if not (isinstance(vocoder, dict) and vocoder.get("type") == GRIFFIN_LIM_TYPE and audio_vae):
        return 1
    decoded_frames = AudioVAEConfig.from_config(audio_vae).decoded_frames
    return next(t for t in itertools.count(1) if decoded_frames(t) >= 2)


def check_side(node: str, name: str, value: int | None, step: int = VIDEO_SCALE_FACTORS[1]) -> None:
    """Named error unless `value` is a multiple of `step` (the VAE's pixels per latent cell) and >= 64."""
    multiple_of(node, name, value, step, MIN_SIDE, f"the video VAE works on {step}x{step} pixel blocks")


def check_frames(node: str, name: str, frames: int | None) -> None:
    """Named error unless `frames` = 8k + 1."""
    number(node, name, frames)
    step = VIDEO_SCALE_FACTORS[0]
    if frames is not None and (frames < 1 or (frames - 1) % step):
        lower = max(1, (frames - 1) // step * step + 1)
        raise NodeInputError(node, f"{name} {frames} is not 8k+1 (1, 9, 17, ..., 97, 121, ...; the video VAE "
                                   f"encodes the first frame alone, then {step} frames per latent frame): use "
                                   f"{lower} or {lower + step}")


def frames_for_seconds(seconds: float, fps: float) -> int:
    """The 8k+1 frame count nearest to seconds * fps."""
    step = VIDEO_SCALE_FACTORS[0]
    return step * max(0, round((round(seconds * fps) - 1) / step)) + 1


def _first_frame_conditioning(first_frame: VideoLatent, strength: float, video_shape, width: int, height: int):
    latent = first_frame.latent
    batch, channels, frames, lat_h, lat_w = video_shape
    if (first_frame.width, first_frame.height) != (width, height) or tuple(latent.shape[3:]) != (lat_h, lat_w):
        raise NodeInputError(NODE, f"first_frame was encoded at {first_frame.width}x{first_frame.height} but the "
                                   f"latent is {width}x{height}: give the image encode node the same width and height")
    if latent.shape[1] != channels:
        raise NodeInputError(NODE, f"first_frame latent has {latent.shape[1]} channels, the model's video latent "
                                   f"{channels}: it was encoded with another model family's video VAE")
    if latent.shape[2] > frames:
        raise NodeInputError(NODE, f"first_frame holds {latent.shape[2]} latent frames, more than the clip's {frames}")
    if latent.shape[0] not in (1, batch):
        raise NodeInputError(NODE, f"first_frame has a batch of {latent.shape[0]}, the latent {batch}: use one image")
    latent = latent.expand(batch, -1, -1, -1, -1).contiguous()
    return LatentIndexConditioning(latent=latent, strength=float(strength), latent_idx=0, source=first_frame.source)


def check_values(width=None, height=None, frames=None, seconds=None, fps=None, batch_size=None,
                 first_frame_strength=None, cell: tuple[int, int] = (FINEST_SIDE_STEP, FINEST_SIDE_STEP),
                 audio_frames: int = 1) -> None:
    """The constant inputs' checks (None = linked). `cell`: the model's (height, width) pixels per latent cell
    and `audio_frames`: the audio latent frames its decoder needs, when known (else what any supported model
    takes)."""
    check_side(NODE, "width", width, cell[1])
    check_side(NODE, "height", height, cell[0])
    if seconds == 0:  # frames is used
        check_frames(NODE, "frames", frames)
    within_widgets(NODE, AVGenEmptyAVLatent, width=width, height=height, frames=frames, seconds=seconds, fps=fps,
                   batch_size=batch_size, first_frame_strength=first_frame_strength)
    if fps is None or seconds is None or (not seconds and frames is None):
        return
    length = f"{frames} frames at {fps:g} fps"
    if seconds:
        frames = frames_for_seconds(seconds, fps)
        length = f"seconds {seconds:g} at {fps:g} fps"
        if frames > MAX_FRAMES:
            raise NodeInputError(NODE, f"{length} is {frames} frames, more than the maximum {MAX_FRAMES}")
    audio = audio_latent_frames(frames, fps)
    if audio < audio_frames:
        raise NodeInputError(NODE, f"{length} last {frames / fps:.3f} s: the audio latent "
                                   f"({AUDIO_LATENTS_PER_SECOND:g} frames per second) would have {audio} frame(s), "
                                   "too few to decode (at least 1; 2 with AVGen-Tiny's Griffin-Lim vocoder): use "
                                   "more frames or a lower fps")


class AVGenEmptyAVLatent:
    DESCRIPTION = (
        "Empty audio-video latent for a clip of width x height pixels and a number of frames (or seconds) at fps. "
        "The audio latent length follows from the duration (25 audio latent frames per second). Width and height "
        "must be multiples of 32 (16 for AVGen-Tiny; at least 64) and frames 8k+1, else the node stops with an "
        "error that names the nearest valid values; a length in seconds is rounded to the nearest 8k+1 frames and "
        "the node reports the frame count it used. An optional first_frame (from AVGen Image Encode) conditions the "
        "first latent frame (image-to-video)."
    )
    CATEGORY = "AVGen/latent"
    FUNCTION = "make"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Zero video and audio latents sized for the clip, with the first-frame conditioning if given.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The DiT: gives the video and audio latent channel counts."}),
                "width": ("INT", {"default": 768, **SIDE, "tooltip": "Width in pixels, a multiple of 32 (16 for "
                                                                     "AVGen-Tiny)."}),
                "height": ("INT", {"default": 512, **SIDE, "tooltip": "Height in pixels, a multiple of 32 (16 for "
                                                                      "AVGen-Tiny)."}),
                "frames": ("INT", {"default": 121, "min": 1, "max": MAX_FRAMES, "step": 8,
                                   "tooltip": "Frame count, 8k+1 (97, 121, 161, ...). Ignored when seconds > 0."}),
                "seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 600.0, "step": 0.01,
                                      "tooltip": "Clip length in seconds; 0 = use frames. Rounded to the nearest "
                                                 "8k+1 frames at fps (the node reports the result)."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 240.0, "step": 0.01,
                                  "tooltip": "Frames per second of the clip; sets the timing of video and audio."}),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 64,
                                       "tooltip": "Clips generated at once (each gets its own noise)."}),
            },
            "optional": {
                "first_frame": (VIDEO_LATENT, {"tooltip": "Encoded image (AVGen Image Encode, same width and "
                                                          "height) that becomes the first frame."}),
                "first_frame_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                                   "tooltip": "1 keeps the first frame exactly; lower values let "
                                                              "the sampler change it."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, frames=None, seconds=None, fps=None, batch_size=None,
                        first_frame_strength=None):
        return validation_result(check_values, width=width, height=height, frames=frames, seconds=seconds, fps=fps,
                                 batch_size=batch_size, first_frame_strength=first_frame_strength)

    def make(self, model: ModelHandle, width: int, height: int, frames: int, seconds: float, fps: float,
             batch_size: int, first_frame: VideoLatent | None = None, first_frame_strength: float = 1.0):
        scale = video_scale_factors(model)
        check_values(width, height, frames, seconds, fps, batch_size, first_frame_strength, cell=scale[1:],
                     audio_frames=audio_frames_needed(model))
        notes = []
        if seconds > 0:
            frames = frames_for_seconds(seconds, fps)
            notes.append(f"{seconds:g} s at {fps:g} fps -> {frames} frames ({frames / fps:.3f} s; frame counts "
                         f"are 8k+1)")
        (lat_f, lat_h, lat_w), audio_frames = latent_shape_for(frames, height, width, fps, scale)
        z, mel_bins = audio_latent_layout(model)
        video = torch.zeros(batch_size, model.config.video_in_channels, lat_f, lat_h, lat_w)
        audio = torch.zeros(batch_size, z, audio_frames, mel_bins)
        conditionings = ()
        if first_frame is not None:
            conditionings = (_first_frame_conditioning(first_frame, first_frame_strength, video.shape, width, height),)
        latent = AVLatent(video=video, audio=audio, fps=float(fps), pixel_frames=frames, height=height, width=width,
                          conditionings=conditionings, scale_factors=scale)
        notes.append(f"{width}x{height}, {frames} frames at {fps:g} fps ({frames / fps:.3f} s): video latent "
                     f"{tuple(video.shape)}, audio latent {tuple(audio.shape)}"
                     + (f", first frame at strength {first_frame_strength:g}" if conditionings else ""))
        for note in notes:
            log.info("%s: %s", NODE, note)
        return {"ui": {"text": notes}, "result": (latent,)}


NODE_CLASS_MAPPINGS = {"AVGenEmptyAVLatent": AVGenEmptyAVLatent}
NODE_DISPLAY_NAME_MAPPINGS = {"AVGenEmptyAVLatent": "AVGen Empty AV Latent"}
