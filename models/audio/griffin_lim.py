"""Griffin-Lim vocoder: stereo log-mel -> waveform with no trained network (AVGen-Tiny's vocoder option).

The natural-log mel is exponentiated back to the magnitude mel of the audio VAE front end (Slaney-normalised
filters, power 1), mapped to a linear magnitude spectrogram by the stored pseudo-inverse of that filterbank
(negative values clipped), and given a phase by `n_iter` fast Griffin-Lim iterations starting from zero phase
(deterministic). Same interface as the generator vocoders: (B, 2, T, 64) -> (B, 2, T * hop_length) in [-1, 1].
"""
from __future__ import annotations

import torch
from torch import nn

from ..optional_imports import require
from .vocoder_config import STEREO_MEL_CHANNELS, GriffinLimConfig


def inverse_mel_basis(config: GriffinLimConfig) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) float32 pseudo-inverse of the front end's Slaney mel filterbank."""
    torchaudio = require("torchaudio", "the Griffin-Lim vocoder's mel filterbank")
    filters = torchaudio.functional.melscale_fbanks(
        config.n_fft // 2 + 1, config.mel_fmin, config.mel_fmax, config.n_mels, config.sampling_rate,
        norm="slaney", mel_scale="slaney",
    )  # (freqs, mels): mel = spectrum @ filters
    return torch.linalg.pinv(filters.double()).T.to(torch.float32).contiguous()


class GriffinLimVocoder(nn.Module):
    """Log-mel (B, 2, T, 64) -> waveform (B, 2, T * hop_length), float32 in [-1, 1].

    Checkpoint key (under `vocoder.`): `inverse_mel_basis` (n_fft/2 + 1, n_mels), equal to
    `inverse_mel_basis(config)`; a frozen parameter so the file records the filterbank it was trained with.
    """

    def __init__(self, config: GriffinLimConfig):
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.samples_per_frame = config.samples_per_frame
        basis = torch.empty(config.n_fft // 2 + 1, config.n_mels)
        if not basis.is_meta:  # a meta build (`build_on_meta`) gets its values from the checkpoint
            basis.copy_(inverse_mel_basis(config))
        self.inverse_mel_basis = nn.Parameter(basis, requires_grad=False)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        c = self.config
        if log_mel.dim() != 4 or log_mel.shape[1] != 2 or 2 * log_mel.shape[3] != STEREO_MEL_CHANNELS:
            raise ValueError(f"vocoder input must be a stereo log-mel (B, 2, T, 64), got {tuple(log_mel.shape)}")
        frames = log_mel.shape[2]
        with torch.autocast(log_mel.device.type, enabled=False):
            mel = log_mel.to(torch.float32).exp()  # (B, 2, T, mels)
            spectrum = (mel @ self.inverse_mel_basis.float().T).clamp_min(0.0).transpose(2, 3)  # (B, 2, F, T)
            window = torch.hann_window(c.win_length, device=mel.device)
            wave = require("torchaudio", "the Griffin-Lim vocoder").functional.griffinlim(
                spectrum, window, c.n_fft, c.hop_length, c.win_length, power=1.0, n_iter=c.n_iter,
                momentum=c.momentum, length=(frames - 1) * c.hop_length, rand_init=False,
            )  # a centred STFT of T frames spans (T - 1) hops; the last hop is silence
        return torch.nn.functional.pad(wave, (0, c.hop_length)).clamp(-1.0, 1.0)
