"""LoRA Loader node: puts a LoRA on the model's stack without touching the loaded DiT.

The node returns a new model handle whose `loras` tuple has one more `models.lora.LoraSpec`; the sampler applies
the stack in the forward pass while it runs and removes it exactly afterwards. Chaining nodes stacks LoRAs;
changing a strength or swapping a file re-runs only this cheap node (it reads the file's header) and the
sampler, never the model load.
"""
from __future__ import annotations

import logging
import os

from ..models.lora import LoraError, check_lora, combined_reference_factors, lora_spec
from . import comfy_adapter
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .model_files import missing_file_advice
from .types import MODEL, ModelHandle

log = logging.getLogger(__name__)

NODE = "AVGenLoraLoader"
NO_LORAS = "(no files in loras/)"
MAX_STRENGTH = 10.0


def _lora_names() -> list[str]:
    return comfy_adapter.list_models("loras") or [NO_LORAS]


def _lora_path(name: str):
    if name == NO_LORAS:
        raise NodeInputError(NODE, "lora_name: no LoRA files found; put LTX-2 / LTX-2.3 LoRAs (.safetensors) in "
                                   "models/loras/")
    try:
        return comfy_adapter.model_path("loras", name)
    except comfy_adapter.ModelNotFoundError as exc:
        advice = missing_file_advice(name, "loras")
        raise NodeInputError(NODE, f"lora_name: {exc}" + (f"; {advice}" if advice else "")) from exc


def _strength(tooltip: str):
    return ("FLOAT", {"default": 1.0, "min": -MAX_STRENGTH, "max": MAX_STRENGTH, "step": 0.01, "tooltip": tooltip})


class AVGenLoraLoader:
    DESCRIPTION = (
        "Adds a LoRA to the model. The loaded DiT is never changed: the LoRA is added in the forward pass while "
        "the sampler runs and removed exactly afterwards, so chains of LoRA nodes stack, and changing a strength "
        "or swapping a LoRA never reloads the model. Reads official LTX-2 LoRAs, ComfyUI / kohya files (with "
        "alpha) and diffusers / PEFT files. Separate strengths for the video and the audio stream; IC-LoRA "
        "reference factors travel with the model to the conditioning nodes."
    )
    CATEGORY = "AVGen/loaders"
    FUNCTION = "load"
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The same DiT with this LoRA on top of its LoRA stack (applied while sampling).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The DiT (from the checkpoint loader or another LoRA node)."}),
                "lora_name": (_lora_names(), {"tooltip": "LoRA file in loras/ made for this model family."}),
                "video_strength": _strength("Strength on the video stream's layers (0 = off, 1 = as trained; "
                                            "negative values invert)."),
                "audio_strength": _strength("Strength on the audio stream's layers (audio attention / feed-forward "
                                            "and video-to-audio attention)."),
            }
        }

    @classmethod
    def IS_CHANGED(cls, lora_name, **_):
        try:
            stat = os.stat(_lora_path(lora_name))
        except (NodeInputError, OSError):
            return lora_name
        return f"{lora_name}:{stat.st_size}:{stat.st_mtime_ns}"

    @classmethod
    def check_values(cls, video_strength=None, audio_strength=None, lora_name=None) -> None:
        """The strengths' range and the file's presence (None = linked)."""
        within_widgets(NODE, cls, video_strength=video_strength, audio_strength=audio_strength)
        if lora_name is not None:
            _lora_path(lora_name)

    @classmethod
    def VALIDATE_INPUTS(cls, lora_name=None, video_strength=None, audio_strength=None):
        return validation_result(cls.check_values, video_strength=video_strength, audio_strength=audio_strength,
                                 lora_name=lora_name)

    def load(self, model: ModelHandle, lora_name: str, video_strength: float, audio_strength: float):
        self.check_values(video_strength, audio_strength)
        path = _lora_path(lora_name)
        try:
            match = check_lora(path, model.transformer, model.family)
            spec = lora_spec(match, video_strength, audio_strength)
            factors = combined_reference_factors(model.loras + (spec,))
        except LoraError as exc:
            raise NodeInputError(NODE, f"lora_name {lora_name!r}: {exc}") from exc
        notes = [(f"{match.summary()}; strengths video {video_strength:g}, audio {audio_strength:g}; stack of "
                  f"{len(model.loras) + 1}")]
        warning = match.warning()
        if warning:
            log.warning("%s: %s", NODE, warning)
            notes.append(f"warning: {warning}")
        if spec.reference:
            notes.append("IC-LoRA: " + ", ".join(f"{k} {v}" for k, v in factors.items()))
        for note in notes:
            log.info("%s: %s", NODE, note)
        return {"ui": {"text": notes}, "result": (model.with_loras(model.loras + (spec,)),)}


NODE_CLASS_MAPPINGS = {"AVGenLoraLoader": AVGenLoraLoader}
NODE_DISPLAY_NAME_MAPPINGS = {"AVGenLoraLoader": "AVGen LoRA Loader"}
