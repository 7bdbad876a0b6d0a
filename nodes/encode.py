"""Encode nodes: an image into a first-frame latent, frames into the AV latent's video (V2A / V2V) and audio into
the AV latent's audio (A2V)."""
from __future__ import annotations

import logging

import torch

from ..media.frame_prep import RESIZE_MODES, h264_roundtrip, resize_frames, to_uint8
from ..models.audio.preprocess import STEREO_DOWNMIX_LAYOUTS, prepare_audio
from ..models.positions import VIDEO_SCALE_FACTORS
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .latent import FINEST_SIDE_STEP, SIDE, check_side
from .types import AUDIO, AUDIO_VAE, AV_LATENT, IMAGE, VIDEO_LATENT, VIDEO_VAE, AVLatent, PixelSource, VideoLatent

log = logging.getLogger(__name__)

RESIZE_TOOLTIP = ("crop: scale to cover the target and cut the overflow at the center (the official "
                  "preprocessing); pad: fit inside and fill the rest with black; stretch: change the aspect ratio.")
KEEP_TOOLTIP = "{what} is kept exactly by the sampler ({task}); off: it is a starting point that denoise < 1 reworks."


def _device(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device


def _check_image(node: str, name: str, image) -> torch.Tensor:
    """IMAGE (B, H, W, C >= 3) -> its RGB channels."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] < 3 or 0 in image.shape:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise NodeInputError(node, f"{name} must be an IMAGE (batch, height, width, 3), got {shape}")
    return image[..., :3]


def _to_vae_pixels(frames: torch.Tensor) -> torch.Tensor:
    """(F, 3, H, W) in 0..1 -> (1, 3, F, H, W) in [-1, 1]."""
    return (frames * 2.0 - 1.0).permute(1, 0, 2, 3).unsqueeze(0)


def _to_batch(node: str, what: str, latent: torch.Tensor, batch: int) -> torch.Tensor:
    if latent.shape[0] not in (1, batch):
        raise NodeInputError(node, f"{what} has a batch of {latent.shape[0]}, the AV latent {batch}")
    return latent.expand(batch, *latent.shape[1:]).contiguous()


def compressed(frames: torch.Tensor, crf: int) -> torch.Tensor:
    """(N, H, W, 3) in 0..1 through one H.264 frame each at `crf` (0 = unchanged), as the official pipelines do."""
    if crf <= 0:
        return frames
    return torch.stack([torch.from_numpy(h264_roundtrip(to_uint8(f), crf)) for f in frames]).float() / 255.0


def encode_source(video_vae, source: PixelSource, height: int, width: int) -> torch.Tensor:
    """`source` fitted to height x width pixels and encoded: normalized latent (1, C, F, H', W'), float32 on the
    CPU."""
    pixels = _to_vae_pixels(resize_frames(source.frames, height, width, source.resize_mode))
    with torch.no_grad():
        return video_vae.vae.encode(pixels).to("cpu", torch.float32)


def _check_latent(node: str, latent) -> AVLatent:
    if not isinstance(latent, AVLatent):
        raise NodeInputError(node, f"latent must be an AV latent (AVGen Empty AV Latent), got {type(latent).__name__}")
    return latent


def check_image_encode_values(width=None, height=None, resize_mode=None, crf=None,
                              cell: tuple[int, int] = (FINEST_SIDE_STEP, FINEST_SIDE_STEP)) -> None:
    """Image Encode's constant inputs (None = linked): ranges and choices, sizes on the VAE's (height, width) grid
    `cell` (when unknown, the finest of any supported VAE)."""
    node = "AVGenImageEncode"
    check_side(node, "width", width, cell[1])
    check_side(node, "height", height, cell[0])
    within_widgets(node, AVGenImageEncode, width=width, height=height, resize_mode=resize_mode, crf=crf)


class AVGenImageEncode:
    DESCRIPTION = (
        "Encodes one image into a one-frame video latent for image-to-video (connect it to AVGen Empty AV Latent's "
        "first_frame). The image is resized to width x height (crop / pad / stretch) and, with crf > 0, passed "
        "through one H.264 frame at that quality first as the official pipelines do (the models were trained on "
        "compressed video). A batch of several images is refused: pick one."
    )
    CATEGORY = "AVGen/encode"
    FUNCTION = "encode"
    RETURN_TYPES = (VIDEO_LATENT,)
    RETURN_NAMES = ("image_latent",)
    OUTPUT_TOOLTIPS = ("The encoded image: one latent frame at width x height.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video_vae": (VIDEO_VAE, {"tooltip": "Video VAE of the model that will sample."}),
                "image": (IMAGE, {"tooltip": "One image (a batch of one)."}),
                "width": ("INT", {"default": 768, **SIDE, "tooltip": "Target width: the clip's width."}),
                "height": ("INT", {"default": 512, **SIDE, "tooltip": "Target height: the clip's height."}),
                "resize_mode": (list(RESIZE_MODES), {"default": "crop", "tooltip": RESIZE_TOOLTIP}),
                "crf": ("INT", {"default": 33, "min": 0, "max": 51,
                                "tooltip": "H.264 quality of the compression round trip (33 = official default); "
                                           "0 = off (the image is used as it is)."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, resize_mode=None, crf=None):
        return validation_result(check_image_encode_values, width=width, height=height, resize_mode=resize_mode,
                                 crf=crf)

    def encode(self, video_vae, image, width: int, height: int, resize_mode: str, crf: int):
        node = "AVGenImageEncode"
        check_image_encode_values(width, height, resize_mode, crf, cell=video_vae.vae.config.encoder_scale[1:])
        image = _check_image(node, "image", image)
        if image.shape[0] != 1:
            raise NodeInputError(node, f"image holds a batch of {image.shape[0]} images, one is expected: select one "
                                       "(e.g. with an image-from-batch node) before encoding")
        source = PixelSource(compressed(image[:1], crf), resize_mode)
        latent = encode_source(video_vae, source, height, width)
        return (VideoLatent(latent=latent, pixel_frames=1, height=height, width=width, source=source),)


class AVGenVideoEncode:
    DESCRIPTION = (
        "Encodes frames into the video of an AV latent, for video-to-audio (keep on: the video is kept exactly "
        "and only the audio is generated) or video-to-video (keep off, sampler denoise < 1). The frames are "
        "taken as being at the latent's fps; the first `frames` of the latent are used (more are dropped and the "
        "node says so, fewer is an error) and resized to the latent's size."
    )
    CATEGORY = "AVGen/encode"
    FUNCTION = "encode"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The AV latent with its video replaced by the encoded frames.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "video_vae": (VIDEO_VAE, {"tooltip": "Video VAE of the model that will sample."}),
                "images": (IMAGE, {"tooltip": "The video frames (batch = frames), at the latent's fps."}),
                "latent": (AV_LATENT, {"tooltip": "AV latent whose size and frame count the frames are fitted to."}),
                "resize_mode": (list(RESIZE_MODES), {"default": "crop", "tooltip": RESIZE_TOOLTIP}),
                "keep": ("BOOLEAN", {"default": True, "tooltip": KEEP_TOOLTIP.format(
                    what="The video", task="video-to-audio")}),
            }
        }

    @classmethod
    def check_values(cls, resize_mode=None) -> None:
        """The constant input's check (None = linked): a known resize mode."""
        within_widgets("AVGenVideoEncode", cls, resize_mode=resize_mode)

    @classmethod
    def VALIDATE_INPUTS(cls, resize_mode=None):
        return validation_result(cls.check_values, resize_mode=resize_mode)

    def encode(self, video_vae, images, latent: AVLatent, resize_mode: str, keep: bool):
        node = "AVGenVideoEncode"
        self.check_values(resize_mode)
        latent = _check_latent(node, latent)
        images = _check_image(node, "images", images)
        needed, given = latent.pixel_frames, images.shape[0]
        if given < needed:
            step = VIDEO_SCALE_FACTORS[0]
            fits = (given - 1) // step * step + 1
            raise NodeInputError(node, f"images hold {given} frames but the latent needs {needed}: set the empty "
                                       f"latent's frames to {fits} (the largest 8k+1 count these frames cover)")
        notes = [] if given == needed else [f"used the first {needed} of {given} frames"]
        conditionings = latent.conditionings
        if keep and conditionings:
            notes.append(f"dropped the latent's {len(conditionings)} video conditioning(s) (first frame): the "
                         "whole video is kept")
            conditionings = ()
        frames = resize_frames(images[:needed], latent.height, latent.width, resize_mode)
        encoded = video_vae.vae.encode(_to_vae_pixels(frames)).to("cpu")
        if encoded.shape[1:] != latent.video.shape[1:]:
            raise NodeInputError(node, f"encoded video {tuple(encoded.shape[1:])} does not match the latent's "
                                       f"{tuple(latent.video.shape[1:])}: the video VAE is not the model's")
        video = _to_batch(node, "the encoded video", encoded, latent.video.shape[0])
        for note in notes:
            log.info("%s: %s", node, note)
        result = latent.replace(video=video, has_video=True, keep_video=bool(keep), conditionings=conditionings)
        return {"ui": {"text": notes}, "result": (result,)} if notes else (result,)


def _audio_notes(channels: int, sample_rate: int, vae_rate: int, given_s: float, seconds: float) -> list[str]:
    """What `prepare_audio` and the encoder do to the input, as sentences."""
    notes = []
    if channels == 1:
        notes.append("mono duplicated to stereo")
    elif channels > 2:
        layout = STEREO_DOWNMIX_LAYOUTS.get(channels, ("equal weights",))[0]
        notes.append(f"{channels} channels ({layout}) mixed down to stereo")
    if sample_rate != vae_rate:
        notes.append(f"resampled from {sample_rate} Hz to {vae_rate} Hz")
    if abs(given_s - seconds) * sample_rate >= 1:
        verb = "trimmed" if given_s > seconds else "padded with silence"
        notes.append(f"{given_s:.3f} s {verb} to the clip's {seconds:.3f} s")
    return notes


def _conform_frames(latent: torch.Tensor, frames: int) -> torch.Tensor:
    """Crop, or zero-pad at the end, dim 2 to `frames` (the encoder's ceil may give one frame more)."""
    if latent.shape[2] >= frames:
        return latent[:, :, :frames]
    pad = latent.new_zeros(*latent.shape[:2], frames - latent.shape[2], *latent.shape[3:])
    return torch.cat([latent, pad], dim=2)


class AVGenAudioEncode:
    DESCRIPTION = (
        "Encodes audio into the audio of an AV latent, for audio-to-video (keep on: the audio is kept exactly "
        "and only the video is generated). Mono is duplicated to stereo, surround (5.1, 7.1, ...) mixed down, "
        "any sample rate resampled to the VAE's 16 kHz, and the audio trimmed or padded with silence to the "
        "clip's length (frames / fps); the node lists what it changed."
    )
    CATEGORY = "AVGen/encode"
    FUNCTION = "encode"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The AV latent with its audio replaced by the encoded audio.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio_vae": (AUDIO_VAE, {"tooltip": "Audio VAE of the model that will sample."}),
                "audio": (AUDIO, {"tooltip": "The audio; any channel count and sample rate."}),
                "latent": (AV_LATENT, {"tooltip": "AV latent whose duration the audio is fitted to."}),
                "keep": ("BOOLEAN", {"default": True, "tooltip": KEEP_TOOLTIP.format(
                    what="The audio", task="audio-to-video")}),
            }
        }

    def encode(self, audio_vae, audio, latent: AVLatent, keep: bool):
        node = "AVGenAudioEncode"
        latent = _check_latent(node, latent)
        if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
            raise NodeInputError(node, "audio must be an AUDIO dict with 'waveform' (batch, channels, samples) and "
                                       "'sample_rate'")
        waveform, sample_rate = audio["waveform"], audio["sample_rate"]
        if not isinstance(waveform, torch.Tensor) or waveform.ndim != 3 or 0 in waveform.shape:
            shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
            raise NodeInputError(node, f"audio waveform must be (batch, channels, samples), got {shape}")
        vae = audio_vae.vae
        try:
            prepared = prepare_audio(waveform, sample_rate, seconds=latent.seconds, channels=vae.cfg.in_channels)
        except ValueError as exc:
            raise NodeInputError(node, f"audio: {exc}") from exc
        with torch.no_grad():
            encoded = vae.encode_waveform(prepared.to(_device(vae)), int(sample_rate)).to("cpu", torch.float32)
        target = latent.audio.shape
        if (encoded.shape[1], encoded.shape[3]) != (target[1], target[3]):
            raise NodeInputError(node, f"encoded audio latent {tuple(encoded.shape)} does not fit the latent's "
                                       f"{tuple(target)}: the audio VAE is not the model's")
        encoded = _to_batch(node, "the audio", _conform_frames(encoded, target[2]), target[0])
        notes = _audio_notes(waveform.shape[1], int(sample_rate), vae.cfg.front_end.sample_rate,
                             waveform.shape[2] / int(sample_rate), latent.seconds)
        for note in notes:
            log.info("%s: %s", node, note)
        result = latent.replace(audio=encoded, has_audio=True, keep_audio=bool(keep))
        return {"ui": {"text": notes}, "result": (result,)} if notes else (result,)


NODE_CLASS_MAPPINGS = {
    "AVGenImageEncode": AVGenImageEncode,
    "AVGenVideoEncode": AVGenVideoEncode,
    "AVGenAudioEncode": AVGenAudioEncode,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AVGenImageEncode": "AVGen Image Encode",
    "AVGenVideoEncode": "AVGen Video Encode",
    "AVGenAudioEncode": "AVGen Audio Encode",
}
