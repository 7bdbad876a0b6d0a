"""Measuring the audio-video offset of a clip from its own content (no model).

Two envelopes, one value per video frame:
* video: frame-motion energy m[t] = mean |Y[t] − Y[t−1]| of the luma (frames area-downsampled to at most
  `ANALYSIS_SIZE` pixels on the long side). A difference of two frames measures the change between them, so
  m[t] belongs to time t − ½ (frames): a one-frame flash at frame k gives m[k] = m[k+1], centred on k; a ball
  bouncing at frame k moves fastest just before and after it, again centred on k;
* audio: onset envelope = positive spectral flux of the mono mix over frame-aligned windows: window t holds the
  samples shown with frame t, [round(t·sr/fps), round((t+1)·sr/fps)); S[t] = log(max(|rfft(window t)|, floor))
  with the floor `FLUX_RANGE_DB` below the loudest bin of the clip (so codec pre-echo and faint noise make no
  onsets) and o_a[t] = mean over bins of max(S[t] − S[t−1], 0) (a click during frame t gives one peak, at t).
Both are standardised (zero mean, unit variance over the clip) and cross-correlated over lags −L..L (L from
`max_offset_ms`, at most half the clip): c(lag) = (1/F) Σ_t m[t]·o_a[t + lag]. Periodic content (a bouncing
ball, a drum beat) correlates almost equally at every period, so the chosen lag is the local maximum nearest to
lag 0 among those within `PEAK_TOLERANCE` of the highest. It is refined by a parabola through it and its two
neighbours (sub-frame) and shifted by the ½ frame of m's time stamp. Positive offsets mean the audio is late
(an event is heard after it is seen). Confidence = the peak correlation clipped to 0..1 (0 when either stream is
constant).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ANALYSIS_SIZE = 128
LUMA = (0.299, 0.587, 0.114)
FLUX_RANGE_DB = 40.0
FRAMES_PER_CHUNK = 16
DEFAULT_MAX_OFFSET_MS = 1000.0
PEAK_TOLERANCE = 0.1  # local maxima at least 90 % of the highest compete; the nearest to lag 0 wins
MOTION_TIME_SHIFT = 0.5  # m[t] compares frames t−1 and t: it belongs to time t − ½


@dataclass(frozen=True)
class SyncMeasurement:
    """The measured offset: `offset_ms` / `offset_frames` (positive = audio late), `confidence` 0..1,
    `max_lag_frames` searched each way."""

    offset_ms: float
    offset_frames: float
    confidence: float
    max_lag_frames: int

    def describe(self) -> str:
        if self.confidence <= 0.0:
            return "audio-video offset: not measurable (no distinct motion or sound onsets to compare)"
        direction = "audio late" if self.offset_ms > 0 else "audio early" if self.offset_ms < 0 else "in sync"
        return (f"audio-video offset: {self.offset_ms:+.1f} ms ({self.offset_frames:+.2f} frames, {direction}); "
                f"confidence {self.confidence:.2f}")


def _luma_small(frames: torch.Tensor) -> torch.Tensor:
    """(f, H, W, 3) -> (f, h, w) luma, area-downsampled so that max(h, w) <= ANALYSIS_SIZE."""
    x = frames.detach().to("cpu", torch.float32)
    weights = torch.tensor(LUMA, dtype=torch.float32)
    y = (x * weights).sum(dim=-1)[:, None]
    scale = ANALYSIS_SIZE / max(y.shape[-2:])
    if scale < 1.0:
        size = (max(1, round(y.shape[-2] * scale)), max(1, round(y.shape[-1] * scale)))
        y = F.interpolate(y, size=size, mode="area")
    return y[:, 0]


def motion_energy(frames: torch.Tensor) -> torch.Tensor:
    """(F,) mean absolute luma difference to the previous frame (0 for frame 0) of frames (F, H, W, 3)."""
    energy = torch.zeros(frames.shape[0], dtype=torch.float32)
    previous = None
    for start in range(0, frames.shape[0], FRAMES_PER_CHUNK):
        luma = _luma_small(frames[start:start + FRAMES_PER_CHUNK])
        stacked = luma if previous is None else torch.cat([previous, luma])
        first = start + 1 if previous is None else start  # frame 0 has no previous frame
        energy[first: start + luma.shape[0]] = (stacked[1:] - stacked[:-1]).abs().mean(dim=(1, 2))
        previous = luma[-1:]
    return energy


def audio_onsets(waveform: torch.Tensor, sample_rate: int, fps: float, frame_count: int) -> torch.Tensor:
    """(frame_count,) positive spectral flux of (C, N) audio over windows aligned with the video frames."""
    mono = waveform.detach().to("cpu", torch.float32).reshape(-1, waveform.shape[-1]).mean(dim=0)
    bounds = [round(t * sample_rate / fps) for t in range(frame_count + 1)]
    length = max(1, max(b - a for a, b in zip(bounds[:-1], bounds[1:])))
    windows = torch.zeros(frame_count, length)
    for t in range(frame_count):
        segment = mono[bounds[t]: bounds[t + 1]]
        windows[t, : segment.shape[0]] = segment
    magnitude = torch.fft.rfft(windows, dim=-1).abs()
    floor = float(magnitude.max()) * 10.0 ** (-FLUX_RANGE_DB / 20.0)
    if floor <= 0.0:
        return torch.zeros(frame_count)
    spectra = torch.log(magnitude.clamp_min(floor))
    flux = torch.zeros(frame_count)
    flux[1:] = (spectra[1:] - spectra[:-1]).clamp_min(0.0).mean(dim=-1)
    return flux


def _standardised(x: torch.Tensor) -> torch.Tensor | None:
    x = x.double() - x.double().mean()
    norm = math.sqrt(float((x * x).mean()))
    return x / norm if norm > 1e-12 else None


def lagged_correlation(video: torch.Tensor, audio: torch.Tensor, max_lag: int) -> torch.Tensor:
    """(2·max_lag + 1,) c(lag) = (1/F) Σ_t v[t]·a[t + lag] of the standardised envelopes, lag = −max_lag..max_lag
    (zeros when either envelope is constant)."""
    n = video.shape[0]
    v, a = _standardised(video), _standardised(audio)
    if v is None or a is None:
        return torch.zeros(2 * max_lag + 1, dtype=torch.float64)
    values = [float((v[max(0, -lag): n - max(0, lag)] * a[max(0, lag): n - max(0, -lag)]).sum()) / n
              for lag in range(-max_lag, max_lag + 1)]
    return torch.tensor(values, dtype=torch.float64)


def _parabolic_peak(left: float, centre: float, right: float) -> float:
    """Sub-sample position (−0.5..0.5) of the vertex of the parabola through three equally spaced values."""
    curvature = left - 2.0 * centre + right
    if curvature >= 0.0:
        return 0.0
    return max(-0.5, min(0.5, 0.5 * (left - right) / curvature))


def _nearest_strong_peak(correlation: torch.Tensor, max_lag: int) -> int:
    """Index of the local maximum nearest to lag 0 (index `max_lag`) within PEAK_TOLERANCE of the highest."""
    highest = float(correlation.max())
    values = correlation.tolist()
    candidates = [i for i, value in enumerate(values)
                  if value >= highest - PEAK_TOLERANCE * abs(highest)
                  and (i == 0 or value >= values[i - 1]) and (i == len(values) - 1 or value >= values[i + 1])]
    return min(candidates, key=lambda i: (abs(i - max_lag), -values[i]))


def measure_offset(frames: torch.Tensor, waveform: torch.Tensor, sample_rate: int, fps: float,
                   max_offset_ms: float = DEFAULT_MAX_OFFSET_MS) -> SyncMeasurement:
    """Offset of audio (C, N) at `sample_rate` Hz against frames (F, H, W, 3) at `fps` (see the module doc)."""
    if not fps > 0 or not sample_rate > 0:
        raise ValueError(f"fps and sample_rate must be positive, got {fps} and {sample_rate}")
    count = frames.shape[0]
    max_lag = max(0, min(int(max_offset_ms * fps / 1000.0), count // 2))
    video = motion_energy(frames)
    audio = audio_onsets(waveform, int(sample_rate), float(fps), count)
    correlation = lagged_correlation(video, audio, max_lag)
    best = _nearest_strong_peak(correlation, max_lag)
    peak = float(correlation[best])
    if peak <= 0.0:
        return SyncMeasurement(0.0, 0.0, 0.0, max_lag)
    refine = 0.0
    if 0 < best < correlation.shape[0] - 1:
        refine = _parabolic_peak(float(correlation[best - 1]), peak, float(correlation[best + 1]))
    offset_frames = best - max_lag + refine + MOTION_TIME_SHIFT
    return SyncMeasurement(offset_frames * 1000.0 / fps, offset_frames, min(peak, 1.0), max_lag)
