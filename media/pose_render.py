"""OpenPose skeleton rendering (the look pose ControlNets and pose IC-LoRAs are trained on), with Pillow.

On a black canvas, per person:
* body (COCO-18): the 17 limbs of LIMBS, each a filled ellipse from joint to joint (semi-axes half the limb
  length and BODY_STICK_WIDTH pixels) in 0.6 x LIMB_COLORS[i]; then every joint a disc of radius
  BODY_JOINT_RADIUS in JOINT_COLORS[j];
* hands (21 points each): the 20 bones of HAND_EDGES as lines HAND_LINE_WIDTH wide in the hue i / 20 (full
  saturation and value), then every point a blue disc of radius HAND_JOINT_RADIUS;
* face (70 points): white discs of radius FACE_JOINT_RADIUS.
A limb or bone is drawn only when both its points are seen (confidence above the threshold).
Keypoints are mapped from their canvas onto the target like images are resized (crop / pad / stretch).
"""
from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

from .pose_keypoints import PoseFrame

LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
JOINT_COLORS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
                (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
                (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
LIMB_COLORS = tuple(tuple(int(c * 0.6) for c in color) for color in JOINT_COLORS[:len(LIMBS)])
HAND_EDGES = ((0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
              (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20))
HAND_EDGE_COLORS = tuple(tuple(int(v * 255) for v in colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0))
                         for i in range(len(HAND_EDGES)))
HAND_JOINT_COLOR, FACE_COLOR = (0, 0, 255), (255, 255, 255)
BODY_STICK_WIDTH, BODY_JOINT_RADIUS = 4, 4
HAND_LINE_WIDTH, HAND_JOINT_RADIUS, FACE_JOINT_RADIUS = 2, 4, 3
MAP_MODES = ("crop", "pad", "stretch")


def canvas_transform(source: tuple[float, float], width: int, height: int, mode: str):
    """(scale_x, scale_y, offset_x, offset_y) mapping source-canvas pixels onto a width x height target."""
    if mode not in MAP_MODES:
        raise ValueError(f"resize mode must be one of {', '.join(MAP_MODES)}, got {mode!r}")
    src_w, src_h = source
    if mode == "stretch":
        return width / src_w, height / src_h, 0.0, 0.0
    scale = (max if mode == "crop" else min)(width / src_w, height / src_h)
    return scale, scale, (width - src_w * scale) / 2, (height - src_h * scale) / 2


def _to_target(points: np.ndarray, frame: PoseFrame, transform, width: int, height: int) -> np.ndarray:
    sx, sy, ox, oy = transform
    xy = points[:, :2].copy()
    if frame.normalized:
        src_w, src_h = frame.pixel_canvas(width, height)
        xy *= (src_w, src_h)
    return xy * (sx, sy) + (ox, oy)


def _disc(draw: ImageDraw.ImageDraw, x: float, y: float, radius: float, color) -> None:
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color)


def limb_polygon(a, b, half_width: float, segments: int = 36) -> list[tuple[float, float]]:
    """Outline of the ellipse spanning joints a -> b with semi-minor axis `half_width`."""
    (xa, ya), (xb, yb) = a, b
    cx, cy = (xa + xb) / 2, (ya + yb) / 2
    half_length = math.hypot(xb - xa, yb - ya) / 2
    angle = math.atan2(yb - ya, xb - xa)
    cos, sin = math.cos(angle), math.sin(angle)
    outline = []
    for k in range(segments):
        t = 2 * math.pi * k / segments
        u, v = half_length * math.cos(t), half_width * math.sin(t)
        outline.append((cx + u * cos - v * sin, cy + u * sin + v * cos))
    return outline


def _draw_body(draw, xy: np.ndarray, seen: np.ndarray) -> None:
    for (i, j), color in zip(LIMBS, LIMB_COLORS):
        if seen[i] and seen[j]:
            draw.polygon(limb_polygon(xy[i], xy[j], BODY_STICK_WIDTH), fill=color)
    for j, color in enumerate(JOINT_COLORS):
        if seen[j]:
            _disc(draw, *xy[j], BODY_JOINT_RADIUS, color)


def _draw_hand(draw, xy: np.ndarray, seen: np.ndarray) -> None:
    for (i, j), color in zip(HAND_EDGES, HAND_EDGE_COLORS):
        if seen[i] and seen[j]:
            draw.line([tuple(xy[i]), tuple(xy[j])], fill=color, width=HAND_LINE_WIDTH)
    for j in np.flatnonzero(seen):
        _disc(draw, *xy[j], HAND_JOINT_RADIUS, HAND_JOINT_COLOR)


def _draw_face(draw, xy: np.ndarray, seen: np.ndarray) -> None:
    for j in np.flatnonzero(seen):
        _disc(draw, *xy[j], FACE_JOINT_RADIUS, FACE_COLOR)


def render_pose(frame: PoseFrame, width: int, height: int, mode: str = "crop", body: bool = True,
                hands: bool = True, face: bool = True, min_confidence: float = 0.0) -> np.ndarray:
    """(height, width, 3) uint8 OpenPose rendering of one frame; points with confidence <= min_confidence are
    not drawn."""
    if width < 1 or height < 1:
        raise ValueError(f"render size must be positive, got {width}x{height}")
    transform = canvas_transform(frame.pixel_canvas(width, height), width, height, mode)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for person in frame.people:
        for part, drawer, enabled in ((person.body, _draw_body, body), (person.left_hand, _draw_hand, hands),
                                      (person.right_hand, _draw_hand, hands), (person.face, _draw_face, face)):
            seen = part[:, 2] > min_confidence
            if enabled and seen.any():
                drawer(draw, _to_target(part, frame, transform, width, height), seen)
    return np.asarray(image)
