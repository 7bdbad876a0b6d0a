"""Reading images (png, jpg, webp, gif, tiff ...) with Pillow as ComfyUI IMAGE + MASK tensors.

Like ComfyUI's LoadImage: the EXIF orientation is applied; every frame of a multi-frame file that has the size of
the first becomes one batch entry; MASK = 1 − alpha (zeros when the image has no alpha channel). 16-bit grayscale
images are scaled by 1/65535.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from .errors import MediaReadError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".jfif"})


def _frame_arrays(frame: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) float32 RGB in 0..1 and (H, W) alpha in 0..1 (or None) of one frame."""
    frame = ImageOps.exif_transpose(frame)
    if frame.mode in ("I", "I;16", "I;16B", "I;16L"):
        gray = np.asarray(frame, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(gray, 0.0, 1.0)[..., None], 3, axis=2), None
    has_alpha = "A" in frame.getbands() or (frame.mode == "P" and "transparency" in frame.info)
    rgba = frame.convert("RGBA") if has_alpha else frame.convert("RGB")
    pixels = np.asarray(rgba, dtype=np.float32) / 255.0
    return pixels[..., :3], (pixels[..., 3] if has_alpha else None)


def load_image(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """IMAGE (B, H, W, 3) float32 0..1 and MASK (B, H, W) float32 (1 − alpha) of an image file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaReadError(f"image file {path!r} does not exist")
    try:
        with Image.open(path) as image:
            images, masks, size = [], [], None
            for frame in ImageSequence.Iterator(image):
                rgb, alpha = _frame_arrays(frame)
                if size is None:
                    size = rgb.shape[:2]
                elif rgb.shape[:2] != size:
                    continue
                images.append(rgb)
                masks.append(np.zeros(size, np.float32) if alpha is None else 1.0 - alpha)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaReadError(f"cannot read {path!r} as an image: {exc}") from exc
    if not images:
        raise MediaReadError(f"{path!r} holds no image frames")
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks))
