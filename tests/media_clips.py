"""Test helpers for the media tests: synthetic flash + click clips and an mp4 prober (PyAV)."""
from __future__ import annotations

from dataclasses import dataclass

import av
import torch

FLASH_FRAMES = (9, 22, 37, 49, 66, 80)  # irregular, so no lag but the true one lines them all up


def flash_click_clip(shift_frames: int, fps: float = 24.0, sample_rate: int = 24000, frames: int = 97,
                     height: int = 40, width: int = 56, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Dark noisy frames with one-frame white flashes at FLASH_FRAMES, and stereo audio (faint noise) with a
    4 ms click at every flash time shifted by `shift_frames` frames (positive = audio late).
    Returns frames (F, H, W, 3) and waveform (2, round(F / fps * sample_rate))."""
    g = torch.Generator().manual_seed(seed)
    video = 0.1 + 0.01 * torch.rand(frames, height, width, 3, generator=g)
    for k in FLASH_FRAMES:
        video[k] = 0.95
    samples = round(frames / fps * sample_rate)
    audio = 0.005 * torch.randn(2, samples, generator=g)
    click = int(0.004 * sample_rate)
    decay = torch.exp(-torch.arange(click) / (0.001 * sample_rate))
    for k in FLASH_FRAMES:
        start = round((k + shift_frames) / fps * sample_rate)
        if 0 <= start < samples:
            length = min(click, samples - start)
            audio[:, start:start + length] += 0.8 * torch.randn(length, generator=g) * decay[:length]
    return video, audio


@dataclass
class Probe:
    video_codecs: list
    audio_codecs: list
    frames: int
    width: int
    height: int
    fps: float
    audio_samples: int
    sample_rate: int | None
    channels: int
    declared_audio_seconds: float | None
    metadata: dict


def probe(path) -> Probe:
    """Decode every video frame and audio sample of a file and report what is in it."""
    with av.open(str(path)) as container:
        video_codecs = [s.codec_context.name for s in container.streams.video]
        audio_codecs = [s.codec_context.name for s in container.streams.audio]
        video = container.streams.video[0]
        fps, width, height = float(video.average_rate), video.width, video.height
        metadata = dict(container.metadata)
        frames = sum(1 for _ in container.decode(video))
    samples, rate, channels, declared = 0, None, 0, None
    if audio_codecs:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                samples += frame.samples
                rate, channels = frame.sample_rate, len(frame.layout.channels)
            if stream.duration is not None:
                declared = float(stream.duration * stream.time_base)
    return Probe(video_codecs, audio_codecs, frames, width, height, fps, samples, rate, channels, declared,
                 metadata)
