"""Preview picture of a camera path: a top view and a side view of the trajectory with camera frustums (PIL).

Top view: x to the right, z (forward) up the picture. Side view: z (forward) to the right, up (-y) up the
picture. Frustums are drawn for a few evenly spaced frames, from blue (first frame) to red (last); a dot marks
the subject point `target` (e.g. the orbit pivot) when given.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

PANEL = 384
MARGIN = 28
FRUSTUMS = 9
BACKGROUND, GRID, PATH_COLOR, TEXT = (24, 26, 30), (48, 52, 60), (230, 230, 230), (200, 200, 200)


def _color(fraction: float) -> tuple[int, int, int]:
    return (int(60 + 195 * fraction), int(120 - 60 * fraction), int(255 - 195 * fraction))


def _frustum(path, frame: int, length: float, aspect: float) -> np.ndarray:
    """(5, 3) world points: the camera centre and the far corners of its view pyramid, `length` ahead."""
    half_w = math.tan(math.radians(float(path.fov[frame])) / 2.0) * length
    half_h = half_w / aspect
    corners = torch.tensor([[0.0, 0.0, 0.0], [-half_w, -half_h, length], [half_w, -half_h, length],
                            [half_w, half_h, length], [-half_w, half_h, length]], dtype=torch.float64)
    rotation = path.rotations()[frame]
    return (corners @ rotation.T + path.positions[frame]).numpy()


def _view(points: np.ndarray, panel: int) -> np.ndarray:
    """(N, 3) world points -> (N, 2) plane coordinates of panel 0 (top) or 1 (side), y up."""
    return points[:, [0, 2]] if panel == 0 else np.stack([points[:, 2], -points[:, 1]], axis=-1)


def render_preview(path, aspect: float = 1.5, target: tuple[float, float, float] | None = None) -> np.ndarray:
    """(PANEL, 2 * PANEL, 3) uint8 picture of the path; `aspect` = width / height of the frames."""
    positions = path.positions.numpy()
    extent = float(np.ptp(positions, axis=0).max()) if path.frames > 1 else 0.0
    target_points = np.array([target], dtype=np.float64) if target is not None else np.zeros((0, 3))
    scene = max(extent, float(np.linalg.norm(target_points - positions[:1], axis=-1).max(initial=0.0)), 1e-3)
    length = 0.25 * scene
    frames = sorted({round(i * (path.frames - 1) / (FRUSTUMS - 1)) for i in range(FRUSTUMS)})
    frustums = {f: _frustum(path, f, length, aspect) for f in frames}
    everything = np.concatenate([positions, target_points, *frustums.values()])
    image = Image.new("RGB", (2 * PANEL, PANEL), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for panel, title in ((0, "top view (x right, forward up)"), (1, "side view (forward right, up up)")):
        flat = _view(everything, panel)
        low, high = flat.min(axis=0), flat.max(axis=0)
        scale = (PANEL - 2 * MARGIN) / max(float((high - low).max()), 1e-9)
        centre = (low + high) / 2.0
        left = panel * PANEL

        def to_pixels(points, panel=panel, left=left, centre=centre, scale=scale):
            xy = (_view(points, panel) - centre) * scale
            return [(left + PANEL / 2 + x, PANEL / 2 - y) for x, y in xy]

        draw.rectangle([left + 4, 4, left + PANEL - 5, PANEL - 5], outline=GRID)
        draw.text((left + 10, 8), title, fill=TEXT)
        for frame, corners in frustums.items():
            colour = _color(frame / max(path.frames - 1, 1))
            centre_px, *far = to_pixels(corners)
            for corner in far:
                draw.line([centre_px, corner], fill=colour, width=1)
            draw.line(far + far[:1], fill=colour, width=1)
        draw.line(to_pixels(positions) if path.frames > 1 else to_pixels(positions) * 2, fill=PATH_COLOR, width=2)
        for x, y in to_pixels(target_points):
            draw.ellipse([x - 4, y - 4, x + 4, y + 4], outline=(250, 200, 60), width=2)
    draw.text((8, PANEL - 20), f"{path.label or 'path'}: {path.frames} frames at {path.fps:g} fps", fill=TEXT)
    return np.asarray(image)
