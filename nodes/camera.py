"""Camera control nodes: a 3D camera path (preset move or keyframed poses) and a camera guide that re-renders a
reference image along it and attaches the result to the AV latent as guide tokens (training-free camera
control for any checkpoint). Conventions and interpolation: models/camera_path.py; rendering:
models/camera_guide.py.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from PIL import Image

from ..media.camera_preview import render_preview
from ..media.frame_prep import RESIZE_MODES, resize_frames
from ..models.camera_guide import (
    ValidGuideTokens,
    fill_holes,
    latent_validity,
    plane_depth,
    render_guide,
)
from ..models.camera_path import (
    EASINGS,
    PRESETS,
    CameraPath,
    keyframe_path,
    parse_keyframes,
    preset_path,
)
from ..models.sampling import KeyframeConditioning
from . import comfy_adapter
from .encode import _check_image, _check_latent, _to_batch, _to_vae_pixels
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .latent import MAX_FRAMES, check_frames
from .types import AV_LATENT, CAMERA_PATH, IMAGE, MASK, VIDEO_VAE, AVLatent

log = logging.getLogger(__name__)

PATH_NODE, GUIDE_NODE = "AVGenCameraPath", "AVGenCameraGuide"
KEYFRAMES = "keyframes"
# Released LTX-2 19B camera-control LoRAs (Hugging Face Lightricks/LTX-2-19b-LoRA-Camera-Control-<Move>, one
# file each); Lightricks calls a sideways move "dolly left/right" and a vertical one "jib up/down".
CAMERA_LORAS = {
    "static": "ltx-2-19b-lora-camera-control-static.safetensors",
    "dolly_in": "ltx-2-19b-lora-camera-control-dolly-in.safetensors",
    "dolly_out": "ltx-2-19b-lora-camera-control-dolly-out.safetensors",
    "truck_left": "ltx-2-19b-lora-camera-control-dolly-left.safetensors",
    "truck_right": "ltx-2-19b-lora-camera-control-dolly-right.safetensors",
    "pedestal_up": "ltx-2-19b-lora-camera-control-jib-up.safetensors",
    "pedestal_down": "ltx-2-19b-lora-camera-control-jib-down.safetensors",
    "crane_up": "ltx-2-19b-lora-camera-control-jib-up.safetensors",
    "crane_down": "ltx-2-19b-lora-camera-control-jib-down.safetensors",
}
DEPTH_KINDS = ("disparity (bright = near)", "depth (bright = far)")
KEEP_TOKEN_COVERAGE = 0.5  # guide tokens whose latent cell is less valid than this are dropped


def _preset_tooltip() -> str:
    return ("Camera move over the whole clip: dolly (forward/back), truck (sideways), pedestal (straight up/down) "
            "move by `distance`; pan, tilt, orbit (circle the subject sideways) and crane (circle it vertically) "
            "turn by `angle`; zoom changes the focal length by `zoom`. 'keyframes' uses the keyframes text.")


def check_path_values(preset=None, keyframes=None, fov=None, **widgets) -> None:
    """Camera Path's constant inputs (None = linked): widget ranges and choices, and a keyframes text that parses
    and goes with preset 'keyframes' only."""
    within_widgets(PATH_NODE, AVGenCameraPath, preset=preset, fov=fov, **widgets)
    if preset is None or keyframes is None:
        return
    if preset != KEYFRAMES and keyframes.strip():
        raise NodeInputError(PATH_NODE, f"keyframes are given but preset is {preset!r}: choose the preset "
                                        f"'{KEYFRAMES}' to use them, or clear the keyframes text")
    if preset == KEYFRAMES:
        if not keyframes.strip():
            raise NodeInputError(PATH_NODE, "preset 'keyframes' needs keyframes: a JSON list like "
                                            "[{\"time\": 0}, {\"time\": 4, \"yaw\": 20}]")
        try:
            parse_keyframes(keyframes, 60.0 if fov is None else fov)
        except ValueError as exc:
            problem = str(exc)
            raise NodeInputError(PATH_NODE, problem if problem.startswith(KEYFRAMES) else f"keyframes: {problem}") \
                from None


class AVGenCameraPath:
    DESCRIPTION = (
        "A 3D camera path, one pinhole camera per frame: a preset move (static, dolly, truck, pedestal, pan, tilt, "
        "orbit, crane, zoom) or keyframed poses (position, yaw / pitch / roll, field of view or focal length at "
        "times in seconds) smoothly interpolated. Axes as OpenCV: x right, y down, z forward, in scene units (those "
        "of the camera guide's depth / plane distance). Shows top and side views of the trajectory with frustums "
        "and names the released LTX-2 19B camera LoRA for the preset, where one exists."
    )
    CATEGORY = "AVGen/camera"
    FUNCTION = "make"
    RETURN_TYPES = (CAMERA_PATH, IMAGE, "STRING")
    RETURN_NAMES = ("camera_path", "preview", "camera_lora")
    OUTPUT_TOOLTIPS = (
        "The per-frame cameras (for AVGen Camera Guide).",
        "Top and side views of the trajectory with camera frustums (blue = first frame, red = last).",
        ("File name of the released LTX-2 19B camera-control LoRA for this preset (Lightricks/LTX-2-19b-LoRA-Camera-"
         "Control-*; static, dolly in/out, truck = 'dolly left/right', pedestal/crane = 'jib up/down'); empty when "
         "there is none (pan, tilt, orbit, zoom, keyframes). Nothing is downloaded."),
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "preset": ([*PRESETS, KEYFRAMES], {"default": "dolly_in", "tooltip": _preset_tooltip()}),
                "distance": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1000.0, "step": 0.05,
                                       "tooltip": "Dolly / truck / pedestal travel in scene units (the plane "
                                                  "distance or depth unit of the camera guide)."}),
                "angle": ("FLOAT", {"default": 15.0, "min": 0.0, "max": 720.0, "step": 0.5,
                                    "tooltip": "Pan / tilt / orbit / crane turn in degrees."}),
                "zoom": ("FLOAT", {"default": 1.5, "min": 1.0, "max": 20.0, "step": 0.05,
                                   "tooltip": "Zoom: focal length factor at the end (zoom_in multiplies, zoom_out "
                                              "divides)."}),
                "pivot_distance": ("FLOAT", {"default": 2.0, "min": 0.01, "max": 10000.0, "step": 0.05,
                                             "tooltip": "Orbit / crane: distance of the point the camera circles "
                                                        "(keep it equal to the guide's plane distance)."}),
                "fov": ("FLOAT", {"default": 60.0, "min": 1.0, "max": 179.0, "step": 0.5,
                                  "tooltip": "Horizontal field of view in degrees at the start (keyframes without "
                                             "fov / focal_length keep the previous value)."}),
                "easing": (list(EASINGS), {"default": "smooth",
                                           "tooltip": "smooth: the camera starts and stops at rest; linear: constant "
                                                      "speed from the first frame to the last."}),
                "frames": ("INT", {"default": 121, "min": 1, "max": MAX_FRAMES,
                                   "tooltip": "Frame count of the clip; ignored when a latent is connected."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 240.0, "step": 0.01,
                                  "tooltip": "Frames per second; ignored when a latent is connected."}),
                "keyframes": ("STRING", {"default": "", "multiline": True,
                                         "tooltip": "For preset 'keyframes': a JSON list like [{\"time\": 0}, "
                                                    "{\"time\": 5, \"position\": [0.3, 0, 0.5], \"yaw\": -10, "
                                                    "\"pitch\": 0, \"roll\": 0, \"fov\": 50}]; time in seconds is "
                                                    "required, other fields keep the previous key's value; "
                                                    "focal_length (mm, full frame) may replace fov."}),
            },
            "optional": {
                "latent": (AV_LATENT, {"tooltip": "Take frames and fps from this AV latent (the clip the guide "
                                                  "will condition)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, preset=None, distance=None, angle=None, zoom=None, pivot_distance=None, fov=None,
                        easing=None, frames=None, fps=None, keyframes=None):
        return validation_result(check_path_values, preset=preset, keyframes=keyframes, fov=fov, distance=distance,
                                 angle=angle, zoom=zoom, pivot_distance=pivot_distance, easing=easing, frames=frames,
                                 fps=fps)

    def make(self, preset: str, distance: float, angle: float, zoom: float, pivot_distance: float, fov: float,
             easing: str, frames: int, fps: float, keyframes: str, latent: AVLatent | None = None):
        check_path_values(preset, keyframes, fov, distance=distance, angle=angle, zoom=zoom,
                          pivot_distance=pivot_distance, easing=easing, frames=frames, fps=fps)
        aspect = 1.5
        if latent is not None:
            latent = _check_latent(PATH_NODE, latent)
            frames, fps, aspect = latent.pixel_frames, latent.fps, latent.width / latent.height
        try:
            if preset == KEYFRAMES:
                path = keyframe_path(parse_keyframes(keyframes, fov), frames, fps, easing)
            else:
                path = preset_path(preset, frames, fps, fov=fov, distance=distance, angle=angle, zoom=zoom,
                                   pivot_distance=pivot_distance, easing=easing)
        except ValueError as exc:
            raise NodeInputError(PATH_NODE, str(exc)) from None
        target = (0.0, 0.0, pivot_distance) if preset != KEYFRAMES else None
        preview = render_preview(path, aspect, target)
        lora = CAMERA_LORAS.get(preset, "")
        notes = [f"{path.label}: {path.frames} frames at {path.fps:g} fps; camera LoRA: {lora or 'none released'}"]
        log.info("%s: %s", PATH_NODE, notes[0])
        image = torch.from_numpy(preview.astype(np.float32) / 255.0).unsqueeze(0)
        return {"ui": {"text": notes, "images": [_save_preview(preview)]}, "result": (path, image, lora)}


def _save_preview(picture: np.ndarray) -> dict:
    target = comfy_adapter.output_file("avgen_camera_path", "png", temp=True)
    Image.fromarray(picture).save(target.path, compress_level=1)
    return target.ui()


def _single(node: str, name: str, tensor: torch.Tensor) -> torch.Tensor:
    if tensor.shape[0] != 1:
        raise NodeInputError(node, f"{name} holds a batch of {tensor.shape[0]}, one is expected: select one first")
    return tensor[0]


def _depth_values(depth, depth_mask, image_hw: tuple[int, int]) -> torch.Tensor | None:
    """The given depth map as (H, W) values in 0..1 (IMAGE: mean of RGB; MASK as is), or None."""
    if depth is not None and depth_mask is not None:
        raise NodeInputError(GUIDE_NODE, "connect either depth (IMAGE) or depth_mask (MASK), not both")
    if depth is not None:
        values = _single(GUIDE_NODE, "depth", _check_image(GUIDE_NODE, "depth", depth)).mean(-1)
    elif depth_mask is not None:
        if not isinstance(depth_mask, torch.Tensor) or depth_mask.ndim != 3 or 0 in depth_mask.shape:
            shape = tuple(depth_mask.shape) if isinstance(depth_mask, torch.Tensor) else type(depth_mask).__name__
            raise NodeInputError(GUIDE_NODE, f"depth_mask must be a MASK (batch, height, width), got {shape}")
        values = _single(GUIDE_NODE, "depth_mask", depth_mask)
    else:
        return None
    (h, w), (ih, iw) = values.shape, image_hw
    if abs(w / h - iw / ih) > 0.02 * iw / ih:
        raise NodeInputError(GUIDE_NODE, f"the depth map is {w}x{h} but the image {iw}x{ih}: they must show the "
                                         "same view (same aspect ratio)")
    return values.to(torch.float32).clamp(0.0, 1.0)


def _scene_depth(values: torch.Tensor, kind: str, near: float, far: float) -> torch.Tensor:
    """0..1 map -> z-depth in scene units between near and far."""
    if kind == DEPTH_KINDS[0]:
        return 1.0 / (1.0 / far + values * (1.0 / near - 1.0 / far))
    return near + values * (far - near)


def _resized(frame: torch.Tensor, latent: AVLatent, mode: str) -> torch.Tensor:
    """(H, W, 3) -> (latent.height, latent.width, 3)."""
    return resize_frames(frame.unsqueeze(0), latent.height, latent.width, mode)[0].permute(1, 2, 0)


def check_guide_values(resize_mode=None, depth_kind=None, depth_near=None, depth_far=None, **widgets) -> None:
    """Camera Guide's constant inputs (None = linked): widget ranges and choices, 0 < near < far."""
    within_widgets(GUIDE_NODE, AVGenCameraGuide, resize_mode=resize_mode, depth_kind=depth_kind,
                   depth_near=depth_near, depth_far=depth_far, **widgets)
    if depth_near is not None and depth_far is not None and not 0 < depth_near < depth_far:
        raise NodeInputError(GUIDE_NODE, f"depth_near and depth_far must satisfy 0 < near < far, got {depth_near}, "
                                         f"{depth_far}")


class AVGenCameraGuide:
    DESCRIPTION = (
        "Training-free camera control: re-renders the image along the camera path (each pixel unprojected with "
        "its depth, moved into every frame's camera, projected and splatted with a z-buffer; without a depth map "
        "the image is a plane at plane_distance) and attaches the rendered video to the AV latent as guide tokens "
        "over the whole clip, so any checkpoint follows the move. Holes (parts the image never showed) are left "
        "to the model: their guide tokens are dropped."
    )
    CATEGORY = "AVGen/camera"
    FUNCTION = "guide"
    RETURN_TYPES = (AV_LATENT, IMAGE, MASK)
    RETURN_NAMES = ("latent", "guide", "valid")
    OUTPUT_TOOLTIPS = (
        "The AV latent with the camera guide added to its conditionings.",
        "The rendered guide video (black where the image has nothing to show).",
        "1 where the guide shows the image, 0 in holes.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        distance = {"min": 0.001, "max": 10000.0, "step": 0.05}
        return {
            "required": {
                "video_vae": (VIDEO_VAE, {"tooltip": "Video VAE of the model that will sample."}),
                "latent": (AV_LATENT, {"tooltip": "The clip to guide: its size, frame count and fps."}),
                "camera_path": (CAMERA_PATH, {"tooltip": "From AVGen Camera Path (with this latent connected)."}),
                "image": (IMAGE, {"tooltip": "The picture the camera starts from (the first frame)."}),
                "resize_mode": (list(RESIZE_MODES), {"default": "crop", "tooltip": "How the image (and depth map) "
                                                                                   "is fitted to the clip's size."}),
                "plane_distance": ("FLOAT", {"default": 2.0, **distance,
                                             "tooltip": "Without a depth map: the image is a flat plane this far "
                                                        "ahead, in scene units."}),
                "depth_kind": (list(DEPTH_KINDS), {"default": DEPTH_KINDS[0],
                                                   "tooltip": "How to read the depth map: most estimators (Depth "
                                                              "Anything, MiDaS) give disparity, bright = near."}),
                "depth_near": ("FLOAT", {"default": 1.0, **distance,
                                         "tooltip": "Scene distance of the nearest depth-map value."}),
                "depth_far": ("FLOAT", {"default": 4.0, **distance,
                                        "tooltip": "Scene distance of the farthest depth-map value."}),
                "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01,
                                       "tooltip": "1: the guide tokens are kept clean; lower lets the sampler "
                                                  "rework them."}),
            },
            "optional": {
                "depth": (IMAGE, {"tooltip": "Depth map of the image (one picture, same aspect ratio)."}),
                "depth_mask": (MASK, {"tooltip": "Depth map as a MASK instead of an IMAGE."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, resize_mode=None, plane_distance=None, depth_kind=None, depth_near=None, depth_far=None,
                        strength=None):
        return validation_result(check_guide_values, resize_mode=resize_mode, depth_kind=depth_kind,
                                 depth_near=depth_near, depth_far=depth_far, plane_distance=plane_distance,
                                 strength=strength)

    def guide(self, video_vae, latent: AVLatent, camera_path: CameraPath, image, resize_mode: str,
              plane_distance: float, depth_kind: str, depth_near: float, depth_far: float, strength: float,
              depth=None, depth_mask=None):
        check_guide_values(resize_mode, depth_kind, depth_near, depth_far, plane_distance=plane_distance,
                           strength=strength)
        latent = _check_latent(GUIDE_NODE, latent)
        if not isinstance(camera_path, CameraPath):
            raise NodeInputError(GUIDE_NODE, f"camera_path must come from AVGen Camera Path, got "
                                             f"{type(camera_path).__name__}")
        if camera_path.frames != latent.pixel_frames or abs(camera_path.fps - latent.fps) > 1e-6:
            raise NodeInputError(GUIDE_NODE, f"the camera path has {camera_path.frames} frames at "
                                             f"{camera_path.fps:g} fps, the latent {latent.pixel_frames} at "
                                             f"{latent.fps:g}: connect this latent to the camera path's latent input")
        if latent.keep_video:
            raise NodeInputError(GUIDE_NODE, "the latent keeps its video exactly (video-to-audio): there is no video "
                                             "for a camera guide to steer")
        check_frames(GUIDE_NODE, "the latent's frame count", latent.pixel_frames)
        picture = _single(GUIDE_NODE, "image", _check_image(GUIDE_NODE, "image", image))
        values = _depth_values(depth, depth_mask, tuple(picture.shape[:2]))
        picture = _resized(picture, latent, resize_mode)
        try:
            if values is None:
                scene = plane_depth(latent.height, latent.width, plane_distance)
            else:
                resized = _resized(values[..., None].expand(-1, -1, 3), latent, resize_mode)[..., 0]
                scene = _scene_depth(resized, depth_kind, depth_near, depth_far)
        except ValueError as exc:
            raise NodeInputError(GUIDE_NODE, str(exc)) from None
        vae = video_vae.vae
        device = next(vae.parameters()).device
        with torch.no_grad():
            rendered = render_guide(picture.to(device), camera_path, scene.to(device))
            filled = fill_holes(rendered.frames, rendered.valid)
            encoded = vae.encode(_to_vae_pixels(filled.permute(0, 3, 1, 2))).to("cpu", torch.float32)
        if encoded.shape[1:] != latent.video.shape[1:]:
            raise NodeInputError(GUIDE_NODE, f"encoded guide {tuple(encoded.shape[1:])} does not match the latent's "
                                             f"{tuple(latent.video.shape[1:])}: the video VAE is not the model's")
        coverage = latent_validity(rendered.valid.cpu(), latent.scale_factors)
        keep = (coverage >= KEEP_TOKEN_COVERAGE).flatten()
        keyframe = KeyframeConditioning(latent=_to_batch(GUIDE_NODE, "the guide", encoded, latent.video.shape[0]),
                                        frame_idx=0, strength=float(strength), num_pixel_frames=latent.pixel_frames)
        result = latent.replace(conditionings=(*latent.conditionings, ValidGuideTokens(keyframe, keep)))
        note = (f"{camera_path.label} guide: {100 * float(rendered.valid.mean()):.1f}% of pixels seen, "
                f"{int(keep.sum())} of {keep.numel()} guide tokens kept, strength {strength:g}")
        log.info("%s: %s", GUIDE_NODE, note)
        return {"ui": {"text": [note]},
                "result": (result, rendered.frames.cpu(), rendered.valid.cpu())}


NODE_CLASS_MAPPINGS = {PATH_NODE: AVGenCameraPath, GUIDE_NODE: AVGenCameraGuide}
NODE_DISPLAY_NAME_MAPPINGS = {PATH_NODE: "AVGen Camera Path", GUIDE_NODE: "AVGen Camera Guide"}
