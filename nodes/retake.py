"""Retake node: regenerate a time span of an existing clip (video, audio or both) while the rest stays exactly as
it was, as the official Retake pipeline does (a temporal region mask: tokens outside the span keep their clean
values at every step), with an optional soft edge inside the span."""
from __future__ import annotations

import logging

from ..models.sampling import TemporalRegionMask
from .encode import _check_latent
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .types import AV_LATENT, AVLatent

log = logging.getLogger(__name__)

NODE = "AVGenRetake"
UNITS = ("seconds", "frames")
STREAMS = ("video and audio", "video", "audio")
MAX_TIME = 100000.0


def check_values(start=None, end=None, unit=None, regenerate=None, soft_edge=None) -> None:
    """The constant inputs' checks (None = linked); where the span lands in the clip is checked at run time."""
    within_widgets(NODE, AVGenRetake, start=start, end=end, unit=unit, regenerate=regenerate, soft_edge=soft_edge)
    if start is not None and end is not None and not end > start:
        raise NodeInputError(NODE, f"end {end:g} must be after start {start:g}")
    if unit == "frames" and any(v is not None and v != int(v) for v in (start, end)):
        raise NodeInputError(NODE, f"start {start:g} and end {end:g} must be whole frame numbers (unit frames)")


def span_seconds(latent: AVLatent, start: float, end: float, unit: str) -> tuple[float, float]:
    """[start, end) in seconds, checked against the clip (frames: end is exclusive, frame f starts at f / fps)."""
    length = latent.pixel_frames if unit == "frames" else latent.seconds
    if end > length + 1e-9:
        shown = f"{latent.pixel_frames} frames (0..{latent.pixel_frames - 1})" if unit == "frames" else \
            f"{latent.seconds:.3f} s"
        raise NodeInputError(NODE, f"the span [{start:g}, {end:g}) {unit} runs past the clip's end: it has {shown}")
    if unit == "frames":
        return start / latent.fps, end / latent.fps
    return start, end


class AVGenRetake:
    DESCRIPTION = (
        "Regenerates a time span of an existing clip: the video, the audio or both inside [start, end) are made "
        "anew by the next AVGen DiT Sampler (denoise 1: from noise; lower: reworked), everything outside stays "
        "exactly as it was (the official Retake pipeline's region mask). soft_edge ramps the change in over the "
        "span's first and last seconds. Use the prompt of the new content."
    )
    CATEGORY = "AVGen/conditioning"
    FUNCTION = "retake"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The clip's AV latent with the span to regenerate marked; sample it.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": (AV_LATENT, {"tooltip": "The clip: a sampler's output, or a video and its audio encoded "
                                                  "with AVGen Video Encode and AVGen Audio Encode (keep off)."}),
                "start": ("FLOAT", {"default": 1.0, "min": 0.0, "max": MAX_TIME, "step": 0.1,
                                    "tooltip": "Start of the span to regenerate, in the chosen unit."}),
                "end": ("FLOAT", {"default": 2.0, "min": 0.0, "max": MAX_TIME, "step": 0.1,
                                  "tooltip": "End of the span (exclusive), in the chosen unit."}),
                "unit": (list(UNITS), {"default": "seconds", "tooltip": "seconds, or frame numbers (0 = first)."}),
                "regenerate": (list(STREAMS), {"default": "video and audio", "tooltip": (
                    "What is made anew inside the span; the other stream is kept exactly over the whole clip.")}),
                "soft_edge": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 60.0, "step": 0.05, "tooltip": (
                    "Seconds at each end of the span over which the change ramps in (0 = a hard cut at the span's "
                    "edges). Outside the span nothing changes either way.")}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, start=None, end=None, unit=None, regenerate=None, soft_edge=None):
        return validation_result(check_values, start=start, end=end, unit=unit, regenerate=regenerate,
                                 soft_edge=soft_edge)

    def retake(self, latent: AVLatent, start: float, end: float, unit: str, regenerate: str, soft_edge: float):
        check_values(start, end, unit, regenerate, soft_edge)
        latent = _check_latent(NODE, latent)
        video, audio = regenerate != "audio", regenerate != "video"
        for name, wanted, has, keep in (("video", video, latent.has_video, latent.keep_video),
                                        ("audio", audio, latent.has_audio, latent.keep_audio)):
            if wanted and keep:
                raise NodeInputError(NODE, f"the latent keeps its {name} exactly (an encode node with keep on), so "
                                           f"it cannot be regenerated: turn keep off or regenerate the other stream")
            if not has and not keep:
                raise NodeInputError(NODE, f"the latent's {name} is empty: retake changes an existing clip (a "
                                           "sampler's output, or encoded video and audio)")
        first, last = span_seconds(latent, float(start), float(end), unit)
        mask = TemporalRegionMask(first, last, float(soft_edge))
        result = latent.replace(
            conditionings=(*latent.conditionings, mask) if video else latent.conditionings,
            audio_conditionings=(*latent.audio_conditionings, mask) if audio else latent.audio_conditionings,
            keep_video=latent.keep_video or not video, keep_audio=latent.keep_audio or not audio)
        note = (f"regenerating the {regenerate} in [{first:.3f}, {last:.3f}) s of {latent.seconds:.3f} s"
                + (f", soft edge {soft_edge:g} s" if soft_edge else "")
                + ("" if video and audio else f"; the {'audio' if video else 'video'} is kept"))
        log.info("%s: %s", NODE, note)
        return {"ui": {"text": [note]}, "result": (result,)}


NODE_CLASS_MAPPINGS = {NODE: AVGenRetake}
NODE_DISPLAY_NAME_MAPPINGS = {NODE: "AVGen Retake"}
