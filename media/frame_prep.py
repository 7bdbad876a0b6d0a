"""Frames -> what the video VAE encodes: resizing to a target size and the H.264 round trip of conditioning images.

Frames are ComfyUI IMAGE tensors (F, H, W, 3) float in 0..1. Resize modes:
* crop: scale to cover the target (the larger of the two ratios, sizes rounded up), bilinear, then center crop
  (the official first-frame preprocessing);
* pad: scale to fit inside the target (the smaller ratio), bilinear, then center on black;
* stretch: bilinear straight to the target size (the aspect ratio changes).
Bilinear is `torch.nn.functional.interpolate(mode="bilinear", align_corners=False)` without antialiasing,
as the official pipelines resize.
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F

RESIZE_MODES = ("crop", "pad", "stretch")
FRAMES_PER_CHUNK = 16  # frames resized at once (bounds the float32 working memory of long clips)


def _check_frames(frames: torch.Tensor) -> None:
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"expected frames (F, H, W, 3) with F >= 1, got {shape}")


def _bilinear(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if tuple(x.shape[-2:]) == (height, width):
        return x
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def _resize_chunk(x: torch.Tensor, height: int, width: int, mode: str) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3, height, width)."""
    src_h, src_w = x.shape[-2:]
    if mode == "stretch":
        return _bilinear(x, height, width)
    if mode == "crop":
        scale = max(height / src_h, width / src_w)
        new_h, new_w = math.ceil(src_h * scale), math.ceil(src_w * scale)
        x = _bilinear(x, new_h, new_w)
        top, left = (new_h - height) // 2, (new_w - width) // 2
        return x[..., top: top + height, left: left + width]
    scale = min(height / src_h, width / src_w)
    new_h = min(height, max(1, round(src_h * scale)))
    new_w = min(width, max(1, round(src_w * scale)))
    x = _bilinear(x, new_h, new_w)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    return F.pad(x, (left, width - new_w - left, top, height - new_h - top))


def resize_frames(frames: torch.Tensor, height: int, width: int, mode: str = "crop") -> torch.Tensor:
    """(F, H, W, 3) in 0..1 -> float32 (F, 3, height, width) in 0..1, resized with `mode` (see RESIZE_MODES)."""
    _check_frames(frames)
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {', '.join(RESIZE_MODES)}, got {mode!r}")
    if height < 1 or width < 1:
        raise ValueError(f"target size must be positive, got {width}x{height}")
    chunks = []
    for start in range(0, frames.shape[0], FRAMES_PER_CHUNK):
        chunk = frames[start: start + FRAMES_PER_CHUNK].to(torch.float32).permute(0, 3, 1, 2)
        chunks.append(_resize_chunk(chunk, height, width, mode))
    return torch.cat(chunks).contiguous()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(H, W, 3) float in 0..1 -> uint8 numpy array (rounded, clamped)."""
    return (image.detach().to("cpu", torch.float32).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def h264_roundtrip(image: np.ndarray, crf: int) -> np.ndarray:
    """Encode one uint8 RGB image (H, W, 3) as a single H.264 frame at `crf` (libx264, veryfast, yuv420p) and
    decode it again: the compression look the models saw in training. Odd sizes lose their last row / column
    (4:2:0 needs even sizes), so the result is (H//2*2, W//2*2, 3). Needs PyAV with libx264."""
    import av

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    height, width = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    if height < 2 or width < 2:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} is too small for H.264 (needs at least 2x2)")
    image = np.ascontiguousarray(image[:height, :width])
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=1, options={"crf": str(int(crf)), "preset": "veryfast"})
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = next(container.decode(video=0))
        return decoded.to_ndarray(format="rgb24")
