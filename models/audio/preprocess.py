"""Audio front end of the LTX-2 audio VAE: waveform -> log-mel spectrogram, and input preparation.

The mel front end follows the official encoder exactly: resample to the VAE rate (16 kHz) with
`torchaudio.functional.resample` defaults, magnitude mel spectrogram (Hann window, centered with reflect padding,
Slaney mel scale and Slaney filter normalization), then `log(max(mel, 1e-5))`. No DC removal and no peak
normalization. Layout of a log-mel: (B, C, T, n_mels) with T = 1 + N_16k // hop.

The preparation helpers turn arbitrary user audio into what the stereo encoder takes: float32 (B, 2, N), an
optional fixed duration.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from ..optional_imports import require

LOG_MEL_FLOOR = 1e-5

# Stereo downmix coefficients per input channel count, in the WAVE/ffmpeg default channel order. Each row is
# (left weight, right weight) of one input channel, before normalization. Center and surround channels enter
# both sides at 1/sqrt(2) (ITU-R BS.775); LFE is dropped. Each output side is then divided by the sum of its
# weights so that a full-scale signal present in every channel cannot clip.
_HALF_POWER = 1.0 / math.sqrt(2.0)
STEREO_DOWNMIX_LAYOUTS: dict[int, tuple[str, tuple[tuple[float, float], ...]]] = {
    3: ("FL FR FC", ((1, 0), (0, 1), (_HALF_POWER, _HALF_POWER))),
    4: ("FL FR BL BR", ((1, 0), (0, 1), (_HALF_POWER, 0), (0, _HALF_POWER))),
    5: ("FL FR FC BL BR", ((1, 0), (0, 1), (_HALF_POWER, _HALF_POWER), (_HALF_POWER, 0), (0, _HALF_POWER))),
    6: ("5.1: FL FR FC LFE BL BR",
        ((1, 0), (0, 1), (_HALF_POWER, _HALF_POWER), (0, 0), (_HALF_POWER, 0), (0, _HALF_POWER))),
    8: ("7.1: FL FR FC LFE BL BR SL SR",
        ((1, 0), (0, 1), (_HALF_POWER, _HALF_POWER), (0, 0), (_HALF_POWER, 0), (0, _HALF_POWER),
         (_HALF_POWER, 0), (0, _HALF_POWER))),
}


@dataclass(frozen=True)
class MelFrontEndConfig:
    """Signal parameters of the audio VAE front end (from `config["audio_vae"]`; defaults = released values)."""

    sample_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    f_min: float = 0.0
    f_max: float = 8000.0

    @classmethod
    def from_config(cls, audio_vae_config: dict) -> "MelFrontEndConfig":
        """Build from the checkpoint's decoded `config["audio_vae"]` dict."""
        params = audio_vae_config.get("model", {}).get("params", {})
        ddconfig = params.get("ddconfig", {})
        pre = audio_vae_config.get("preprocessing", {})
        stft, mel = pre.get("stft", {}), pre.get("mel", {})
        n_fft = int(stft.get("filter_length", cls.n_fft))
        return cls(
            sample_rate=int(params.get("sampling_rate", pre.get("audio", {}).get("sampling_rate", cls.sample_rate))),
            n_fft=n_fft,
            win_length=int(stft.get("win_length", n_fft)),
            hop_length=int(stft.get("hop_length", cls.hop_length)),
            n_mels=int(ddconfig.get("mel_bins", mel.get("n_mel_channels", cls.n_mels))),
            f_min=float(mel.get("mel_fmin", cls.f_min)),
            f_max=float(mel.get("mel_fmax", cls.f_max)),
        )

    def mel_frames(self, num_samples: int) -> int:
        """Mel frames for `num_samples` samples at `sample_rate` (centered STFT)."""
        return 1 + num_samples // self.hop_length


def _check_waveform(waveform: torch.Tensor, what: str = "waveform") -> None:
    if not isinstance(waveform, torch.Tensor) or waveform.ndim != 3:
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise ValueError(f"{what} must be a tensor (batch, channels, samples), got {shape}")
    if not waveform.is_floating_point():
        raise ValueError(f"{what} must be floating point in [-1, 1], got dtype {waveform.dtype}")


def _integral_rate(sample_rate: float, what: str = "sample_rate") -> int:
    if isinstance(sample_rate, bool) or not float(sample_rate).is_integer() or sample_rate <= 0:
        raise ValueError(f"{what} must be a positive whole number of Hz, got {sample_rate!r}")
    return int(sample_rate)


def resample(waveform: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
    """Resample (..., N) from `sample_rate` to `target_rate` Hz (torchaudio sinc, Hann, width 6, rolloff 0.99)."""
    src, dst = _integral_rate(sample_rate), _integral_rate(target_rate, "target_rate")
    if src == dst:
        return waveform
    return require("torchaudio", "resampling audio").functional.resample(waveform, src, dst)


@functools.lru_cache(maxsize=8)
def _mel_transform(cfg: MelFrontEndConfig) -> torch.nn.Module:
    torchaudio = require("torchaudio", "the audio encoder's mel spectrogram")
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=cfg.sample_rate, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
        f_min=cfg.f_min, f_max=cfg.f_max, n_mels=cfg.n_mels, window_fn=torch.hann_window, power=1.0,
        center=True, pad_mode="reflect", norm="slaney", mel_scale="slaney",
    )


def log_mel_spectrogram(waveform: torch.Tensor, cfg: MelFrontEndConfig = MelFrontEndConfig()) -> torch.Tensor:
    """Log-mel of (B, C, N) audio already at `cfg.sample_rate` -> float32 (B, C, T, n_mels)."""
    _check_waveform(waveform)
    x = waveform.to(torch.float32)
    transform = _mel_transform(cfg).to(x.device)
    mel = transform(x)  # (B, C, n_mels, T) magnitude
    return torch.log(torch.clamp(mel, min=LOG_MEL_FLOOR)).permute(0, 1, 3, 2).contiguous()


def waveform_to_log_mel(
    waveform: torch.Tensor, sample_rate: int, cfg: MelFrontEndConfig = MelFrontEndConfig()
) -> torch.Tensor:
    """(B, C, N) float audio at `sample_rate` Hz -> float32 log-mel (B, C, T, n_mels) at `cfg.sample_rate`.

    Channels are kept as they are (the stereo encoder needs C = 2: see `prepare_audio`).
    """
    _check_waveform(waveform)
    x = resample(waveform.to(torch.float32), sample_rate, cfg.sample_rate)
    return log_mel_spectrogram(x, cfg)


def _as_batched(waveform: torch.Tensor) -> torch.Tensor:
    """(N,), (C, N) or (B, C, N) -> (B, C, N)."""
    if not isinstance(waveform, torch.Tensor) or waveform.ndim not in (1, 2, 3):
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise ValueError(f"audio must be a tensor (samples,), (channels, samples) or (batch, channels, samples), "
                         f"got {shape}")
    while waveform.ndim < 3:
        waveform = waveform.unsqueeze(0)
    if waveform.shape[1] == 0 or waveform.shape[2] == 0:
        raise ValueError(f"audio has no channels or no samples: shape {tuple(waveform.shape)}")
    return waveform


def _to_float(waveform: torch.Tensor) -> torch.Tensor:
    """Integer PCM -> float32 in [-1, 1) (divided by 2^(bits-1)); floating input -> float32 unchanged."""
    if waveform.is_floating_point():
        return waveform.to(torch.float32)
    if waveform.dtype in (torch.int16, torch.int32, torch.int8):
        return waveform.to(torch.float32) / float(torch.iinfo(waveform.dtype).max + 1)
    if waveform.dtype == torch.uint8:  # 8-bit WAV: unsigned, silence at 128
        return (waveform.to(torch.float32) - 128.0) / 128.0
    raise ValueError(f"audio dtype {waveform.dtype} is not supported (use float, int8/16/32 or uint8 PCM)")


def stereo_downmix_matrix(num_channels: int) -> torch.Tensor:
    """(num_channels, 2) float32 matrix M with stereo = M^T @ channels.

    1 channel: duplicated to both sides. 2: identity. 3/4/5/6 (5.1)/8 (7.1) channels: `STEREO_DOWNMIX_LAYOUTS`
    (normalized so each side's weights sum to 1). Any other count: every channel weighs 1/C on both sides.
    """
    if num_channels < 1:
        raise ValueError(f"need at least one audio channel, got {num_channels}")
    if num_channels == 1:
        return torch.ones(1, 2)
    if num_channels == 2:
        return torch.eye(2)
    if num_channels in STEREO_DOWNMIX_LAYOUTS:
        weights = torch.tensor(STEREO_DOWNMIX_LAYOUTS[num_channels][1], dtype=torch.float64)
        return (weights / weights.sum(dim=0, keepdim=True)).to(torch.float32)
    return torch.full((num_channels, 2), 1.0 / num_channels)


def to_stereo(waveform: torch.Tensor) -> torch.Tensor:
    """Up/down-mix (B, C, N) float audio to (B, 2, N) with `stereo_downmix_matrix(C)`."""
    _check_waveform(waveform)
    channels = waveform.shape[1]
    if channels == 2:
        return waveform
    if channels == 1:
        return waveform.expand(-1, 2, -1).contiguous()
    matrix = stereo_downmix_matrix(channels).to(device=waveform.device, dtype=waveform.dtype)
    return torch.einsum("bcn,cs->bsn", waveform, matrix)


def fit_duration(waveform: torch.Tensor, sample_rate: int, seconds: float) -> torch.Tensor:
    """Trim the end of, or zero-pad at the end, (..., N) audio to round(seconds * sample_rate) samples."""
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"duration must be a positive number of seconds, got {seconds!r}")
    target = round(seconds * _integral_rate(sample_rate))
    if target < 1:
        raise ValueError(f"duration {seconds} s is shorter than one sample at {sample_rate} Hz")
    length = waveform.shape[-1]
    if length >= target:
        return waveform[..., :target]
    return torch.nn.functional.pad(waveform, (0, target - length))


def prepare_audio(
    waveform: torch.Tensor, sample_rate: int, seconds: float | None = None, channels: int = 2
) -> torch.Tensor:
    """Any user audio -> float32 (B, `channels`, N) at the same `sample_rate`, ready for `encode_waveform`.

    Accepts (N,), (C, N) or (B, C, N), float in [-1, 1] or integer PCM. Channels: mono is duplicated, more
    channels are mixed down (`stereo_downmix_matrix`); `channels` may be 1 (mean of the stereo mix) or 2.
    With `seconds`, trims or zero-pads the end to round(seconds * sample_rate) samples.
    """
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    _integral_rate(sample_rate)
    x = _as_batched(waveform)
    x = to_stereo(_to_float(x))
    if channels == 1:
        x = x.mean(dim=1, keepdim=True)
    if seconds is not None:
        x = fit_duration(x, sample_rate, seconds)
    return x
