"""Shot node: one shot of a multi-shot timeline (prompt, duration, optional keyframe image and camera path, and
how it leads into the next shot), chained into a shot list that AVGen Long Video generates in order."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..models.camera_path import CameraPath
from ..models.timeline import TRANSITIONS
from .encode import _check_image
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .types import CAMERA_PATH, IMAGE

log = logging.getLogger(__name__)

NODE = "AVGenShot"
SHOT_LIST = "AVGEN_SHOT_LIST"  # nodes.shots.ShotList
MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class Shot:
    """One shot: `prompt` ("" = the long video's own prompt), `seconds`, `transition` into the next shot (smooth /
    cut), an optional `keyframe` (1, H, W, 3) in 0..1 and `camera_path` (stretched over the shot)."""

    prompt: str
    seconds: float
    transition: str
    keyframe: torch.Tensor | None = None
    camera_path: CameraPath | None = None


@dataclass(frozen=True)
class ShotList:
    """AVGEN_SHOT_LIST: the shots of a timeline in order."""

    shots: tuple[Shot, ...]

    @property
    def seconds(self) -> float:
        return sum(shot.seconds for shot in self.shots)


def check_values(prompt=None, seconds=None, transition=None) -> None:
    """The constant inputs' checks (None = linked): widget ranges and choices (how many frames a shot needs
    depends on the long video's fps, which AVGen Long Video checks)."""
    within_widgets(NODE, AVGenShot, seconds=seconds, transition=transition)
    if prompt is not None and not isinstance(prompt, str):
        raise NodeInputError(NODE, f"prompt must be text, got {type(prompt).__name__}")


class AVGenShot:
    DESCRIPTION = (
        "One shot of a multi-shot timeline: what happens (prompt), for how long, optionally the picture it starts "
        "from and a camera move, and how it leads into the next shot: smooth (the next shot continues from this "
        "one's last frames with its own prompt) or cut (the next shot starts afresh). Chain shots through "
        "`shots` and connect the last one to AVGen Long Video."
    )
    CATEGORY = "AVGen/timeline"
    FUNCTION = "add_shot"
    RETURN_TYPES = (SHOT_LIST,)
    RETURN_NAMES = ("shots",)
    OUTPUT_TOOLTIPS = ("The shots so far with this one appended (to the next AVGen Shot or AVGen Long Video).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "prompt": ("STRING", {"default": "", "multiline": True, "dynamicPrompts": True, "tooltip": (
                    "What to see and hear in this shot. Empty: the long video's own prompt (its conditioning).")}),
                "seconds": ("FLOAT", {"default": 4.0, "min": 0.1, "max": MAX_SECONDS, "step": 0.1, "tooltip": (
                    "Length of the shot (rounded to whole frames; at least one latent frame, 8 frames).")}),
                "transition": (list(TRANSITIONS), {"default": "smooth", "tooltip": (
                    "Into the next shot: smooth (the next shot starts from this one's last overlap frames, so the "
                    "picture flows on with the new prompt) or cut (the next shot starts afresh: a hard cut). "
                    "Unused on the last shot.")}),
            },
            "optional": {
                "shots": (SHOT_LIST, {"tooltip": "The shots before this one (another AVGen Shot); none: this is the "
                                                 "first."}),
                "keyframe": (IMAGE, {"tooltip": (
                    "A picture for the shot: its first frame when the shot starts afresh (the first shot or after a "
                    "cut); after a smooth transition, the frame the transition arrives at (the end of the shot's "
                    "first chunk).")}),
                "camera_path": (CAMERA_PATH, {"tooltip": (
                    "A camera move for the shot (AVGen Camera Path), stretched over its length; each chunk "
                    "re-renders the picture it starts from along it as a camera guide (a shot that starts afresh "
                    "needs a keyframe for its first chunk to be guided).")}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, prompt=None, seconds=None, transition=None):
        return validation_result(check_values, prompt=prompt, seconds=seconds, transition=transition)

    def add_shot(self, prompt: str, seconds: float, transition: str, shots: ShotList | None = None, keyframe=None,
                 camera_path: CameraPath | None = None):
        check_values(prompt, seconds, transition)
        if shots is not None and not isinstance(shots, ShotList):
            raise NodeInputError(NODE, f"shots must come from another AVGen Shot, got {type(shots).__name__}")
        if camera_path is not None and not isinstance(camera_path, CameraPath):
            raise NodeInputError(NODE, f"camera_path must come from AVGen Camera Path, got "
                                       f"{type(camera_path).__name__}")
        if keyframe is not None:
            keyframe = _check_image(NODE, "keyframe", keyframe)
            if keyframe.shape[0] != 1:
                raise NodeInputError(NODE, f"keyframe holds a batch of {keyframe.shape[0]} images, one is expected: "
                                           "select one first")
            keyframe = keyframe.float().cpu()
        before = shots.shots if shots is not None else ()
        shot = Shot(prompt.strip(), float(seconds), transition, keyframe, camera_path)
        result = ShotList((*before, shot))
        note = (f"shot {len(result.shots)}: {seconds:g} s" + (", keyframe" if keyframe is not None else "")
                + (f", camera {camera_path.label}" if camera_path is not None else "")
                + f"; timeline {result.seconds:g} s")
        log.info("%s: %s", NODE, note)
        return {"ui": {"text": [note]}, "result": (result,)}


NODE_CLASS_MAPPINGS = {NODE: AVGenShot}
NODE_DISPLAY_NAME_MAPPINGS = {NODE: "AVGen Shot"}
