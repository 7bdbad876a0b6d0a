"""Reading audio (wav, flac, mp3, aac, ogg/opus, the audio track of a video ...) with PyAV as float waveforms, and
writing FLAC.

Waveforms are float32 tensors (C, N) in [-1, 1] at the file's own sample rate; nothing is resampled or mixed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..models.optional_imports import require
from .errors import MediaReadError

if TYPE_CHECKING:
    import av

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aif",
                              ".aiff"})


@dataclass(frozen=True)
class DecodedAudio:
    """An audio stream: `waveform` (C, N) float32, `sample_rate` in Hz, `start` = time of the first sample (s)."""

    waveform: torch.Tensor
    sample_rate: int
    start: float = 0.0

    @property
    def seconds(self) -> float:
        return self.waveform.shape[-1] / self.sample_rate


def open_media(path: str | os.PathLike, what: str) -> av.container.InputContainer:
    """Open `path` with PyAV; MediaReadError naming the file when it is missing or not a media file."""
    av = pyav()
    if not os.path.isfile(path):
        raise MediaReadError(f"{what} file {os.fspath(path)!r} does not exist")
    try:
        return av.open(os.fspath(path))
    except av.error.FFmpegError as exc:
        raise MediaReadError(f"cannot read {os.fspath(path)!r} as {what}: {exc}") from exc


def pyav():
    """The `av` module (PyAV), or a MissingDependencyError naming the fix."""
    return require("av", "reading and writing media files (PyAV)")


def _stream_seconds(stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def decode_audio_stream(container: av.container.InputContainer, stream, path: str = "") -> DecodedAudio:
    """Decode one audio stream of an open container to planar float32 (C, N).

    The decoder's last frame is padded for some codecs (AAC: to 1024 samples); the result is cut to the stream's
    declared duration when the container states one.
    """
    av = pyav()
    resampler = None
    chunks = []
    start = None
    try:
        for frame in container.decode(stream):
            if resampler is None:
                resampler = av.AudioResampler(format="fltp", layout=frame.layout.name, rate=frame.sample_rate)
                start = float(frame.time) if frame.time is not None else 0.0
            chunks += [f.to_ndarray() for f in resampler.resample(frame)]
        if resampler is not None:
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise MediaReadError(f"cannot decode the audio of {path!r}: {exc}") from exc
    if resampler is None or not chunks or sum(c.shape[-1] for c in chunks) == 0:
        raise MediaReadError(f"{path!r} has an audio stream without samples")
    sample_rate = int(resampler.rate)
    waveform = torch.from_numpy(np.concatenate(chunks, axis=-1).astype(np.float32, copy=False))
    declared = _stream_seconds(stream)
    if declared:
        waveform = waveform[:, : max(1, round(declared * sample_rate))]
    return DecodedAudio(waveform.contiguous(), sample_rate, start or 0.0)


def read_audio(path: str | os.PathLike) -> DecodedAudio:
    """The first audio stream of an audio or video file as float32 (C, N) at its own sample rate."""
    with open_media(path, "audio") as container:
        if not container.streams.audio:
            raise MediaReadError(f"{os.fspath(path)!r} has no audio stream")
        return decode_audio_stream(container, container.streams.audio[0], os.fspath(path))


def write_flac(path: str | os.PathLike, waveform: torch.Tensor, sample_rate: int) -> None:
    """(C, N) float waveform in [-1, 1] (clipped), C = 1 or 2 -> a 16-bit mono / stereo FLAC file."""
    av = pyav()
    layouts = {1: "mono", 2: "stereo"}
    if waveform.ndim != 2 or waveform.shape[0] not in layouts:
        raise ValueError(f"expected a mono or stereo (channels, samples) waveform, got {tuple(waveform.shape)}")
    samples = (waveform.detach().float().clamp(-1, 1) * 32767).round().to(torch.int16).T.contiguous().numpy()
    with av.open(os.fspath(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=int(sample_rate), layout=layouts[waveform.shape[0]])
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=stream.layout.name)
        frame.sample_rate = int(sample_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
