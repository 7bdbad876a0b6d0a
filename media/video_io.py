"""Reading videos (frames + audio + fps) and writing H.264 + AAC mp4 files with PyAV.

Frames are ComfyUI IMAGE tensors (F, H, W, 3) float32 in 0..1; audio is (C, N) float32 in [-1, 1].

Writing (`write_mp4`):
* video: libx264, yuv420p, constant frame rate `fps` (as a fraction with denominator <= 1001, so 24000/1001 stays
  exact), quality `crf`. yuv420p needs even sizes: an odd height or width is padded by repeating the last row /
  column (the file is then one pixel larger than the frames; `Mp4Info` says so).
* audio: AAC, trimmed or zero-padded at the end to exactly round(F / fps * sample_rate) samples before encoding,
  so it lasts as long as the video. Mono stays mono, stereo stays stereo, more channels are mixed down to stereo;
  a sample rate AAC cannot store is resampled to 48 kHz. The encoder pads its last frame to 1024 samples, so a
  decoder may hand out up to 1023 samples more (the container records the exact duration).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..models.audio.preprocess import fit_duration, resample, to_stereo
from .audio_io import decode_audio_stream, open_media, pyav
from .errors import MediaReadError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg", ".ts"})
AAC_FRAME_SAMPLES = 1024
AAC_SAMPLE_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000,
                              7350})
FALLBACK_SAMPLE_RATE = 48000
MAX_RATE_DENOMINATOR = 1001
FRAMES_PER_CHUNK = 16  # frames converted to uint8 at once when writing


@dataclass(frozen=True)
class VideoClip:
    """Decoded video: `frames` (F, H, W, 3) float32 0..1, `fps` of those frames, `audio` (C, N) float32 aligned so
    that sample 0 plays with frame 0 (None when the file has no audio), `sample_rate` in Hz (None without audio)."""

    frames: torch.Tensor
    fps: float
    audio: torch.Tensor | None
    sample_rate: int | None


@dataclass(frozen=True)
class Mp4Info:
    """What `write_mp4` wrote: frame count and encoded size, audio samples and rate (0 / None without audio)."""

    path: str
    frames: int
    width: int
    height: int
    fps: Fraction
    audio_samples: int
    sample_rate: int | None
    channels: int


# --- reading ---------------------------------------------------------------------------------------------------


def _stream_fps(stream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def _decode_frames(container, stream, path: str, skip: int, every: int, limit: int) -> tuple[list, float | None]:
    """uint8 (H, W, 3) arrays of the selected frames and the time of the first decoded frame."""
    av = pyav()
    frames, first_time, index = [], None, 0
    try:
        for frame in container.decode(stream):
            if first_time is None:
                first_time = float(frame.time) if frame.time is not None else 0.0
            if index >= skip and (index - skip) % every == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
                if limit and len(frames) >= limit:
                    break
            index += 1
    except av.error.FFmpegError as exc:
        raise MediaReadError(f"cannot decode the video of {path!r}: {exc}") from exc
    return frames, first_time


def _align_audio(audio: torch.Tensor, sample_rate: int, start: float, begin: float, seconds: float) -> torch.Tensor:
    """Samples of `audio` (starting at time `start`) covering [begin, begin + seconds), zero-filled where missing."""
    first = round((begin - start) * sample_rate)
    count = max(1, round(seconds * sample_rate))
    out = torch.zeros(audio.shape[0], count, dtype=torch.float32)
    lo, hi = max(first, 0), min(first + count, audio.shape[1])
    if hi > lo:
        out[:, lo - first: hi - first] = audio[:, lo:hi]
    return out


def read_video(path: str | os.PathLike, frame_limit: int = 0, skip_first_frames: int = 0,
               select_every_nth: int = 1) -> VideoClip:
    """Frames, fps and audio of a video file.

    Frames `skip_first_frames`, then every `select_every_nth`-th, at most `frame_limit` of them (0 = all). The fps
    returned is the file's divided by `select_every_nth`; the audio covers exactly the selected frames
    (from frame `skip_first_frames` for count · nth / file fps seconds).
    """
    if frame_limit < 0 or skip_first_frames < 0 or select_every_nth < 1:
        raise ValueError(f"need frame_limit >= 0, skip_first_frames >= 0 and select_every_nth >= 1, got "
                         f"{frame_limit}, {skip_first_frames}, {select_every_nth}")
    path = os.fspath(path)
    with open_media(path, "video") as container:
        if not container.streams.video:
            raise MediaReadError(f"{path!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        file_fps = _stream_fps(stream)
        if not file_fps > 0:
            raise MediaReadError(f"{path!r}: the video stream states no frame rate")
        arrays, video_start = _decode_frames(container, stream, path, skip_first_frames, select_every_nth,
                                             frame_limit)
    if not arrays:
        raise MediaReadError(f"{path!r}: no frames left after skipping {skip_first_frames} "
                             f"(select_every_nth {select_every_nth}, frame_limit {frame_limit})")
    frames = torch.from_numpy(np.stack(arrays)).to(torch.float32).div_(255.0)
    audio, sample_rate = None, None
    with open_media(path, "video") as container:
        if container.streams.audio:
            decoded = decode_audio_stream(container, container.streams.audio[0], path)
            begin = (video_start or 0.0) + skip_first_frames / file_fps
            seconds = len(arrays) * select_every_nth / file_fps
            audio = _align_audio(decoded.waveform, decoded.sample_rate, decoded.start, begin, seconds)
            sample_rate = decoded.sample_rate
    return VideoClip(frames, file_fps / select_every_nth, audio, sample_rate)


# --- writing ---------------------------------------------------------------------------------------------------


def check_frames(frames, name: str = "frames") -> None:
    """ValueError (naming the input `name`) unless `frames` is an IMAGE tensor (F, H, W, 3) with F, H, W >= 1."""
    if not isinstance(frames, torch.Tensor) or frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"{name} must be an IMAGE tensor (frames, height, width, 3) with at least one frame, "
                         f"got {shape}")


def check_fps(fps) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    return float(fps)


def frame_rate_fraction(fps: float) -> Fraction:
    """`fps` as the fraction written to the file (24 -> 24/1, 23.976... -> 24000/1001, 12.5 -> 25/2)."""
    return Fraction(check_fps(fps)).limit_denominator(MAX_RATE_DENOMINATOR)


def even_size(height: int, width: int) -> tuple[int, int]:
    """The encoded size: each side rounded up to even (yuv420p)."""
    return height + height % 2, width + width % 2


def _to_uint8(frames: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(f, H, W, 3) float 0..1 -> (f, height, width, 3) uint8, padding the bottom / right by edge repetition."""
    x = frames.detach().to("cpu", torch.float32).clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8)
    pad_h, pad_w = height - x.shape[1], width - x.shape[2]
    if pad_h or pad_w:
        x = torch.cat([x, x[:, -1:].expand(-1, pad_h, -1, -1)], dim=1) if pad_h else x
        x = torch.cat([x, x[:, :, -1:].expand(-1, -1, pad_w, -1)], dim=2) if pad_w else x
    return x.contiguous().numpy()


def prepare_audio_for_aac(waveform: torch.Tensor, sample_rate: int, seconds: float) -> tuple[torch.Tensor, int]:
    """(C, N) audio -> (C', exactly round(seconds · rate')) float32 in [-1, 1] at an AAC rate, C' in {1, 2}."""
    if not isinstance(waveform, torch.Tensor) or waveform.ndim != 2 or 0 in waveform.shape:
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise ValueError(f"audio must be a non-empty waveform (channels, samples), got {shape}")
    x = waveform.detach().to("cpu", torch.float32)
    if x.shape[0] > 2:
        x = to_stereo(x[None])[0]
    rate = int(sample_rate)
    if rate not in AAC_SAMPLE_RATES:
        x, rate = resample(x, rate, FALLBACK_SAMPLE_RATE), FALLBACK_SAMPLE_RATE
    return fit_duration(x, rate, seconds).clamp(-1.0, 1.0).contiguous(), rate


def _mux(container, stream, frame) -> None:
    for packet in stream.encode(frame):
        container.mux(packet)


def write_mp4(path: str | os.PathLike, frames: torch.Tensor, fps: float, audio: torch.Tensor | None = None,
              sample_rate: int | None = None, crf: int = 19, metadata: dict[str, str] | None = None) -> Mp4Info:
    """Write frames (F, H, W, 3) 0..1 and optional audio (C, N) at `sample_rate` Hz to an mp4 at `path`;
    `metadata` becomes container tags (ComfyUI stores "prompt" / "workflow" JSON there)."""
    check_frames(frames)
    rate = frame_rate_fraction(fps)
    if not 0 <= int(crf) <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf}")
    count, height, width = frames.shape[0], *even_size(frames.shape[1], frames.shape[2])
    pcm, audio_rate = (None, None)
    if audio is not None:
        if not sample_rate or int(sample_rate) <= 0:
            raise ValueError(f"audio needs a positive sample rate, got {sample_rate!r}")
        pcm, audio_rate = prepare_audio_for_aac(audio, int(sample_rate), count / float(rate))
    av = pyav()
    options = {"movflags": "+faststart+use_metadata_tags"}
    with av.open(os.fspath(path), "w", format="mp4", options=options) as container:
        container.metadata.update({str(k): str(v) for k, v in (metadata or {}).items()})
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(int(crf))}
        sound = None
        if pcm is not None:
            layout = "mono" if pcm.shape[0] == 1 else "stereo"
            sound = container.add_stream("aac", rate=audio_rate, layout=layout)
        for start in range(0, count, FRAMES_PER_CHUNK):
            for offset, array in enumerate(_to_uint8(frames[start:start + FRAMES_PER_CHUNK], height, width)):
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                frame.pts = start + offset
                _mux(container, video, frame)
        _mux(container, video, None)
        if sound is not None:
            samples = pcm.numpy()
            for start in range(0, samples.shape[1], AAC_FRAME_SAMPLES):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + AAC_FRAME_SAMPLES]),
                                                   format="fltp", layout=sound.layout.name)
                frame.sample_rate, frame.pts = audio_rate, start
                _mux(container, sound, frame)
            _mux(container, sound, None)
    return Mp4Info(os.fspath(path), count, width, height, rate, 0 if pcm is None else pcm.shape[1], audio_rate,
                   0 if pcm is None else pcm.shape[0])
