"""LTX-2.5 duration head nodes: load the head (model_patches/), predict a clip length from the encoded prompt.

The prediction feeds AVGen Empty AV Latent's `frames` input (link the INT output to it), as the official pipelines'
automatic duration does: seconds from the text connectors' outputs, snapped to the 8k + 1 frame grid within
[min_seconds, max_seconds].
"""
from __future__ import annotations

import torch

from ..models.checkpoint import CheckpointError, CheckpointFile
from ..models.duration_head import (
    DurationError, DurationHead, is_on_frame_grid, load_duration_head, seconds_to_num_frames,
)
from . import comfy_adapter, model_cache
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .loaders import DEVICES, DURATION_HEAD_LOADER, resolve_device
from .model_files import missing_file_advice
from .types import CONDITIONING, DURATION_HEAD, Conditioning

FOLDER = "model_patches"
PREDICT = "AVGenPredictDuration"
NO_HEADS = f"(no files in {FOLDER}/)"


def _head_path(name: str):
    if name == NO_HEADS:
        raise NodeInputError(DURATION_HEAD_LOADER, f"duration_head: no files in {FOLDER}/; put "
                                                   "ltx-2.5-duration-head-bf16.safetensors there")
    try:
        return comfy_adapter.model_path(FOLDER, name)
    except comfy_adapter.ModelNotFoundError as exc:
        advice = missing_file_advice(name, FOLDER)
        raise NodeInputError(DURATION_HEAD_LOADER, f"duration_head: {exc}" + (f"; {advice}" if advice else "")) \
            from exc


def check_loader_inputs(duration_head=None, device=None) -> None:
    """The file exists in model_patches/ (else where to get it) and the device exists (None = linked)."""
    if device is not None:
        resolve_device(DURATION_HEAD_LOADER, device)
    if duration_head is not None:
        _head_path(duration_head)


class AVGenDurationHeadLoader:
    DESCRIPTION = ("Loads the LTX-2.5 duration head (a small model, model_patches/): it predicts how long a clip "
                   "should be from its prompt.")
    CATEGORY = "AVGen/loaders"
    FUNCTION = "load"
    RETURN_TYPES = (DURATION_HEAD,)
    RETURN_NAMES = ("duration_head",)
    OUTPUT_TOOLTIPS = ("The duration head, for AVGen Predict Duration.",)

    @classmethod
    def INPUT_TYPES(cls):
        names = comfy_adapter.list_models(FOLDER) or [NO_HEADS]
        return {"required": {
            "duration_head": (names, {"tooltip": "The LTX-2.5 duration head file in model_patches/ "
                                                 "(ltx-2.5-duration-head-bf16.safetensors)."}),
            "device": (DEVICES, {"tooltip": "Where the head runs (it is small: cpu is fine)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, duration_head=None, device=None):
        return validation_result(check_loader_inputs, duration_head=duration_head, device=device)

    def load(self, duration_head, device):
        device = resolve_device(DURATION_HEAD_LOADER, device)
        path = _head_path(duration_head)

        def load():
            try:
                return load_duration_head(CheckpointFile(path), torch.float32, device)
            except (CheckpointError, DurationError, OSError) as exc:
                raise NodeInputError(DURATION_HEAD_LOADER, f"duration_head {duration_head!r}: {exc}") from exc

        return (model_cache.get_or_load(model_cache.file_key(path, part="duration_head", device=device), load),)


def check_predict_values(fps=None, min_seconds=None, max_seconds=None) -> None:
    """Widget ranges and a [min_seconds, max_seconds] range that holds an 8k + 1 frame count (None = linked)."""
    within_widgets(PREDICT, AVGenPredictDuration, fps=fps, min_seconds=min_seconds, max_seconds=max_seconds)
    if None not in (fps, min_seconds, max_seconds):
        try:
            lowest = seconds_to_num_frames(min_seconds, fps, min_seconds, max_seconds)
        except DurationError as exc:
            raise NodeInputError(PREDICT, str(exc)) from exc
        if not is_on_frame_grid(lowest):
            raise NodeInputError(PREDICT, f"no frame count 8k + 1 lies in {min_seconds}-{max_seconds} s at {fps:g} "
                                          "fps: widen the range")


def _contexts(head: DurationHead, conditioning: Conditioning) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompt's video and audio contexts on the head's device, checked against its widths."""
    config = head.config
    video, audio = conditioning.video, conditioning.audio
    for name, tensor, width in (("video", video, config.video_context_dim), ("audio", audio, config.audio_context_dim)):
        if tensor.ndim != 3 or tensor.shape[-1] != width:
            raise NodeInputError(PREDICT, f"conditioning: the {name} context is {tuple(tensor.shape)} but the "
                                          f"duration head expects width {width}; encode the prompt with the "
                                          "LTX-2.5 model the duration head was released with")
    if video.shape[0] != 1:
        raise NodeInputError(PREDICT, f"conditioning holds {video.shape[0]} prompts; the duration is predicted "
                                      "for one prompt")
    parameter = next(head.parameters())
    return video.to(parameter.device, parameter.dtype), audio.to(parameter.device, parameter.dtype)


class AVGenPredictDuration:
    DESCRIPTION = ("Predicts the clip length for a prompt with the LTX-2.5 duration head and gives it as a frame "
                   "count (8k + 1) for AVGen Empty AV Latent's frames input, and in seconds.")
    CATEGORY = "AVGen/latent"
    FUNCTION = "predict"
    RETURN_TYPES = ("INT", "FLOAT")
    RETURN_NAMES = ("frames", "seconds")
    OUTPUT_TOOLTIPS = (
        "Frame count on the 8k + 1 grid within [min_seconds, max_seconds] at fps: link it to Empty AV Latent's "
        "frames input (keep its seconds at 0).",
        "The predicted length in seconds, before snapping to frames.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "duration_head": (DURATION_HEAD, {"tooltip": "The LTX-2.5 duration head (AVGen Duration Head Loader)."}),
            "conditioning": (CONDITIONING, {"tooltip": "The encoded prompt (AVGen Text Encode with an LTX-2.5 "
                                                       "model); the negative prompt is not used."}),
            "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 240.0, "step": 0.01,
                              "tooltip": "Frame rate of the clip (use the same value in Empty AV Latent)."}),
            "min_seconds": ("FLOAT", {"default": 1.0, "min": 0.05, "max": 600.0, "step": 0.05,
                                      "tooltip": "Shortest clip allowed (official default 1 s)."}),
            "max_seconds": ("FLOAT", {"default": 20.0, "min": 0.05, "max": 600.0, "step": 0.05,
                                      "tooltip": "Longest clip allowed (official default 20 s)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, fps=None, min_seconds=None, max_seconds=None):
        return validation_result(check_predict_values, fps=fps, min_seconds=min_seconds, max_seconds=max_seconds)

    def predict(self, duration_head, conditioning, fps, min_seconds, max_seconds):
        if not isinstance(duration_head, DurationHead):
            raise NodeInputError(PREDICT, f"duration_head must come from {DURATION_HEAD_LOADER}, got "
                                          f"{type(duration_head).__name__}")
        if not isinstance(conditioning, Conditioning):
            raise NodeInputError(PREDICT, f"conditioning must come from AVGen Text Encode, got "
                                          f"{type(conditioning).__name__}")
        check_predict_values(fps, min_seconds, max_seconds)
        video, audio = _contexts(duration_head, conditioning)
        with torch.no_grad():
            seconds = float(duration_head.predict_seconds(video, audio)[0])
        try:
            frames = seconds_to_num_frames(seconds, fps, min_seconds, max_seconds)
        except DurationError as exc:
            raise NodeInputError(PREDICT, str(exc)) from exc
        return {"ui": {"text": [f"{seconds:.2f} s predicted -> {frames} frames at {fps:g} fps"]},
                "result": (frames, seconds)}


NODE_CLASS_MAPPINGS = {
    "AVGenDurationHeadLoader": AVGenDurationHeadLoader,
    "AVGenPredictDuration": AVGenPredictDuration,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AVGenDurationHeadLoader": "AVGen Duration Head Loader",
    "AVGenPredictDuration": "AVGen Predict Duration",
}
