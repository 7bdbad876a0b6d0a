"""Audio Sync & Save: frames + audio + fps -> an H.264 + AAC mp4 in the output folder, with the measured
audio-video offset.

The audio is trimmed or zero-padded at the end to exactly frames / fps seconds before it is written and passed
on. A batch of several audio clips is played one after the other (as AVGen Video Decode lays out a batch of
videos). Odd frame sizes are padded by one pixel for yuv420p (see media.video_io).
"""
from __future__ import annotations

import json

import torch

from ..media.sync import measure_offset
from ..media.video_io import check_fps, check_frames, write_mp4
from ..models.audio.preprocess import fit_duration
from . import comfy_adapter
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .types import AUDIO, IMAGE

CATEGORY = "AVGen/output"
SYNC_SAVE = "AVGenAudioSyncSave"


def _audio_waveform(audio) -> tuple[torch.Tensor, int]:
    """(C, N) float32 waveform and sample rate of a ComfyUI AUDIO (batch entries joined in time)."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise NodeInputError(SYNC_SAVE, "audio must be an AUDIO dict with 'waveform' (batch, channels, samples) "
                                        "and 'sample_rate'")
    waveform, rate = audio["waveform"], audio["sample_rate"]
    if not isinstance(waveform, torch.Tensor) or waveform.ndim != 3:
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise NodeInputError(SYNC_SAVE, f"audio waveform must be (batch, channels, samples), got {shape}")
    if 0 in waveform.shape:
        raise NodeInputError(SYNC_SAVE, f"audio is empty: waveform {tuple(waveform.shape)}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0 or int(rate) != rate:
        raise NodeInputError(SYNC_SAVE, f"audio sample_rate must be a positive whole number of Hz, got {rate!r}")
    joined = waveform.detach().to("cpu", torch.float32).permute(1, 0, 2).reshape(waveform.shape[1], -1)
    return joined, int(rate)


def _metadata(prompt, extra_pnginfo) -> dict[str, str]:
    tags = {"prompt": json.dumps(prompt)} if prompt is not None else {}
    for key, value in (extra_pnginfo or {}).items():
        tags[str(key)] = json.dumps(value)
    return tags


def check_values(fps=None, filename_prefix=None, crf=None) -> None:
    """Audio Sync & Save's constant inputs (None = linked): ranges and a prefix inside the output folder."""
    within_widgets(SYNC_SAVE, AVGenAudioSyncSave, fps=fps, crf=crf)
    if filename_prefix is not None:
        try:
            comfy_adapter.check_filename_prefix(filename_prefix)
        except ValueError as exc:
            raise NodeInputError(SYNC_SAVE, f"filename_prefix: {exc}") from None


class AVGenAudioSyncSave:
    DESCRIPTION = ("Saves frames + audio as an mp4 (H.264 video, AAC audio, audio fitted to exactly frames / "
                   "fps) in the output folder, measures the audio-video offset from motion and sound onsets, and "
                   "passes frames, audio and fps on (e.g. to ComfyUI's Create Video / Save Video).")
    CATEGORY = CATEGORY
    FUNCTION = "save"
    OUTPUT_NODE = True
    RETURN_TYPES = (IMAGE, AUDIO, "FLOAT", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps", "offset_ms")
    OUTPUT_TOOLTIPS = (
        "The frames, unchanged.",
        "The audio as saved: trimmed or padded to exactly frames / fps seconds, at its own sample rate.",
        "The frame rate, unchanged.",
        "Measured audio-video offset in milliseconds: positive = the audio is late; 0 when not measurable.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": (IMAGE, {"tooltip": "Video frames (frames, height, width, 3), e.g. from AVGen Video "
                                              "Decode."}),
                "audio": (AUDIO, {"tooltip": "The soundtrack, e.g. from AVGen Audio Decode."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 240.0, "step": 0.001, "tooltip":
                                  "Frame rate; link AVGen Video Decode's fps output."}),
                "filename_prefix": ("STRING", {"default": "AVGen/clip", "tooltip":
                                               "File name prefix in the output folder; may hold sub-folders "
                                               "(AVGen/clip -> output/AVGen/clip_00001_.mp4)."}),
                "crf": ("INT", {"default": 19, "min": 0, "max": 51, "tooltip":
                                "H.264 quality: lower is better and larger (0 = lossless luma, 17-23 typical)."}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, fps=None, filename_prefix=None, crf=None):
        return validation_result(check_values, fps=fps, filename_prefix=filename_prefix, crf=crf)

    def save(self, images, audio, fps, filename_prefix, crf, prompt=None, extra_pnginfo=None):
        check_values(fps, filename_prefix, crf)
        try:
            check_frames(images, "images")
            fps = check_fps(fps)
        except ValueError as exc:
            raise NodeInputError(SYNC_SAVE, str(exc)) from exc
        waveform, sample_rate = _audio_waveform(audio)
        waveform = fit_duration(waveform, sample_rate, images.shape[0] / fps)
        try:
            target = comfy_adapter.output_file(filename_prefix, "mp4")
        except ValueError as exc:
            raise NodeInputError(SYNC_SAVE, f"filename_prefix: {exc}") from exc
        comfy_adapter.check_interrupted()
        info = write_mp4(target.path, images, fps, waveform, sample_rate, crf, _metadata(prompt, extra_pnginfo))
        sync = measure_offset(images, waveform, sample_rate, fps)
        report = (f"saved {target.filename}: {info.frames} frames {info.width}x{info.height} at {fps:g} fps, "
                  f"{waveform.shape[1] / sample_rate:.3f} s of audio at {sample_rate} Hz; {sync.describe()}")
        out_audio = {"waveform": waveform.unsqueeze(0), "sample_rate": sample_rate}
        return {
            "ui": {"images": [target.ui()], "animated": [True], "text": [report]},
            "result": (images, out_audio, fps, float(sync.offset_ms)),
        }


NODE_CLASS_MAPPINGS = {"AVGenAudioSyncSave": AVGenAudioSyncSave}
NODE_DISPLAY_NAME_MAPPINGS = {"AVGenAudioSyncSave": "AVGen Audio Sync & Save"}
