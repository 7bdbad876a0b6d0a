"""The audio-video offset at the start and at the end of a clip that is only ever seen a block at a time.

Keeps the first and the last `seconds` of the stream (the frames' luma, area-reduced to the size media.sync
analyses anyway, and the sound) and measures each window with media.sync.measure_offset, which sees the luma as a
grey picture (the luma weights sum to 1, and area reduction commutes with them, so it measures what it would on
the frames, up to rounding): memory is two small windows, whatever the clip's length.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .sync import ANALYSIS_SIZE, LUMA, SyncMeasurement, measure_offset


def _small_luma(frames: torch.Tensor) -> torch.Tensor:
    """(f, H, W, 3) -> (f, h, w, 1) luma with max(h, w) <= ANALYSIS_SIZE (area average; full size when small)."""
    y = (frames.detach().to("cpu", torch.float32) * torch.tensor(LUMA)).sum(-1)[:, None]
    scale = ANALYSIS_SIZE / max(y.shape[-2:])
    if scale < 1.0:
        y = F.interpolate(y, size=(max(1, round(y.shape[-2] * scale)), max(1, round(y.shape[-1] * scale))),
                          mode="area")
    return y.permute(0, 2, 3, 1).contiguous()


class SyncWindows:
    """`add(frames, audio)` blocks in order (audio exactly as long as its frames), then `measure()`."""

    def __init__(self, fps: float, sample_rate: int, seconds: float):
        self.fps, self.rate = float(fps), int(sample_rate)
        self.window = max(2, round(seconds * fps))
        self.frames_seen = 0
        self.head_frames, self.head_audio = [], []
        self.tail_frames: torch.Tensor | None = None
        self.tail_audio: torch.Tensor | None = None

    def _samples(self, first: int, last: int) -> int:
        return round(last * self.rate / self.fps) - round(first * self.rate / self.fps)

    def add(self, frames: torch.Tensor, audio: torch.Tensor) -> None:
        small, first = _small_luma(frames), self.frames_seen
        self.frames_seen += frames.shape[0]
        room = self.window - sum(f.shape[0] for f in self.head_frames)
        if room > 0:
            taken = min(room, small.shape[0])
            self.head_frames.append(small[:taken])
            self.head_audio.append(audio[:, :self._samples(first, first + taken)].clone())
        tail = small if self.tail_frames is None else torch.cat([self.tail_frames, small])
        sound = audio if self.tail_audio is None else torch.cat([self.tail_audio, audio.to(self.tail_audio.dtype)], -1)
        drop = max(0, tail.shape[0] - self.window)
        start = self.frames_seen - tail.shape[0]
        self.tail_frames = tail[drop:]
        self.tail_audio = sound[:, self._samples(start, start + drop):].clone()

    def measure(self) -> tuple[SyncMeasurement, SyncMeasurement]:
        """(offset over the first window, offset over the last window)."""
        if not self.frames_seen:
            raise ValueError("no frames were added")
        head = torch.cat(self.head_frames)
        head = measure_offset(head.expand(-1, -1, -1, 3), torch.cat(self.head_audio, -1), self.rate, self.fps)
        tail = measure_offset(self.tail_frames.expand(-1, -1, -1, 3), self.tail_audio, self.rate, self.fps)
        return head, tail
