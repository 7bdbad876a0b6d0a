"""Global (camera) motion of a clip's background, for camera adherence.

Between consecutive frames the background is modelled as a zoom about the canvas centre plus a translation:
the content at pixel p of frame f is at centre + zoom * (p - centre) + (dx, dy) in frame f + 1. The three
parameters are fitted by Gauss-Newton on brightness constancy (Lucas-Kanade), ignoring the moving shape.
"""
from __future__ import annotations

import numpy as np

from .metrics import foreground_masks

PAN_MIN = 0.003  # canvas fractions per frame: slower background shifts count as a static camera
ZOOM_MIN = 0.006  # log zoom per frame below which the camera does not zoom


def _blur(images: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1] / 4 blur, twice, over the last two axes (edges replicated)."""
    for _ in range(2):
        for axis in (-1, -2):
            padded = np.concatenate([np.take(images, [0], axis), images, np.take(images, [-1], axis)], axis)
            n = images.shape[axis]
            images = 0.25 * np.take(padded, range(0, n), axis) + 0.5 * images + 0.25 * np.take(padded, range(2, n + 2), axis)
    return images


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of image [H, W] at float pixel-index coordinates (clamped to the border)."""
    height, width = image.shape
    x, y = np.clip(x, 0, width - 1.001), np.clip(y, 0, height - 1.001)
    x0, y0 = x.astype(int), y.astype(int)
    fx, fy = x - x0, y - y0
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def global_motion(frames: np.ndarray, iterations: int = 6) -> np.ndarray:
    """Per consecutive frame pair [F - 1, 3]: (dx, dy) in pixels and zoom (1 = none) of the background."""
    frames = np.asarray(frames, dtype=np.float64)
    gray = _blur(frames.mean(-1))
    shape_free = ~_blur(foreground_masks(frames).astype(np.float64)).astype(bool)  # shape pixels grown by blur
    height, width = gray.shape[1:]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    border = 3
    inner = np.zeros((height, width), dtype=bool)
    inner[border:-border, border:-border] = True
    out = np.zeros((max(len(frames) - 1, 0), 3))
    for f in range(len(frames) - 1):
        a, b = gray[f], gray[f + 1]
        dx = dy = 0.0
        zoom = 1.0
        for _ in range(iterations):
            qx, qy = cx + zoom * (xx - cx) + dx, cy + zoom * (yy - cy) + dy
            warped = _sample(b, qx, qy)
            valid = inner & shape_free[f] & (qx >= 0) & (qx <= width - 1) & (qy >= 0) & (qy <= height - 1)
            valid &= _sample(shape_free[f + 1].astype(np.float64), qx, qy) > 0.999
            gy, gx = np.gradient(warped)
            jac = np.stack([gx, gy, gx * (xx - cx) + gy * (yy - cy)], -1)[valid]
            residual = (warped - a)[valid]
            if len(residual) < 16:
                break
            step = np.linalg.lstsq(jac.T @ jac + 1e-9 * np.eye(3), -jac.T @ residual, rcond=None)[0]
            dx, dy, zoom = dx + step[0], dy + step[1], zoom + step[2]
        out[f] = dx, dy, zoom
    return out


def camera_label(motion: np.ndarray, width: int, height: int) -> str:
    """The dataset's camera word for a global motion [F - 1, 3]: "static", "pan_left", ..., "zoom_out".

    The view pans left when the content moves right (dx > 0) and zooms in when the content grows (zoom > 1).
    """
    if len(motion) == 0:
        return "static"
    size = float(min(width, height))
    dx, dy = np.median(motion[:, 0]) / size, np.median(motion[:, 1]) / size
    log_zoom = float(np.median(np.log(np.clip(motion[:, 2], 1e-3, None))))
    pan = max(abs(dx), abs(dy))
    # A zoom moves content at the canvas edge by about half the canvas times the log zoom.
    if abs(log_zoom) >= ZOOM_MIN and abs(log_zoom) / 2 >= pan:
        return "zoom_in" if log_zoom > 0 else "zoom_out"
    if pan < PAN_MIN:
        return "static"
    if abs(dx) >= abs(dy):
        return "pan_left" if dx > 0 else "pan_right"
    return "pan_up" if dy > 0 else "pan_down"
