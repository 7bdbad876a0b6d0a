"""Writing an H.264 + AAC mp4 a block of frames and sound at a time (long clips that never sit in memory whole).

The same encoding as media.video_io.write_mp4 (libx264 yuv420p at `crf`, odd sizes padded by one pixel, AAC in
1024-sample frames, container tags), but frames and samples are appended as they are made. Sound is buffered to
whole AAC frames; on close it is trimmed or zero-padded (within the last partial frame) to exactly
round(frames / fps * rate) samples, so it lasts as long as the video. Frames are numbered from 0 at the file's
frame rate and samples from 0 at its sample rate: the streams start together and never drift.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .audio_io import pyav
from .video_io import (
    AAC_FRAME_SAMPLES, AAC_SAMPLE_RATES, FRAMES_PER_CHUNK, Mp4Info, _mux, _to_uint8, check_frames, even_size,
    frame_rate_fraction,
)


class Mp4Stream:
    """`add_frames` / `add_audio` in any interleaving, then `close()` (or use it as a context manager; an error
    inside the block closes the file and deletes it). Sound: `channels` 1 or 2 at an AAC `sample_rate`, or none
    (`sample_rate` None)."""

    def __init__(self, path: str | os.PathLike, height: int, width: int, fps: float, sample_rate: int | None = None,
                 channels: int = 2, crf: int = 19, metadata: dict[str, str] | None = None):
        if sample_rate is not None and int(sample_rate) not in AAC_SAMPLE_RATES:
            raise ValueError(f"AAC cannot store {sample_rate} Hz sound: use one of "
                             f"{', '.join(map(str, sorted(AAC_SAMPLE_RATES)))}")
        if channels not in (1, 2):
            raise ValueError(f"sound must be mono or stereo, got {channels} channels")
        if not 0 <= int(crf) <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        self.path, self.rate = os.fspath(path), frame_rate_fraction(fps)
        self.frame_size = (height, width)
        self.height, self.width = even_size(height, width)
        self.sample_rate, self.channels = (None if sample_rate is None else int(sample_rate)), channels
        self.frames = self.samples = 0
        self._pending = np.zeros((channels, 0), dtype=np.float32)
        av = pyav()
        self._container = av.open(self.path, "w", format="mp4", options={"movflags": "+faststart+use_metadata_tags"})
        self._container.metadata.update({str(k): str(v) for k, v in (metadata or {}).items()})
        self._video = self._container.add_stream("libx264", rate=self.rate)
        self._video.width, self._video.height, self._video.pix_fmt = self.width, self.height, "yuv420p"
        self._video.options = {"crf": str(int(crf))}
        self._sound = None
        if self.sample_rate is not None:
            layout = "mono" if channels == 1 else "stereo"
            self._sound = self._container.add_stream("aac", rate=self.sample_rate, layout=layout)

    def add_frames(self, frames: torch.Tensor) -> None:
        """Append frames (F, H, W, 3) in 0..1 of the size the stream was opened with."""
        check_frames(frames)
        if tuple(frames.shape[1:3]) != self.frame_size:
            raise ValueError(f"frames are {frames.shape[2]}x{frames.shape[1]}, the stream "
                             f"{self.frame_size[1]}x{self.frame_size[0]}")
        av = pyav()
        for start in range(0, frames.shape[0], FRAMES_PER_CHUNK):
            for array in _to_uint8(frames[start:start + FRAMES_PER_CHUNK], self.height, self.width):
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                frame.pts = self.frames
                _mux(self._container, self._video, frame)
                self.frames += 1

    def add_audio(self, waveform: torch.Tensor) -> None:
        """Append sound (channels, N) in [-1, 1] (clipped) at the stream's sample rate."""
        if self._sound is None:
            raise ValueError("this stream was opened without sound")
        if waveform.ndim != 2 or waveform.shape[0] != self.channels:
            raise ValueError(f"sound must be ({self.channels}, samples), got {tuple(waveform.shape)}")
        samples = waveform.detach().to("cpu", torch.float32).clamp(-1.0, 1.0).numpy()
        self._pending = np.concatenate([self._pending, samples], axis=1)
        whole = self._pending.shape[1] // AAC_FRAME_SAMPLES * AAC_FRAME_SAMPLES
        self._encode(self._pending[:, :whole])
        self._pending = self._pending[:, whole:]

    def _encode(self, samples: np.ndarray) -> None:
        av = pyav()
        for start in range(0, samples.shape[1], AAC_FRAME_SAMPLES):
            block = np.ascontiguousarray(samples[:, start:start + AAC_FRAME_SAMPLES])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=self._sound.layout.name)
            frame.sample_rate, frame.pts = self.sample_rate, self.samples
            _mux(self._container, self._sound, frame)
            self.samples += block.shape[1]

    def close(self) -> Mp4Info:
        """Flush the encoders (the sound fitted to the frames' duration) and finish the file."""
        if self._container is None:
            raise ValueError(f"{self.path} is closed already")
        _mux(self._container, self._video, None)
        if self._sound is not None:
            target = round(self.frames / self.rate * self.sample_rate)
            missing = max(0, target - self.samples)
            tail = self._pending[:, :missing]
            if tail.shape[1] < missing:
                tail = np.pad(tail, ((0, 0), (0, missing - tail.shape[1])))
            if tail.shape[1]:
                self._encode(tail)
            _mux(self._container, self._sound, None)
        self._container.close()
        self._container = None
        return Mp4Info(self.path, self.frames, self.width, self.height, self.rate, self.samples, self.sample_rate,
                       self.channels if self._sound is not None else 0)

    def __enter__(self) -> Mp4Stream:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            if self._container is not None:
                self.close()
            return
        if self._container is not None:
            self._container.close()
            self._container = None
        if os.path.exists(self.path):
            os.remove(self.path)
