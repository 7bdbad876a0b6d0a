"""OpenPose-format pose keypoints: parsing and interpolation over time.

Accepted input (what pose estimators write and ComfyUI passes as POSE_KEYPOINT):
* one frame: {"people": [person, ...], "canvas_width": W, "canvas_height": H} (canvas size optional);
* several frames: a list of such dicts (ComfyUI's POSE_KEYPOINT, or a JSON file holding a list).
A person has flat lists [x0, y0, c0, x1, y1, c1, ...]: "pose_keypoints_2d" (COCO-18 or BODY_25 order; BODY_25 is
mapped to COCO-18, its mid-hip and feet dropped), "hand_left_keypoints_2d" / "hand_right_keypoints_2d" (21
points), "face_keypoints_2d" (70 points, or 68 without pupils). A missing or empty list = a missing part;
confidence c <= 0 = a missing point. Coordinates are canvas pixels, or fractions of the canvas when no visible
point lies beyond 1 (normalised keypoints, as some estimators write).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

BODY_POINTS, HAND_POINTS, FACE_POINTS = 18, 21, 70
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)
PARTS = (("body", "pose_keypoints_2d", BODY_POINTS), ("left_hand", "hand_left_keypoints_2d", HAND_POINTS),
         ("right_hand", "hand_right_keypoints_2d", HAND_POINTS), ("face", "face_keypoints_2d", FACE_POINTS))


@dataclass(frozen=True)
class Person:
    """Keypoints (N, 3) float64 [x, y, confidence] per part; confidence 0 marks a missing point."""

    body: np.ndarray
    left_hand: np.ndarray
    right_hand: np.ndarray
    face: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name, _, _ in PARTS}


@dataclass(frozen=True)
class PoseFrame:
    """The people of one frame. `canvas` (width, height) is the size the keypoints were made on, None = the
    target's own; `normalized` says the coordinates are fractions of the canvas rather than pixels."""

    people: tuple[Person, ...]
    canvas: tuple[float, float] | None = None
    normalized: bool = False

    def pixel_canvas(self, width: int, height: int) -> tuple[float, float]:
        """The source canvas size in pixels when drawn on a width x height target."""
        return self.canvas if self.canvas is not None else (float(width), float(height))


def empty_person() -> Person:
    return Person(*(np.zeros((count, 3)) for _, _, count in PARTS))


def _points(values, key: str, count: int, where: str) -> np.ndarray:
    if values is None or len(values) == 0:
        return np.zeros((count, 3))
    try:
        flat = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key} must be a flat list of numbers [x, y, confidence, ...]") from None
    if flat.size % 3:
        raise ValueError(f"{where}: {key} has {flat.size} numbers, not a multiple of 3 (x, y, confidence)")
    points = flat.reshape(-1, 3)
    if key == "pose_keypoints_2d" and len(points) == 25:
        points = points[list(BODY25_TO_COCO18)]
    elif key == "face_keypoints_2d" and len(points) == 68:
        points = np.concatenate([points, np.zeros((2, 3))])
    if len(points) != count:
        expected = "18 (COCO) or 25 (BODY_25)" if key == "pose_keypoints_2d" else str(count)
        raise ValueError(f"{where}: {key} has {len(points)} points, expected {expected}")
    if not np.isfinite(points).all():
        raise ValueError(f"{where}: {key} holds NaN or infinite values")
    points[points[:, 2] <= 0] = 0.0
    return points


def _person(data, where: str) -> Person:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a person must be an object with pose_keypoints_2d etc., got {type(data).__name__}")
    if not any(key in data for _, key, _ in PARTS):
        raise ValueError(f"{where}: a person needs at least one of "
                         f"{', '.join(key for _, key, _ in PARTS)}; got keys {sorted(data)}")
    return Person(*(_points(data.get(key), key, count, where) for _, key, count in PARTS))


def _canvas(data: dict, where: str) -> tuple[float, float] | None:
    width, height = data.get("canvas_width"), data.get("canvas_height")
    if width is None and height is None:
        return None
    try:
        width, height = float(width), float(height)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: canvas_width and canvas_height must both be numbers, got {width!r}, "
                         f"{height!r}") from None
    if not (width > 0 and height > 0):
        raise ValueError(f"{where}: canvas size must be positive, got {width}x{height}")
    return width, height


def _frame(data, where: str) -> PoseFrame:
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise ValueError(f"{where}: expected an OpenPose frame {{'people': [...], 'canvas_width': ..., "
                         f"'canvas_height': ...}}, got {type(data).__name__}"
                         + (f" with keys {sorted(data)}" if isinstance(data, dict) else ""))
    people = tuple(_person(p, f"{where} person {i}") for i, p in enumerate(data["people"]))
    visible = [part[part[:, 2] > 0, :2] for person in people for part in person.parts().values()]
    visible = np.concatenate(visible) if visible else np.zeros((0, 2))
    return PoseFrame(people, _canvas(data, where), normalized=bool(visible.size) and visible.max() <= 1.0)


def parse_pose_keypoints(data) -> list[PoseFrame]:
    """OpenPose JSON (one frame) or a list of frames (ComfyUI POSE_KEYPOINT) -> frames. ValueError names the
    frame / person / part that is malformed."""
    frames = data if isinstance(data, list) else [data]
    if not frames:
        raise ValueError("pose keypoints: the list of frames is empty")
    return [_frame(frame, f"pose frame {i}") for i, frame in enumerate(frames)]


KEY_UNITS = ("frames", "seconds", "fraction")


def key_position_values(text: str, unit: str) -> list[float] | None:
    """The numbers of a key-positions text ("0, 48, 96"), None when empty; ValueError unless they are numbers in a
    known unit, strictly increasing, >= 0, whole for frames and <= 1 for fractions (what holds for any clip)."""
    words = text.replace(",", " ").split()
    if not words:
        return None
    if unit not in KEY_UNITS:
        raise ValueError(f"unit must be one of {', '.join(KEY_UNITS)}, got {unit!r}")
    try:
        values = [float(w) for w in words]
    except ValueError:
        raise ValueError(f"key positions {text!r} must be numbers separated by commas or spaces") from None
    if unit == "frames" and any(v != int(v) for v in values):
        raise ValueError(f"key positions in frames must be whole numbers, got {text!r}")
    if any(b <= a for a, b in pairwise(values)):
        raise ValueError(f"key positions must be strictly increasing, got {text!r}")
    if values[0] < 0 or (unit == "fraction" and values[-1] > 1):
        raise ValueError(f"key positions {text!r} must be >= 0" + (" and <= 1 (fractions of the clip)"
                                                                     if unit == "fraction" else ""))
    return values


def parse_key_positions(text: str, unit: str, fps: float, keys: int, frames: int) -> list[int] | None:
    """The frame index of each key pose from "0, 48, 96" (frames), "0, 2.5, 4" (seconds) or "0, 0.5, 1" (fraction
    of the clip: 0 = first frame, 1 = last); None for an empty text. Must give one strictly increasing position
    per key inside the clip of `frames` frames."""
    values = key_position_values(text, unit)
    if values is None:
        return None
    scale = {"frames": 1.0, "seconds": fps, "fraction": frames - 1}[unit]
    positions = [round(v * scale) for v in values]
    if len(positions) != keys:
        raise ValueError(f"{len(positions)} key positions given for {keys} key poses: give one per pose")
    if any(b <= a for a, b in pairwise(positions)):
        raise ValueError(f"key positions must be strictly increasing (as frames: {positions})")
    if positions[-1] >= frames:
        raise ValueError(f"key positions {positions} (frames) must lie in the clip's frames 0..{frames - 1}")
    return positions


def _blend_part(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    """Linear blend of two (N, 3) parts at w in [0, 1]; a point seen in one key only is held at that key's
    position for the half of the interval nearer to it and hidden in the other half (never pulled to 0, 0)."""
    seen_a, seen_b = a[:, 2] > 0, b[:, 2] > 0
    out = np.zeros_like(a)
    both = seen_a & seen_b
    out[both] = a[both] + (b[both] - a[both]) * w
    only_a, only_b = seen_a & ~seen_b, seen_b & ~seen_a
    if w < 0.5:
        out[only_a] = a[only_a]
    else:
        out[only_b] = b[only_b]
    return out


def _has_points(frame: PoseFrame) -> bool:
    return any(part[:, 2].any() for person in frame.people for part in person.parts().values())


def _blend_frames(a: PoseFrame, b: PoseFrame, w: float) -> PoseFrame:
    """Interpolated frame (people matched by index); a key without any point takes the other key's canvas."""
    if not _has_points(a):
        a = replace(a, canvas=b.canvas, normalized=b.normalized)
    elif not _has_points(b):
        b = replace(b, canvas=a.canvas, normalized=a.normalized)
    if (a.canvas, a.normalized) != (b.canvas, b.normalized):
        raise ValueError(f"key poses made on different canvases ({_describe(a)} and {_describe(b)}) cannot be "
                         "interpolated: give every key pose the same canvas_width / canvas_height")
    count = max(len(a.people), len(b.people))
    people_a = a.people + (empty_person(),) * (count - len(a.people))
    people_b = b.people + (empty_person(),) * (count - len(b.people))
    people = tuple(
        Person(*(_blend_part(pa.parts()[name], pb.parts()[name], w) for name, _, _ in PARTS))
        for pa, pb in zip(people_a, people_b)
    )
    return replace(a, people=people)


def _describe(frame: PoseFrame) -> str:
    size = "the target's canvas" if frame.canvas is None else f"{frame.canvas[0]:g}x{frame.canvas[1]:g}"
    return f"{size}, {'normalised' if frame.normalized else 'pixel'} coordinates"


def poses_for_frames(keys: list[PoseFrame], positions: list[int] | None, frames: int) -> list[PoseFrame]:
    """One pose per clip frame. positions None: key i is frame i (the last key held, extra keys dropped);
    otherwise key i sits at frame positions[i], frames in between are interpolated, frames outside held."""
    if not keys:
        raise ValueError("no key poses given")
    if positions is None:
        return [keys[min(i, len(keys) - 1)] for i in range(frames)]
    if len(positions) != len(keys):
        raise ValueError(f"{len(positions)} key positions for {len(keys)} key poses")
    out = []
    for t in range(frames):
        if t <= positions[0]:
            out.append(keys[0])
        elif t >= positions[-1]:
            out.append(keys[-1])
        else:
            i = max(j for j, p in enumerate(positions) if p <= t)
            w = (t - positions[i]) / (positions[i + 1] - positions[i])
            out.append(_blend_frames(keys[i], keys[i + 1], w))
    return out
