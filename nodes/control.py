"""Control-video nodes for IC-LoRAs (depth, pose): turn a control signal into a control video fitted to the clip,
encode it and append it to the AV latent as an IC-LoRA reference (models.sampling.ReferenceConditioning).

The reference is encoded at the clip's size divided by the IC-LoRA's `reference_downscale_factor` and, when
its `reference_temporal_scale_factor` S is not 1, from frames 0, 1, 1 + S, 1 + 2S, ... (the VAE-aligned
subsampling of the official pipeline: frame 0 alone, then every S-th frame from frame 1): both read from the
metadata of the LoRAs on the model ("auto") or set by hand.
"""
from __future__ import annotations

import functools
import json
import logging

import numpy as np
import torch

from ..media.depth_map import CONVENTIONS, normalize_depth
from ..media.frame_prep import RESIZE_MODES, resize_frames
from ..media.pose_keypoints import (
    KEY_UNITS, key_position_values, parse_key_positions, parse_pose_keypoints, poses_for_frames,
)
from ..media.pose_render import render_pose
from ..models.lora import LoraError, combined_reference_factors
from ..models.positions import VIDEO_SCALE_FACTORS
from ..models.sampling import ReferenceConditioning
from . import comfy_adapter
from .encode import RESIZE_TOOLTIP, _check_image, _check_latent, _to_batch, _to_vae_pixels
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .types import AV_LATENT, IMAGE, MODEL, VIDEO_VAE, AVLatent, ModelHandle

log = logging.getLogger(__name__)

POSE_KEYPOINT = "POSE_KEYPOINT"
LOAD_POSE = "AVGenLoadPoseKeypoints"
NO_POSE_FILES = "(no .json files in the input folder)"
FACTORS = ("auto", "1", "2", "4")


def reference_factors(node: str, model: ModelHandle, downscale: str, temporal: str) -> tuple[int, int]:
    """(downscale factor, temporal factor): "auto" = the LoRA stack's IC-LoRA metadata (1 when none sets it)."""
    try:
        stack = combined_reference_factors(tuple(model.loras))
    except LoraError as exc:
        raise NodeInputError(node, str(exc)) from exc
    factors = []
    for value, key in ((downscale, "reference_downscale_factor"), (temporal, "reference_temporal_scale_factor")):
        factor = stack[key] if value == "auto" else int(value)
        if factor != int(factor):
            raise NodeInputError(node, f"the LoRA metadata sets {key} = {factor}; only whole factors are supported")
        factors.append(int(factor))
    return factors[0], factors[1]


def fit_frame_count(node: str, frames: torch.Tensor, needed: int, what: str) -> tuple[torch.Tensor, list[str]]:
    """(F, H, W, 3) -> exactly `needed` frames: one frame is repeated (a still control image), more are cut."""
    given = frames.shape[0]
    if given == needed:
        return frames, []
    if given == 1:
        return frames.expand(needed, *frames.shape[1:]), [f"the single {what} frame is repeated over {needed} frames"]
    if given > needed:
        return frames[:needed], [f"used the first {needed} of {given} {what} frames"]
    raise NodeInputError(node, f"{what} has {given} frames but the clip needs {needed}: give at least {needed} "
                               "frames, or a single frame (repeated)")


def encode_reference(node: str, video_vae, latent: AVLatent, control: torch.Tensor, downscale: int, temporal: int,
                     resize_mode: str, strength: float, attention_strength: float) -> tuple[AVLatent, torch.Tensor]:
    """Fit the control video (latent.pixel_frames, H, W, 3) in 0..1 to the reference grid, encode it and append
    the reference conditioning. Returns (new latent, the encoded control frames as IMAGE)."""
    if latent.keep_video:
        raise NodeInputError(node, "the latent keeps its whole video (AVGen Video Encode with keep on), so a control "
                                   "video would be ignored: turn keep off")
    side = latent.scale_factors[1]
    height, width = latent.height // downscale, latent.width // downscale
    if latent.height % downscale or latent.width % downscale or height % side or width % side:
        raise NodeInputError(node, f"the clip's {latent.width}x{latent.height} divided by the downscale factor "
                                   f"{downscale} must give multiples of {side} pixels (got "
                                   f"{latent.width / downscale:g}x{latent.height / downscale:g}): change the clip size "
                                   "or the factor")
    step = VIDEO_SCALE_FACTORS[0]
    if (latent.pixel_frames - 1) % (step * temporal):
        raise NodeInputError(node, f"with temporal factor {temporal} the clip's frame count must be "
                                   f"{step * temporal}k+1 (frame 0, then every {temporal}th frame from frame 1 must leave "
                                   f"8k+1 frames); got {latent.pixel_frames}")
    indices = [0, *range(1, latent.pixel_frames, temporal)]
    frames = resize_frames(control[indices], height, width, resize_mode)
    with torch.no_grad():
        encoded = video_vae.vae.encode(_to_vae_pixels(frames)).to("cpu", torch.float32)
    if encoded.shape[1] != latent.video.shape[1]:
        raise NodeInputError(node, f"the encoded control video has {encoded.shape[1]} channels, the clip's video "
                                   f"latent {latent.video.shape[1]}: the video VAE is not the model's")
    item = ReferenceConditioning(
        latent=_to_batch(node, "the control video", encoded, latent.video.shape[0]), strength=float(strength),
        downscale_factor=downscale, temporal_scale_factor=temporal,
        attention_strength=None if attention_strength >= 1.0 else float(attention_strength))
    return latent.replace(conditionings=(*latent.conditionings, item)), frames.permute(0, 2, 3, 1).contiguous()


def _reference_inputs() -> dict:
    return {
        "resize_mode": (list(RESIZE_MODES), {"default": "crop", "tooltip": RESIZE_TOOLTIP}),
        "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
            "1 keeps the control video clean (as IC-LoRAs are trained); lower values let the sampler change it.")}),
        "attention_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
            "How strongly the generated video attends to the control video (1 = fully, 0 = ignores it).")}),
        "downscale_factor": (list(FACTORS), {"default": "auto", "tooltip": (
            "The control video is encoded at the clip's size divided by this. auto: the IC-LoRA's "
            "reference_downscale_factor metadata (1 when no LoRA sets it).")}),
        "temporal_factor": (list(FACTORS), {"default": "auto", "tooltip": (
            "Keep control frame 0, then every n-th frame from frame 1. auto: the IC-LoRA's "
            "reference_temporal_scale_factor metadata (1 when no LoRA sets it).")}),
    }


def _common_sockets(what: str) -> dict:
    return {
        "model": (MODEL, {"tooltip": "The model with its IC-LoRA (its metadata sets the reference scale)."}),
        "video_vae": (VIDEO_VAE, {"tooltip": "Video VAE of the model."}),
        "latent": (AV_LATENT, {"tooltip": f"The clip's AV latent: the {what} is fitted to its size, frames and fps."}),
    }


def _finish(node: str, latent: AVLatent, notes: list[str], downscale: int, temporal: int, preview: torch.Tensor):
    notes.append(f"control video {preview.shape[2]}x{preview.shape[1]}, {preview.shape[0]} frames (downscale "
                 f"{downscale}, temporal factor {temporal})")
    for note in notes:
        log.info("%s: %s", node, note)
    return {"ui": {"text": notes}, "result": (latent, preview)}


class AVGenDepthEncode:
    DESCRIPTION = (
        "Depth control for a depth IC-LoRA: depth maps (one image, or a video at the clip's fps) of any range are "
        "normalised over the clip (robust 1st-99th percentiles) to a grey video with near = bright, fitted to the "
        "clip's size and frame count, encoded and attached to the latent as the IC-LoRA's reference video."
    )
    CATEGORY = "AVGen/control"
    FUNCTION = "encode"
    RETURN_TYPES = (AV_LATENT, IMAGE)
    RETURN_NAMES = ("latent", "control_video")
    OUTPUT_TOOLTIPS = ("The AV latent with the depth reference attached.",
                       "The normalised depth video as it was encoded (reference size and frames).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            **_common_sockets("depth video"),
            "depth": (IMAGE, {"tooltip": "Depth maps: one image or one per frame, any value range."}),
            "convention": (list(CONVENTIONS), {"default": "near_bright", "tooltip": (
                "How the input encodes distance: near_bright (disparity: Depth Anything, MiDaS, Lotus, ZoeDepth "
                "previews) or near_dark (metric depth / distance); the output is always near = bright.")}),
            **_reference_inputs(),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, convention=None, resize_mode=None, strength=None, attention_strength=None,
                        downscale_factor=None, temporal_factor=None):
        return validation_result(functools.partial(within_widgets, "AVGenDepthEncode", cls),
                                 convention=convention, resize_mode=resize_mode, strength=strength,
                                 attention_strength=attention_strength, downscale_factor=downscale_factor,
                                 temporal_factor=temporal_factor)

    def encode(self, model, video_vae, latent, depth, convention, resize_mode, strength, attention_strength,
               downscale_factor, temporal_factor):
        node = "AVGenDepthEncode"
        within_widgets(node, AVGenDepthEncode, convention=convention, resize_mode=resize_mode, strength=strength,
                       attention_strength=attention_strength, downscale_factor=downscale_factor,
                       temporal_factor=temporal_factor)
        latent = _check_latent(node, latent)
        if not isinstance(depth, torch.Tensor) or depth.ndim != 4 or 0 in depth.shape:
            shape = tuple(depth.shape) if isinstance(depth, torch.Tensor) else type(depth).__name__
            raise NodeInputError(node, f"depth must be an IMAGE (frames, height, width, channels), got {shape}")
        downscale, temporal = reference_factors(node, model, downscale_factor, temporal_factor)
        try:  # normalised before a single map is repeated over the clip (same statistics, less memory)
            normalised = normalize_depth(depth[: latent.pixel_frames], convention)
        except ValueError as exc:
            raise NodeInputError(node, f"depth: {exc}") from exc
        control, notes = fit_frame_count(node, normalised, latent.pixel_frames, "depth")
        if depth.shape[0] > latent.pixel_frames:
            notes = [f"used the first {latent.pixel_frames} of {depth.shape[0]} depth frames"]
        latent, preview = encode_reference(node, video_vae, latent, control, downscale, temporal, resize_mode,
                                           strength, attention_strength)
        return _finish(node, latent, notes, downscale, temporal, preview)


class AVGenPoseEncode:
    DESCRIPTION = (
        "Pose control for a pose IC-LoRA: OpenPose keypoints (POSE_KEYPOINT from a pose estimator or AVGen Load "
        "Pose Keypoints; body, hands and face with per-point confidence) are drawn as OpenPose skeletons at the "
        "clip's size, or already rendered pose images are used as they are; the pose video is fitted to the clip, "
        "encoded and attached to the latent as the IC-LoRA's reference video. Keypoints given at key positions "
        "are interpolated in between (a point missing in one key is not dragged to the corner)."
    )
    CATEGORY = "AVGen/control"
    FUNCTION = "encode"
    RETURN_TYPES = (AV_LATENT, IMAGE)
    RETURN_NAMES = ("latent", "control_video")
    OUTPUT_TOOLTIPS = ("The AV latent with the pose reference attached.",
                       "The pose video as it was encoded (reference size and frames).")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                **_common_sockets("pose video"),
                "key_positions": ("STRING", {"default": "", "tooltip": (
                    "Empty: keypoint frame i is clip frame i (the last one held). Otherwise one position per "
                    "keypoint frame, e.g. '0, 48, 120': poses in between are interpolated.")}),
                "unit": (list(KEY_UNITS), {"default": "frames", "tooltip": (
                    "Unit of key_positions: frames, seconds, or fraction of the clip (0 = first frame, 1 = last).")}),
                "body": ("BOOLEAN", {"default": True, "tooltip": "Draw the body skeleton."}),
                "hands": ("BOOLEAN", {"default": True, "tooltip": "Draw the hands."}),
                "face": ("BOOLEAN", {"default": True, "tooltip": "Draw the face points."}),
                "min_confidence": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip": (
                    "Points with a confidence at or below this are not drawn (0: every detected point).")}),
                **_reference_inputs(),
            },
            "optional": {
                "pose_keypoints": (POSE_KEYPOINT, {"tooltip": "OpenPose keypoints, one entry per frame or key."}),
                "pose_images": (IMAGE, {"tooltip": "Already rendered pose images (instead of keypoints)."}),
            },
        }

    @classmethod
    def check_values(cls, key_positions=None, unit=None, body=None, hands=None, face=None, min_confidence=None,
                     drawing: bool | None = None, **reference) -> None:
        """Pose Encode's constant inputs (None = linked; `drawing`: keypoints are drawn, None = unknown)."""
        node = "AVGenPoseEncode"
        within_widgets(node, cls, unit=unit, min_confidence=min_confidence, **reference)
        if key_positions is not None and unit is not None:
            try:
                key_position_values(key_positions, unit)
            except ValueError as exc:
                raise NodeInputError(node, f"key_positions: {exc}") from None
        if drawing and body is False and hands is False and face is False:
            raise NodeInputError(node, "body, hands and face are all off: nothing to draw")

    @classmethod
    def VALIDATE_INPUTS(cls, key_positions=None, unit=None, body=None, hands=None, face=None, min_confidence=None,
                        resize_mode=None, strength=None, attention_strength=None, downscale_factor=None,
                        temporal_factor=None, input_types=None):
        drawing = "pose_keypoints" in (input_types or {})
        return validation_result(cls.check_values, key_positions=key_positions, unit=unit, body=body, hands=hands,
                                 face=face, min_confidence=min_confidence, drawing=drawing, resize_mode=resize_mode,
                                 strength=strength, attention_strength=attention_strength,
                                 downscale_factor=downscale_factor, temporal_factor=temporal_factor)

    def encode(self, model, video_vae, latent, key_positions, unit, body, hands, face, min_confidence, resize_mode,
               strength, attention_strength, downscale_factor, temporal_factor, pose_keypoints=None,
               pose_images=None):
        node = "AVGenPoseEncode"
        self.check_values(key_positions, unit, body, hands, face, min_confidence, drawing=pose_keypoints is not None,
                          resize_mode=resize_mode, strength=strength, attention_strength=attention_strength,
                          downscale_factor=downscale_factor, temporal_factor=temporal_factor)
        latent = _check_latent(node, latent)
        if (pose_keypoints is None) == (pose_images is None):
            raise NodeInputError(node, "connect exactly one of pose_keypoints or pose_images "
                                       + ("(both are connected)" if pose_images is not None else "(neither is)"))
        downscale, temporal = reference_factors(node, model, downscale_factor, temporal_factor)
        if pose_images is not None:
            frames, notes = fit_frame_count(node, _check_image(node, "pose_images", pose_images),
                                            latent.pixel_frames, "pose image")
            control = frames.to(torch.float32)
        else:
            control, notes = self._render(node, latent, pose_keypoints, key_positions, unit, body, hands, face,
                                          min_confidence, resize_mode)
        latent, preview = encode_reference(node, video_vae, latent, control, downscale, temporal, resize_mode,
                                           strength, attention_strength)
        return _finish(node, latent, notes, downscale, temporal, preview)

    @staticmethod
    def _render(node, latent, keypoints, key_positions, unit, body, hands, face, min_confidence, resize_mode):
        try:
            keys = parse_pose_keypoints(keypoints)
            positions = parse_key_positions(key_positions, unit, latent.fps, len(keys), latent.pixel_frames)
            poses = poses_for_frames(keys, positions, latent.pixel_frames)
        except ValueError as exc:
            raise NodeInputError(node, f"pose_keypoints: {exc}") from exc
        notes = []
        if positions is None and len(keys) != latent.pixel_frames:
            notes.append(f"{len(keys)} pose frames for a clip of {latent.pixel_frames} frames: "
                         + ("the last pose is held" if len(keys) < latent.pixel_frames else "the extra ones dropped"))
        rendered = [render_pose(pose, latent.width, latent.height, resize_mode, body, hands, face, min_confidence)
                    for pose in poses]
        return torch.from_numpy(np.stack(rendered)).to(torch.float32) / 255.0, notes


class AVGenLoadPoseKeypoints:
    DESCRIPTION = (
        "Loads OpenPose keypoints from a JSON file in the input folder: one OpenPose frame ({'people': [...]}, as "
        "OpenPose and pose estimators write) or a list of frames (ComfyUI's POSE_KEYPOINT as saved by pose "
        "nodes). The file is checked when loaded; errors name the frame, person and part."
    )
    CATEGORY = "AVGen/io"
    FUNCTION = "load"
    RETURN_TYPES = (POSE_KEYPOINT,)
    RETURN_NAMES = ("pose_keypoints",)
    OUTPUT_TOOLTIPS = ("The keypoints as a list of OpenPose frames (POSE_KEYPOINT).",)

    @classmethod
    def INPUT_TYPES(cls):
        files = comfy_adapter.list_input_files({".json"}) or [NO_POSE_FILES]
        return {"required": {"keypoints": (files, {"tooltip": "OpenPose JSON file in the input folder."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, keypoints=None):
        if keypoints is None:  # linked
            return True
        try:
            _pose_file(keypoints)
        except NodeInputError as exc:
            return str(exc)
        return True

    @classmethod
    def IS_CHANGED(cls, keypoints):
        try:
            stat = _pose_file(keypoints).stat()
        except (NodeInputError, OSError):
            return str(keypoints)
        return f"{keypoints}:{stat.st_size}:{stat.st_mtime_ns}"

    def load(self, keypoints):
        path = _pose_file(keypoints)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise NodeInputError(LOAD_POSE, f"keypoints: {path.name} is not readable JSON ({exc})") from exc
        try:
            parse_pose_keypoints(data)
        except ValueError as exc:
            raise NodeInputError(LOAD_POSE, f"keypoints: {path.name}: {exc}") from exc
        return (data if isinstance(data, list) else [data],)


def _pose_file(name: str):
    if name == NO_POSE_FILES:
        raise NodeInputError(LOAD_POSE, f"no file selected: put an OpenPose .json file in "
                                        f"{comfy_adapter.input_directory()} and choose it")
    try:
        return comfy_adapter.input_file_path(name)
    except FileNotFoundError as exc:
        raise NodeInputError(LOAD_POSE, f"keypoints: {exc}") from exc


NODE_CLASS_MAPPINGS = {
    "AVGenDepthEncode": AVGenDepthEncode,
    "AVGenPoseEncode": AVGenPoseEncode,
    "AVGenLoadPoseKeypoints": AVGenLoadPoseKeypoints,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AVGenDepthEncode": "AVGen Depth Encode",
    "AVGenPoseEncode": "AVGen Pose Encode",
    "AVGenLoadPoseKeypoints": "AVGen Load Pose Keypoints",
}
