"""Keyframe node: pins an image (or a short clip) to a frame of the clip. Chain several for first / middle / last
keyframes.

As the official pipelines do (`combined_image_conditionings`): a key at frame 0 replaces the first latent frame(s)
(clean tokens, denoise mask 1 - strength); a key anywhere else is appended as guide tokens that carry their own
positions (pixel frame `position`), which the sampler drops before the latent is returned. A multi-frame key
(8k+1 frames) after frame 0 starts on the 8k+1 grid, so its latent frames line up with the clip's.
"""
from __future__ import annotations

import logging

import torch

from ..media.frame_prep import RESIZE_MODES
from ..models.positions import VIDEO_SCALE_FACTORS
from ..models.sampling import KeyframeConditioning, LatentIndexConditioning
from .encode import _check_image, _check_latent, _to_batch, compressed, encode_source
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .latent import check_frames
from .types import AV_LATENT, IMAGE, VIDEO_LATENT, VIDEO_VAE, AVLatent, PixelSource, VideoLatent

log = logging.getLogger(__name__)

NODE = "AVGenKeyframe"
UNITS = ("frames", "seconds", "fraction")
KEY_RESIZE_MODES = (*RESIZE_MODES, "none")
MAX_POSITION = 100000.0


def key_frame_range(item) -> tuple[int, int] | None:
    """Pixel frames [start, stop) a keyframe conditioning pins, None for other conditionings."""
    step = VIDEO_SCALE_FACTORS[0]
    if isinstance(item, LatentIndexConditioning):
        frames = item.latent.shape[2]
        start = 0 if item.latent_idx == 0 else step * item.latent_idx - step + 1
        return start, step * (item.latent_idx + frames - 1) + 1
    if isinstance(item, KeyframeConditioning):
        return item.frame_idx, item.frame_idx + item.num_pixel_frames
    return None


def check_position(position: float | None, unit: str | None) -> None:
    """What a key position must be whatever the clip: a fraction in [0, 1], seconds >= 0, a whole frame number."""
    if position is None or unit is None:
        return
    if unit == "fraction" and not 0.0 <= position <= 1.0:
        raise NodeInputError(NODE, f"position {position:g} as a fraction of the clip must be in [0, 1] "
                                   "(0 = first frame, 1 = last frame)")
    if unit == "seconds" and position < 0:
        raise NodeInputError(NODE, f"position {position:g} s is before the clip's start (seconds count from 0)")
    if unit == "frames" and position != int(position):
        raise NodeInputError(NODE, f"position {position:g} is not a whole frame number")


def check_values(position=None, unit=None, strength=None, resize_mode=None, crf=None) -> None:
    """The constant inputs' checks (None = linked); where the key lands in the clip is checked at run time."""
    within_widgets(NODE, AVGenKeyframe, position=position, unit=unit, strength=strength, resize_mode=resize_mode,
                   crf=crf)
    check_position(position, unit)


def resolve_position(position: float, unit: str, latent: AVLatent) -> int:
    """Frame index of a key position that passed `check_position`: frames (negative counts from the end, -1 = last
    frame), seconds, or a fraction of the clip (0 = first frame, 1 = last frame, rounded to the nearest frame)."""
    frames, fps = latent.pixel_frames, latent.fps
    if unit == "fraction":
        return round(position * (frames - 1))
    if unit == "seconds":
        frame = round(position * fps)
        if frame >= frames:
            raise NodeInputError(NODE, f"position {position:g} s (frame {frame}) is outside the clip: its last frame "
                                       f"{frames - 1} is at {(frames - 1) / fps:.3f} s")
        return frame
    frame = int(position)
    if not -frames <= frame < frames:
        raise NodeInputError(NODE, f"position {frame} is outside the clip's frames 0..{frames - 1} (or "
                                   f"-{frames}..-1 counted from the end)")
    return frame % frames


def _encode_image(video_vae, image, latent: AVLatent, resize_mode: str, crf: int
                  ) -> tuple[torch.Tensor, int, PixelSource]:
    frames = _check_image(NODE, "image", image)
    check_frames(NODE, "image frame count", frames.shape[0])
    if resize_mode == "none" and tuple(frames.shape[1:3]) != (latent.height, latent.width):
        raise NodeInputError(NODE, f"image is {frames.shape[2]}x{frames.shape[1]} but the clip is "
                                   f"{latent.width}x{latent.height} (resize_mode none): resize it or choose "
                                   "crop, pad or stretch")
    source = PixelSource(compressed(frames, crf), "stretch" if resize_mode == "none" else resize_mode)
    return encode_source(video_vae, source, latent.height, latent.width), frames.shape[0], source


def _check_image_latent(image_latent, latent: AVLatent) -> tuple[torch.Tensor, int, PixelSource | None]:
    if not isinstance(image_latent, VideoLatent):
        raise NodeInputError(NODE, f"image_latent must come from AVGen Image Encode, got {type(image_latent).__name__}")
    if (image_latent.width, image_latent.height) != (latent.width, latent.height):
        raise NodeInputError(NODE, f"image_latent was encoded at {image_latent.width}x{image_latent.height} but the "
                                   f"clip is {latent.width}x{latent.height}: encode it at the clip's size (or connect "
                                   "the image instead, which is resized)")
    return image_latent.latent.to(torch.float32), image_latent.pixel_frames, image_latent.source


class AVGenKeyframe:
    DESCRIPTION = (
        "Pins an image to a frame of the clip (keyframe). Chain several of these nodes for first, middle and last "
        "frames. The position is a frame number (negative counts from the end: -1 = last frame), seconds, or a "
        "fraction of the clip (0.5 = middle). At "
        "frame 0 the image replaces the first frame; elsewhere it guides the sampler through extra tokens placed "
        "at that time (as the official keyframe pipeline does), which never appear in the output. Strength 1 "
        "keeps the key exactly; lower values let the sampler deviate. A batch of 8k+1 images is a multi-frame key "
        "(starting on the 8k+1 grid after frame 0). Keys outside the clip or overlapping another key are refused."
    )
    CATEGORY = "AVGen/conditioning"
    FUNCTION = "add_key"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The AV latent with the keyframe added to its conditionings.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": (AV_LATENT, {"tooltip": "The clip's AV latent (AVGen Empty AV Latent, or another keyframe "
                                                  "node to chain keys)."}),
                "position": ("FLOAT", {"default": 0.0, "min": -MAX_POSITION, "max": MAX_POSITION, "step": 1.0,
                                       "tooltip": "Where the key goes: a frame number (0 = first, -1 = last), "
                                                  "seconds from the start, or a fraction of the clip, per unit."}),
                "unit": (list(UNITS), {"default": "frames", "tooltip": (
                    "frames: position is a frame index; seconds: a time; fraction: 0 = first frame, 0.5 = middle, "
                    "1 = last frame (seconds and fractions are rounded to the nearest frame).")}),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                       "tooltip": "1 keeps the key exactly; lower values let the sampler change it."}),
                "resize_mode": (list(KEY_RESIZE_MODES), {"default": "crop", "tooltip": (
                    "How an image of another size is fitted to the clip: crop (cover, cut the overflow), pad "
                    "(fit, black bars), stretch, or none (a size mismatch is an error).")}),
                "crf": ("INT", {"default": 33, "min": 0, "max": 51, "tooltip": (
                    "H.264 quality of the compression round trip the image goes through first (33 = official); "
                    "0 = off.")}),
            },
            "optional": {
                "video_vae": (VIDEO_VAE, {"tooltip": "Video VAE of the model (needed to encode an image)."}),
                "image": (IMAGE, {"tooltip": "The key image (or 8k+1 frames for a multi-frame key)."}),
                "image_latent": (VIDEO_LATENT, {"tooltip": "An already encoded key (AVGen Image Encode at the clip's "
                                                           "size) instead of an image."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, position=None, unit=None, strength=None, resize_mode=None, crf=None):
        return validation_result(check_values, position=position, unit=unit, strength=strength,
                                 resize_mode=resize_mode, crf=crf)

    def add_key(self, latent: AVLatent, position: float, unit: str, strength: float, resize_mode: str, crf: int,
                video_vae=None, image=None, image_latent=None):
        check_values(position, unit, strength, resize_mode, crf)
        latent = _check_latent(NODE, latent)
        if latent.keep_video:
            raise NodeInputError(NODE, "the latent keeps its whole video (AVGen Video Encode with keep on), so a "
                                       "keyframe would be ignored: turn keep off or drop the keyframe")
        frame = resolve_position(position, unit, latent)
        encoded, pixel_frames, source = self._key_latent(latent, video_vae, image, image_latent, resize_mode, crf)
        notes = []
        step = VIDEO_SCALE_FACTORS[0]
        if pixel_frames > 1 and frame > 0 and (frame - 1) % step:
            snapped = (frame - 1) // step * step + 1
            notes.append(f"multi-frame key moved from frame {frame} to {snapped} (the 8k+1 grid)")
            frame = snapped
        if frame + pixel_frames > latent.pixel_frames:
            raise NodeInputError(NODE, f"the key's {pixel_frames} frames starting at frame {frame} run past the clip's "
                                       f"last frame {latent.pixel_frames - 1}")
        self._check_free(latent, frame, pixel_frames)
        if encoded.shape[1] != latent.video.shape[1]:
            raise NodeInputError(NODE, f"the key latent has {encoded.shape[1]} channels, the clip's video latent "
                                       f"{latent.video.shape[1]}: it was encoded with another model's video VAE")
        encoded = _to_batch(NODE, "the key", encoded, latent.video.shape[0])
        if frame == 0:
            item = LatentIndexConditioning(latent=encoded, strength=float(strength), latent_idx=0, source=source)
        else:
            item = KeyframeConditioning(latent=encoded, frame_idx=frame, strength=float(strength),
                                        num_pixel_frames=pixel_frames, source=source)
        notes.append(f"key of {pixel_frames} frame(s) at frame {frame} ({frame / latent.fps:.3f} s), strength "
                     f"{strength:g}, {'replacing the first frame' if frame == 0 else 'as guide tokens'}")
        for note in notes:
            log.info("%s: %s", NODE, note)
        result = latent.replace(conditionings=(*latent.conditionings, item))
        return {"ui": {"text": notes}, "result": (result,)}

    @staticmethod
    def _key_latent(latent, video_vae, image, image_latent, resize_mode, crf
                    ) -> tuple[torch.Tensor, int, PixelSource | None]:
        if (image is None) == (image_latent is None):
            raise NodeInputError(NODE, "connect exactly one of image or image_latent "
                                       + ("(both are connected)" if image is not None else "(neither is)"))
        if image_latent is not None:
            return _check_image_latent(image_latent, latent)
        if video_vae is None:
            raise NodeInputError(NODE, "an image key needs the video_vae input to be encoded: connect the "
                                       "checkpoint loader's video_vae")
        return _encode_image(video_vae, image, latent, resize_mode, crf)

    @staticmethod
    def _check_free(latent: AVLatent, frame: int, pixel_frames: int) -> None:
        for item in latent.conditionings:
            taken = key_frame_range(item)
            if taken and taken[0] < frame + pixel_frames and frame < taken[1]:
                what = f"frame {taken[0]}" if taken[1] - taken[0] == 1 else f"frames {taken[0]}..{taken[1] - 1}"
                raise NodeInputError(NODE, f"a key already sits at {what} (an earlier keyframe or the empty latent's "
                                           f"first_frame); keys at frame {frame} would overlap it: move or drop one")


NODE_CLASS_MAPPINGS = {"AVGenKeyframe": AVGenKeyframe}
NODE_DISPLAY_NAME_MAPPINGS = {"AVGenKeyframe": "AVGen Keyframe"}
