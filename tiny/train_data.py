"""The training clips of AVGen-Tiny: a pool rendered once from the "train" split, and batches drawn from it.

`<out>/pool/`: frames.npy (uint8 memmap [N, F, H, W, 3]), mel.npy (float32 [N, 2, T, 64], the audio VAE's own
log-mel front end), captions.json and done.json (written last; a pool without it is rendered again).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..models.audio.preprocess import MelFrontEndConfig, log_mel_spectrogram
from ..models.camera_guide import latent_validity
from .config import FPS, FRAMES, HEIGHT, SAMPLE_RATE, WIDTH, checkpoint_config
from .dataset import render_clip, sample_spec


def mel_front_end() -> MelFrontEndConfig:
    return MelFrontEndConfig.from_config(checkpoint_config()["audio_vae"])


@dataclass
class ClipPool:
    """Rendered clips: `frames` uint8 [N, F, H, W, 3], `mel` float32 [N, 2, T, 64], `captions`, `seeds`."""

    frames: np.ndarray
    mel: np.ndarray
    captions: list[str]
    seeds: list[int]

    def __len__(self) -> int:
        return len(self.captions)

    def pixels(self, index: np.ndarray) -> torch.Tensor:
        """Clips `index` as pixels (B, 3, F, H, W) in [-1, 1]."""
        frames = torch.from_numpy(np.ascontiguousarray(self.frames[index]))
        return frames.permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1.0)


def build_pool(out: Path, count: int, log: Callable[[str], None], chunk: int = 100) -> ClipPool:
    """Render `count` training clips (seeds 0..count-1) into `out/pool`, or open the finished pool there."""
    folder = out / "pool"
    if (folder / "done.json").is_file() and json.loads((folder / "done.json").read_text())["count"] == count:
        return open_pool(out)
    folder.mkdir(parents=True, exist_ok=True)
    front_end = mel_front_end()
    mel_frames = front_end.mel_frames(round(FRAMES / FPS * SAMPLE_RATE))
    frames = np.lib.format.open_memmap(folder / "frames.npy", mode="w+", dtype=np.uint8,
                                       shape=(count, FRAMES, HEIGHT, WIDTH, 3))
    mel = np.lib.format.open_memmap(folder / "mel.npy", mode="w+", dtype=np.float32,
                                    shape=(count, 2, mel_frames, front_end.n_mels))
    captions = []
    for start in range(0, count, chunk):
        clips = [render_clip(sample_spec(seed, "train"), WIDTH, HEIGHT, FRAMES, FPS, SAMPLE_RATE)
                 for seed in range(start, min(count, start + chunk))]
        frames[start:start + len(clips)] = np.stack([np.round(c.frames * 255) for c in clips]).astype(np.uint8)
        audio = torch.from_numpy(np.stack([c.audio for c in clips]))
        mel[start:start + len(clips)] = log_mel_spectrogram(audio, front_end).numpy()
        captions += [c.caption for c in clips]
        log(f"[pool] rendered {start + len(clips)}/{count} clips")
    frames.flush()
    mel.flush()
    (folder / "captions.json").write_text(json.dumps(captions))
    (folder / "done.json").write_text(json.dumps({"count": count}))
    return open_pool(out)


def open_pool(out: Path) -> ClipPool:
    folder = out / "pool"
    captions = json.loads((folder / "captions.json").read_text())
    return ClipPool(np.load(folder / "frames.npy", mmap_mode="r"), np.load(folder / "mel.npy"), captions,
                    list(range(len(captions))))


# The shape's pixels are saturated or bright; the backgrounds are neither.
SHAPE_MIN_SATURATION, SHAPE_MIN_BRIGHTNESS = 0.35, 0.75


def _is_shape(high, low):
    """Channel max / min on a 0..255 scale (numpy arrays or torch tensors) -> bool: saturated or bright."""
    return ((high - low) > SHAPE_MIN_SATURATION * high.clip(1.0)) | (high > SHAPE_MIN_BRIGHTNESS * 255)


def _shape_mask(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> bool [...]: the shape's pixels (as `foreground_weight` finds them)."""
    return _is_shape(rgb.max(axis=-1).astype(np.float32), rgb.min(axis=-1).astype(np.float32))


def video_crops(pool: ClipPool, rng: np.random.Generator, batch: int, frames: int, size: int,
                on_shape: float = 0.85) -> torch.Tensor:
    """Random clips, frame windows of `frames` (1 + 8k) and square crops of `size` pixels, randomly mirrored:
    (B, 3, frames, size, size) in [-1, 1]. A fraction `on_shape` of the crops contains the shape (a crop placed
    at random could miss it more often than not, and the shape is what the decoder must get right)."""
    index = rng.integers(len(pool), size=batch)
    total, height, width = pool.frames.shape[1:4]
    out = np.empty((batch, frames, size, size, 3), dtype=np.uint8)
    for i, clip in enumerate(index):
        t = rng.integers(total - frames + 1)
        window = pool.frames[clip, t:t + frames]
        ys, xs = np.nonzero(_shape_mask(window).any(axis=0))
        if len(ys) and rng.random() < on_shape:
            margin = size // 8
            y = int(np.clip(np.median(ys) - rng.integers(margin, size - margin), 0, height - size))
            x = int(np.clip(np.median(xs) - rng.integers(margin, size - margin), 0, width - size))
        else:
            y, x = rng.integers(height - size + 1), rng.integers(width - size + 1)
        crop = window[:, y:y + size, x:x + size]
        out[i] = crop[:, :, ::-1] if rng.random() < 0.5 else crop
    return torch.from_numpy(out).permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1.0)


def latent_shape_cells(pool: ClipPool, scale: tuple[int, int, int], chunk: int = 64) -> torch.Tensor:
    """bool (N, F', H', W'): the video latent cells (frame 0 alone, then `scale[0]` frames per latent frame;
    `scale[1]` x `scale[2]` pixel blocks, as `camera_guide.latent_validity` groups them) showing the clip's shape."""
    cells = []
    for start in range(0, len(pool), chunk):
        masks = torch.from_numpy(_shape_mask(np.asarray(pool.frames[start:start + chunk])))  # (n, F, H, W)
        cells += [latent_validity(mask.float(), scale) > 0 for mask in masks]
    return torch.stack(cells)


def foreground_weight(pixels: torch.Tensor, boost: float = 4.0, reach: int = 0) -> torch.Tensor:
    """(B, 1, F, H, W) loss weight 1 + boost on the shape's pixels: saturated or bright (backgrounds are neither).

    `reach` > 0 also weighs the pixels the shape covers up to `reach` frames earlier or later, so a shape drawn a
    frame or two before it appears (or a trail left where it was) costs as much as a wrong shape pixel."""
    rgb = (pixels + 1) * 127.5
    shape = _is_shape(rgb.amax(dim=1, keepdim=True), rgb.amin(dim=1, keepdim=True)).float()
    if reach:
        shape = F.max_pool3d(shape, (2 * reach + 1, 1, 1), stride=1, padding=(reach, 0, 0))
    return 1.0 + boost * shape
