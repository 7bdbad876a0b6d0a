"""Camera paths: one pinhole camera per video frame, from a preset move or from keyframed poses.

Conventions (OpenCV, as kornia.geometry.camera.PinholeCamera): camera axes x right, y down, z forward. World
coordinates are the axes of the un-moved camera (position 0, yaw = pitch = roll = 0 looks along +z with +y down);
lengths are scene units, the unit of the depth map or plane distance the path is rendered with.
A pose's orientation (camera -> world) is R = R_y(yaw) @ R_x(pitch) @ R_z(roll), angles in degrees:
* yaw > 0 turns the camera to the right (about the vertical y axis);
* pitch > 0 tilts it up;
* roll > 0 turns it clockwise as seen from behind the camera (the picture turns counter-clockwise).
Extrinsics are world -> camera, [R^T | -R^T c] for a camera at c. The field of view is horizontal, in degrees;
for W x H pixels fx = fy = W / (2 tan(fov / 2)) and the principal point is ((W - 1) / 2, (H - 1) / 2) (pixel
centres at integer coordinates, as kornia's pixel grids). Focal lengths in mm are full-frame equivalents
(36 mm wide sensor): fov = 2 atan(18 mm / f).

Interpolation between keyframes (frame k is at time k / fps seconds; before the first / after the last keyframe
the pose is held): every channel (x, y, z, yaw, pitch, roll and log focal length) by a monotone piecewise cubic
(Hermite with Fritsch-Butland tangents): C1-smooth, and never beyond the neighbouring keys' values, so the camera
does not overshoot or wind up. Angles are interpolated as numbers (a key at yaw 0 and one at 270 turn three
quarters to the right). `easing` "smooth" sets zero tangents at the first and last keyframe (the camera starts
and stops at rest), "linear" the secants (a two-keyframe move runs at constant speed). Presets are analytic moves driven by a progress 0 -> 1 that is
such a two-keyframe curve, so arcs (orbit, crane) stay exact circles.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import torch

from .optional_imports import require

EASINGS = ("smooth", "linear")
FULL_FRAME_HALF_WIDTH_MM = 18.0
MIN_FOV, MAX_FOV = 1.0, 179.0
_TRANSLATIONS = {  # preset -> direction of travel in world axes (x right, y down, z forward)
    "dolly_in": (0.0, 0.0, 1.0), "dolly_out": (0.0, 0.0, -1.0),
    "truck_left": (-1.0, 0.0, 0.0), "truck_right": (1.0, 0.0, 0.0),
    "pedestal_up": (0.0, -1.0, 0.0), "pedestal_down": (0.0, 1.0, 0.0),
}
_ROTATIONS = {  # preset -> (angle index: 0 yaw / 1 pitch, sign)
    "pan_left": (0, -1.0), "pan_right": (0, 1.0), "tilt_up": (1, 1.0), "tilt_down": (1, -1.0),
}
_ARCS = {  # preset -> (angle index, sign of the angle): the camera circles a pivot, keeping it centred
    "orbit_left": (0, 1.0), "orbit_right": (0, -1.0), "crane_up": (1, -1.0), "crane_down": (1, 1.0),
}
_ZOOMS = {"zoom_in": 1.0, "zoom_out": -1.0}
PRESETS = ("static", *_TRANSLATIONS, *_ROTATIONS, *_ARCS, *_ZOOMS)
KEYFRAME_FIELDS = ("time", "position", "yaw", "pitch", "roll", "fov", "focal_length")


def fov_from_focal_length(focal_mm: float) -> float:
    """Horizontal field of view (degrees) of a full-frame-equivalent focal length (mm)."""
    return math.degrees(2.0 * math.atan(FULL_FRAME_HALF_WIDTH_MM / focal_mm))


def _check_fov(fov: float, what: str = "fov") -> None:
    if not MIN_FOV <= fov <= MAX_FOV:
        raise ValueError(f"{what} must be a horizontal field of view in [{MIN_FOV:g}, {MAX_FOV:g}] degrees, "
                         f"got {fov}")


def _check_easing(easing: str) -> None:
    if easing not in EASINGS:
        raise ValueError(f"easing must be one of {', '.join(EASINGS)}, got {easing!r}")


@dataclass(frozen=True)
class Keyframe:
    """A camera pose at `time` seconds: position (x, y, z) in scene units, yaw / pitch / roll in degrees and a
    horizontal field of view in degrees."""

    time: float
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    fov: float = 60.0


@dataclass(frozen=True)
class CameraPath:
    """Per-frame cameras of a clip: positions (F, 3) scene units, angles (F, 3) yaw / pitch / roll degrees,
    fov (F,) horizontal degrees, all float64; frame k is at k / fps seconds. `label` names the move."""

    positions: torch.Tensor
    angles: torch.Tensor
    fov: torch.Tensor
    fps: float
    label: str = ""

    def __post_init__(self):
        frames = self.positions.shape[0] if self.positions.ndim == 2 else 0
        if frames < 1 or self.positions.shape != (frames, 3) or self.angles.shape != (frames, 3) or (
                self.fov.shape != (frames,)):
            raise ValueError(f"camera path: expected positions (F, 3), angles (F, 3) and fov (F,) with F >= 1, got "
                             f"{tuple(self.positions.shape)}, {tuple(self.angles.shape)}, {tuple(self.fov.shape)}")
        if not self.fps > 0:
            raise ValueError(f"camera path: fps must be > 0, got {self.fps}")
        if not bool(((self.fov > 0) & (self.fov < 180)).all()):
            raise ValueError("camera path: every field of view must be in (0, 180) degrees")

    @property
    def frames(self) -> int:
        return self.positions.shape[0]

    def rotations(self) -> torch.Tensor:
        """(F, 3, 3) camera -> world rotations R_y(yaw) @ R_x(pitch) @ R_z(roll)."""
        half = torch.deg2rad(self.angles.to(torch.float64)) / 2.0
        axes = torch.eye(3, dtype=torch.float64)
        conversions = require("kornia.geometry.conversions", "camera paths (kornia)")
        yaw, pitch, roll = (  # unit quaternions (w, x, y, z) about the y, x and z axes
            conversions.quaternion_to_rotation_matrix(torch.cat([torch.cos(half[:, i:i + 1]),
                                                     torch.sin(half[:, i:i + 1]) * axes[axis]], dim=-1))
            for i, axis in ((0, 1), (1, 0), (2, 2)))
        return yaw @ pitch @ roll

    def extrinsics(self) -> torch.Tensor:
        """(F, 4, 4) world -> camera transforms."""
        rotation_t = self.rotations().transpose(1, 2)
        out = torch.eye(4, dtype=torch.float64).repeat(self.frames, 1, 1)
        out[:, :3, :3] = rotation_t
        out[:, :3, 3] = -(rotation_t @ self.positions.to(torch.float64).unsqueeze(-1)).squeeze(-1)
        return out

    def relative_to_first(self) -> torch.Tensor:
        """(F, 4, 4) transforms from the first frame's camera coordinates to each frame's."""
        extrinsics = self.extrinsics()
        return extrinsics @ torch.linalg.inv(extrinsics[0])

    def intrinsics(self, height: int, width: int) -> torch.Tensor:
        """(F, 4, 4) pinhole intrinsics for images of width x height pixels."""
        if height < 1 or width < 1:
            raise ValueError(f"camera path: image size must be positive, got {width}x{height}")
        focal = width / (2.0 * torch.tan(torch.deg2rad(self.fov.to(torch.float64)) / 2.0))
        out = torch.eye(4, dtype=torch.float64).repeat(self.frames, 1, 1)
        out[:, 0, 0] = focal
        out[:, 1, 1] = focal
        out[:, 0, 2] = (width - 1) / 2.0
        out[:, 1, 2] = (height - 1) / 2.0
        return out

    def pinhole(self, height: int, width: int):
        """The path as a batch of F kornia cameras."""
        sizes = torch.ones(self.frames, dtype=torch.float64)
        camera = require("kornia.geometry.camera", "camera paths (kornia)")
        return camera.PinholeCamera(self.intrinsics(height, width), self.extrinsics(), sizes * height, sizes * width)


# --- interpolation -------------------------------------------------------------------------------------------


def frame_times(frames: int, fps: float) -> torch.Tensor:
    """(F,) float64 frame times k / fps in seconds."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return torch.arange(frames, dtype=torch.float64) / fps


def _hermite(knots: torch.Tensor, values: torch.Tensor, tangents: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """Cubic Hermite curve through (knots (K,), values (K, D)) with tangents (K, D), sampled at times (N,) -> (N, D);
    held constant outside [knots[0], knots[-1]]."""
    if knots.numel() == 1:
        return values[:1].expand(times.numel(), -1).clone()
    times = times.clamp(knots[0], knots[-1])
    seg = (torch.searchsorted(knots, times, right=True) - 1).clamp(0, knots.numel() - 2)
    t0, t1 = knots[seg], knots[seg + 1]
    h = (t1 - t0).unsqueeze(-1)
    u = ((times - t0) / (t1 - t0)).unsqueeze(-1)
    u2, u3 = u * u, u * u * u
    return ((2 * u3 - 3 * u2 + 1) * values[seg] + (u3 - 2 * u2 + u) * h * tangents[seg]
            + (3 * u2 - 2 * u3) * values[seg + 1] + (u3 - u2) * h * tangents[seg + 1])


def _end_tangents(knots: torch.Tensor, values: torch.Tensor, tangents: torch.Tensor, easing: str) -> torch.Tensor:
    if easing == "linear" and knots.numel() > 1:
        tangents[0] = (values[1] - values[0]) / (knots[1] - knots[0])
        tangents[-1] = (values[-1] - values[-2]) / (knots[-1] - knots[-2])
    return tangents


def monotone_tangents(knots: torch.Tensor, values: torch.Tensor, easing: str) -> torch.Tensor:
    """(K, D) Fritsch-Butland tangents: a weighted harmonic mean of the neighbouring secants where they agree in
    sign, 0 at local extrema, `easing` at the ends; the curve never leaves the range of neighbouring keys."""
    tangents = torch.zeros_like(values)
    if knots.numel() > 2:
        h = (knots[1:] - knots[:-1]).unsqueeze(-1)
        secant = (values[1:] - values[:-1]) / h
        before, after, h0, h1 = secant[:-1], secant[1:], h[:-1], h[1:]
        w1, w2 = 2 * h1 + h0, h1 + 2 * h0
        same = before * after > 0
        safe_before, safe_after = torch.where(same, before, 1.0), torch.where(same, after, 1.0)
        tangents[1:-1] = torch.where(same, (w1 + w2) / (w1 / safe_before + w2 / safe_after), 0.0)
    return _end_tangents(knots, values, tangents, easing)


def _log_focal(fov: torch.Tensor) -> torch.Tensor:
    return -torch.log(torch.tan(torch.deg2rad(fov) / 2.0))


def _fov_from_log_focal(log_focal: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(2.0 * torch.atan(torch.exp(-log_focal)))


def keyframe_path(keyframes: list[Keyframe], frames: int, fps: float, easing: str = "smooth",
                  label: str = "keyframes") -> CameraPath:
    """The keyframed poses interpolated at the clip's frame times (see the module docstring)."""
    _check_easing(easing)
    if not keyframes:
        raise ValueError("keyframes: at least one keyframe is needed")
    times = frame_times(frames, fps)
    knots = torch.tensor([k.time for k in keyframes], dtype=torch.float64)
    if knots.numel() > 1 and not bool((knots[1:] > knots[:-1]).all()):
        raise ValueError(f"keyframes: times must increase strictly, got {knots.tolist()}")
    positions = torch.tensor([k.position for k in keyframes], dtype=torch.float64)
    angles = torch.tensor([(k.yaw, k.pitch, k.roll) for k in keyframes], dtype=torch.float64)
    for k in keyframes:
        _check_fov(k.fov, f"keyframe at {k.time:g} s: fov")
    log_focal = _log_focal(torch.tensor([k.fov for k in keyframes], dtype=torch.float64)).unsqueeze(-1)
    return CameraPath(
        positions=_hermite(knots, positions, monotone_tangents(knots, positions, easing), times),
        angles=_hermite(knots, angles, monotone_tangents(knots, angles, easing), times),
        fov=_fov_from_log_focal(_hermite(knots, log_focal, monotone_tangents(knots, log_focal, easing), times)[:, 0]),
        fps=float(fps), label=label)


# --- presets -------------------------------------------------------------------------------------------------


def preset_progress(frames: int, fps: float, easing: str = "smooth") -> torch.Tensor:
    """(F,) progress 0 -> 1 over the clip: the two-keyframe curve of `easing` (smoothstep or a straight line)."""
    _check_easing(easing)
    times = frame_times(frames, fps)
    if frames == 1:
        return torch.zeros(1, dtype=torch.float64)
    knots = torch.stack([times[0], times[-1]])
    values = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    return _hermite(knots, values, monotone_tangents(knots, values, easing), times)[:, 0]


def preset_path(preset: str, frames: int, fps: float, *, fov: float = 60.0, distance: float = 0.5,
                angle: float = 15.0, zoom: float = 1.5, pivot_distance: float = 2.0,
                easing: str = "smooth") -> CameraPath:
    """A preset move over the whole clip, starting from the un-moved camera.

    distance (scene units): dolly (forward / back), truck (sideways), pedestal (straight up / down);
    angle (degrees): pan (yaw), tilt (pitch), orbit (around a vertical axis) and crane (around a horizontal
    axis) through the pivot `pivot_distance` ahead, which stays centred; zoom: focal length factor at the end
    (zoom_in multiplies the focal length by it, zoom_out divides), applied geometrically over time.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    _check_fov(fov)
    for name, value in (("distance", distance), ("angle", angle)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be >= 0 (the preset gives the direction), got {value}")
    if not (math.isfinite(zoom) and zoom >= 1):
        raise ValueError(f"zoom must be a focal length factor >= 1 (the preset says in or out), got {zoom}")
    if not (math.isfinite(pivot_distance) and pivot_distance > 0):
        raise ValueError(f"pivot_distance must be > 0 scene units, got {pivot_distance}")
    progress = preset_progress(frames, fps, easing)
    positions = torch.zeros(frames, 3, dtype=torch.float64)
    angles = torch.zeros(frames, 3, dtype=torch.float64)
    log_focal = _log_focal(torch.full((frames,), float(fov), dtype=torch.float64))
    if preset in _TRANSLATIONS:
        positions = progress.unsqueeze(-1) * distance * torch.tensor(_TRANSLATIONS[preset], dtype=torch.float64)
    elif preset in _ROTATIONS:
        index, sign = _ROTATIONS[preset]
        angles[:, index] = sign * angle * progress
    elif preset in _ARCS:
        index, sign = _ARCS[preset]
        turn = sign * angle * progress
        angles[:, index] = turn
        radians = torch.deg2rad(turn)
        # the camera sits pivot_distance behind the pivot (0, 0, pivot_distance), along its own forward axis
        if index == 0:  # forward (sin yaw, 0, cos yaw)
            positions[:, 0] = -pivot_distance * torch.sin(radians)
        else:  # forward (0, -sin pitch, cos pitch)
            positions[:, 1] = pivot_distance * torch.sin(radians)
        positions[:, 2] = pivot_distance * (1.0 - torch.cos(radians))
    elif preset in _ZOOMS:
        log_focal = log_focal + _ZOOMS[preset] * math.log(zoom) * progress
    return CameraPath(positions=positions, angles=angles, fov=_fov_from_log_focal(log_focal), fps=float(fps),
                      label=preset)


# --- keyframes as JSON ---------------------------------------------------------------------------------------


def _number(item: dict, key: str, where: str) -> float:
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _keyframe(item, index: int, previous: Keyframe) -> Keyframe:
    where = f"keyframe {index}"
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object like {{\"time\": 1.0, \"yaw\": 10}}, got {item!r}")
    unknown = sorted(set(item) - set(KEYFRAME_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(KEYFRAME_FIELDS)}")
    if "time" not in item:
        raise ValueError(f"{where}: 'time' (seconds) is required")
    time = _number(item, "time", where)
    if time < 0 or (index > 0 and time <= previous.time):
        raise ValueError(f"{where}: time {time:g} s must be >= 0 and after the previous keyframe's "
                         f"{previous.time:g} s")
    position = item.get("position", previous.position)
    if not isinstance(position, (list, tuple)) or len(position) != 3:
        raise ValueError(f"{where}: position must be a list of 3 numbers [x, y, z], got {position!r}")
    position = tuple(_number({"position": p}, "position", where) for p in position)
    yaw, pitch, roll = (_number(item, k, where) if k in item else getattr(previous, k) for k in ("yaw", "pitch", "roll"))
    if "fov" in item and "focal_length" in item:
        raise ValueError(f"{where}: give either fov (degrees) or focal_length (mm), not both")
    fov = previous.fov
    if "fov" in item:
        fov = _number(item, "fov", where)
    elif "focal_length" in item:
        focal = _number(item, "focal_length", where)
        if focal <= 0:
            raise ValueError(f"{where}: focal_length must be > 0 mm, got {focal:g}")
        fov = fov_from_focal_length(focal)
    _check_fov(fov, f"{where}: fov")
    return Keyframe(time, position, yaw, pitch, roll, fov)


def parse_keyframes(text: str, fov: float = 60.0) -> list[Keyframe]:
    """Keyframes from JSON: a list of {time (s), position [x, y, z], yaw, pitch, roll (degrees), fov (degrees)
    or focal_length (mm)}. Only time is required; other fields keep the previous keyframe's value (for the first
    keyframe: the un-moved camera with field of view `fov`)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"keyframes are not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                         "expected a list like [{\"time\": 0}, {\"time\": 4, \"yaw\": 30}]") from None
    if not isinstance(data, list) or not data:
        raise ValueError(f"keyframes must be a non-empty JSON list of objects, got {type(data).__name__}")
    _check_fov(fov)
    keyframes, previous = [], Keyframe(0.0, fov=fov)
    for index, item in enumerate(data):
        previous = _keyframe(item, index, previous)
        keyframes.append(previous)
    return keyframes
