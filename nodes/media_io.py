"""Loader nodes for the files in the input directory: image, audio, video (Pillow and PyAV, no ComfyUI code).

Each file combo lists the matching files directly in the input directory (ComfyUI's input folder; standalone
--input-dir / $AVGEN_INPUT_DIR / ./input). Images and videos get the frontend's upload button (`image_upload`,
`video_upload`, as ComfyUI's LoadImage / LoadVideo declare). The audio combo has no `audio_upload`: the frontend
gives that button only to an input named "audio" and builds it on the audio player widget it adds to ComfyUI's
own audio nodes alone, so on another node it would fail; upload audio with ComfyUI's Load Audio or put the file
in the input folder.
"""
from __future__ import annotations

import os

import torch

from ..media.audio_io import AUDIO_EXTENSIONS, read_audio
from ..media.errors import MediaReadError
from ..media.image_io import IMAGE_EXTENSIONS, load_image
from ..media.video_io import VIDEO_EXTENSIONS, read_video
from . import comfy_adapter
from .errors import NodeInputError
from .types import AUDIO, IMAGE, MASK

CATEGORY = "AVGen/io"
LOAD_IMAGE, LOAD_AUDIO, LOAD_VIDEO = "AVGenLoadImage", "AVGenLoadAudio", "AVGenLoadVideo"
NO_IMAGES = "(no images in the input folder)"
NO_AUDIO = "(no audio or video files in the input folder)"
NO_VIDEOS = "(no videos in the input folder)"
SILENT_SAMPLE_RATE = 48000
SILENT_CHANNELS = 2


def _choices(extensions, placeholder: str) -> list[str]:
    return comfy_adapter.list_input_files(extensions) or [placeholder]


def _path(node: str, input_name: str, name: str, placeholder: str):
    if name == placeholder:
        raise NodeInputError(node, f"no file selected for {input_name}: put one in "
                                   f"{comfy_adapter.input_directory()} (or upload it) and choose it")
    try:
        return comfy_adapter.input_file_path(name)
    except FileNotFoundError as exc:
        raise NodeInputError(node, f"{input_name}: {exc}") from exc


def _validate(node: str, input_name: str, name: str | None, placeholder: str):
    """VALIDATE_INPUTS' answer: True when the file is there (or the name comes from a link: None)."""
    if name is None:
        return True
    try:
        _path(node, input_name, name, placeholder)
    except NodeInputError as exc:
        return str(exc)
    return True


def _fingerprint(name: str) -> str:
    """Changes when the named input file is replaced (size and modification time); the name when it is missing."""
    try:
        stat = os.stat(comfy_adapter.input_file_path(name))
    except (OSError, ValueError):
        return str(name)
    return f"{name}:{stat.st_size}:{stat.st_mtime_ns}"


def _audio(waveform: torch.Tensor, sample_rate: int) -> dict:
    """ComfyUI AUDIO from (C, N)."""
    return {"waveform": waveform.to(torch.float32).unsqueeze(0).contiguous(), "sample_rate": int(sample_rate)}


class AVGenLoadImage:
    DESCRIPTION = ("Loads an image from the input folder as IMAGE and MASK (1 − alpha; zeros without alpha), like "
                   "ComfyUI's Load Image: EXIF orientation applied, the frames of an animated file as a batch.")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (IMAGE, MASK)
    RETURN_NAMES = ("image", "mask")
    OUTPUT_TOOLTIPS = ("The image (batch, height, width, 3), values 0..1.",
                       "1 − alpha (batch, height, width); zeros when the image has no alpha channel.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (_choices(IMAGE_EXTENSIONS, NO_IMAGES), {
            "image_upload": True, "tooltip": "Image file in the input folder (png, jpg, webp, gif, tiff, ...)."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, image=None):
        return _validate(LOAD_IMAGE, "image", image, NO_IMAGES)

    @classmethod
    def IS_CHANGED(cls, image):
        return _fingerprint(image)

    def load(self, image):
        path = _path(LOAD_IMAGE, "image", image, NO_IMAGES)
        try:
            return load_image(path)
        except MediaReadError as exc:
            raise NodeInputError(LOAD_IMAGE, f"image: {exc}") from exc


class AVGenLoadAudio:
    DESCRIPTION = ("Loads audio from a file in the input folder (wav, flac, mp3, aac/m4a, ogg/opus, or the audio "
                   "track of a video) as AUDIO at the file's own sample rate and channels.")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (AUDIO,)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The audio: waveform (1, channels, samples) float in -1..1 and its sample rate.",)

    @classmethod
    def INPUT_TYPES(cls):
        files = _choices(AUDIO_EXTENSIONS | VIDEO_EXTENSIONS, NO_AUDIO)
        return {"required": {"audio": (files, {
            "tooltip": "Audio file (or video with an audio track) in the input folder."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, audio=None):
        return _validate(LOAD_AUDIO, "audio", audio, NO_AUDIO)

    @classmethod
    def IS_CHANGED(cls, audio):
        return _fingerprint(audio)

    def load(self, audio):
        path = _path(LOAD_AUDIO, "audio", audio, NO_AUDIO)
        try:
            decoded = read_audio(path)
        except MediaReadError as exc:
            raise NodeInputError(LOAD_AUDIO, f"audio: {exc}") from exc
        return (_audio(decoded.waveform, decoded.sample_rate),)


class AVGenLoadVideo:
    DESCRIPTION = ("Loads a video from the input folder: its frames as IMAGE, its audio (silence of the same "
                   "length, stereo 48 kHz, when the file has none) and its frame rate.")
    CATEGORY = CATEGORY
    FUNCTION = "load"
    RETURN_TYPES = (IMAGE, AUDIO, "FLOAT")
    RETURN_NAMES = ("frames", "audio", "fps")
    OUTPUT_TOOLTIPS = (
        "The selected frames (frames, height, width, 3), values 0..1.",
        "The audio playing with the selected frames (as long as they last); silence when the file has none.",
        "Frame rate of the selected frames (the file's divided by select_every_nth).",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {"video": (_choices(VIDEO_EXTENSIONS, NO_VIDEOS), {
                "video_upload": True, "tooltip": "Video file in the input folder (mp4, mov, mkv, webm, ...)."})},
            "optional": {
                "frame_limit": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip":
                                        "Load at most this many frames (after skipping and selecting); 0 = all."}),
                "skip_first_frames": ("INT", {"default": 0, "min": 0, "max": 1000000, "tooltip":
                                              "Frames dropped at the start (the audio starts there too)."}),
                "select_every_nth": ("INT", {"default": 1, "min": 1, "max": 1000, "tooltip":
                                             "Keep every n-th frame (1 = all); the fps output is divided by n."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, video=None):
        return _validate(LOAD_VIDEO, "video", video, NO_VIDEOS)

    @classmethod
    def IS_CHANGED(cls, video, **options):
        return _fingerprint(video)

    def load(self, video, frame_limit=0, skip_first_frames=0, select_every_nth=1):
        path = _path(LOAD_VIDEO, "video", video, NO_VIDEOS)
        try:
            clip = read_video(path, frame_limit, skip_first_frames, select_every_nth)
        except (MediaReadError, ValueError) as exc:
            raise NodeInputError(LOAD_VIDEO, f"video: {exc}") from exc
        if clip.audio is None:
            samples = round(clip.frames.shape[0] / clip.fps * SILENT_SAMPLE_RATE)
            audio = _audio(torch.zeros(SILENT_CHANNELS, max(samples, 1)), SILENT_SAMPLE_RATE)
        else:
            audio = _audio(clip.audio, clip.sample_rate)
        return clip.frames, audio, float(clip.fps)


NODE_CLASS_MAPPINGS = {
    "AVGenLoadImage": AVGenLoadImage,
    "AVGenLoadAudio": AVGenLoadAudio,
    "AVGenLoadVideo": AVGenLoadVideo,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AVGenLoadImage": "AVGen Load Image",
    "AVGenLoadAudio": "AVGen Load Audio",
    "AVGenLoadVideo": "AVGen Load Video",
}
