"""LTX-2.3 vocoder: BigVGAN-v2 at 16 kHz followed by a bandwidth extension (BWE) to 48 kHz.

BWE: the 16 kHz waveform is zero-padded to a multiple of the hop (80), turned into a causal log-mel with the
checkpoint's stored STFT basis and mel filterbank, and fed to a second BigVGAN-v2 generator whose output (no
final activation) is a residual added to a Hann-windowed-sinc x3 upsampling of the 16 kHz waveform; the sum is
clamped to [-1, 1] and cut to 3x the 16 kHz length.

State-dict names (checkpoint keys with one `vocoder.` stripped): `vocoder.*`, `bwe_generator.*`,
`mel_stft.mel_basis`, `mel_stft.stft_fn.{forward,inverse}_basis`. The resampler filter is a non-persistent
buffer computed in code (`init_computed_buffers`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .bigvgan import BigVGanGenerator
from .hifigan import stereo_mel_to_channels
from .vocoder_config import VocoderConfig

LOG_MEL_FLOOR = 1e-5
# Hann-windowed sinc interpolation with the parameters of torchaudio.functional.resample's defaults.
RESAMPLE_ROLLOFF = 0.99
RESAMPLE_ZERO_CROSSINGS = 6


class CausalStft(nn.Module):
    """Magnitude STFT as a strided conv with the stored basis (DFT rows x window, real parts then imaginary).

    Left-only padding of n_fft - hop makes every frame depend on past samples only.
    (N, 1, S) -> (N, n_fft // 2 + 1, S // hop). `inverse_basis` is stored in the checkpoint but unused here.
    """

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        self.hop_length = hop_length
        self.left_pad = max(0, n_fft - hop_length)
        rows = 2 * (n_fft // 2 + 1)
        self.register_buffer("forward_basis", torch.zeros(rows, 1, n_fft))
        self.register_buffer("inverse_basis", torch.zeros(rows, 1, n_fft))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        spec = F.conv1d(F.pad(y, (self.left_pad, 0)), self.forward_basis, stride=self.hop_length)
        real, imag = spec.chunk(2, dim=1)
        return torch.sqrt(real**2 + imag**2)


class CausalLogMel(nn.Module):
    """Natural-log mel of the causal STFT magnitude, floored at 1e-5; (N, 1, S) -> (N, num_mels, S // hop).

    `mel_basis` (num_mels, n_fft // 2 + 1) and the STFT basis are filled from the checkpoint.
    """

    def __init__(self, n_fft: int, hop_length: int, num_mels: int):
        super().__init__()
        self.stft_fn = CausalStft(n_fft, hop_length)
        self.register_buffer("mel_basis", torch.zeros(num_mels, n_fft // 2 + 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(self.mel_basis, self.stft_fn(y))
        return torch.log(torch.clamp(mel, min=LOG_MEL_FLOOR))


def hann_sinc_filter(ratio: int) -> torch.Tensor:
    """(1, 1, 2 * width * ratio + 1) float32 taps of the Hann-windowed sinc interpolator for x`ratio`, on CPU."""
    width = math.ceil(RESAMPLE_ZERO_CROSSINGS / RESAMPLE_ROLLOFF)
    kernel_size = 2 * width * ratio + 1
    time = (torch.arange(kernel_size, device="cpu") / ratio - width) * RESAMPLE_ROLLOFF
    clamped = time.clamp(-RESAMPLE_ZERO_CROSSINGS, RESAMPLE_ZERO_CROSSINGS)
    window = torch.cos(clamped * math.pi / RESAMPLE_ZERO_CROSSINGS / 2) ** 2
    return (torch.sinc(time) * window * RESAMPLE_ROLLOFF / ratio).view(1, 1, -1)


class HannSincUpsampler(nn.Module):
    """Integer-ratio band-limited upsampling, (B, C, L) -> (B, C, ratio * L), replicate-padded edges.

    The filter is a non-persistent buffer: not in the checkpoint, rebuilt by `init_computed_buffers`.
    """

    def __init__(self, ratio: int):
        super().__init__()
        self.ratio = ratio
        self.width = math.ceil(RESAMPLE_ZERO_CROSSINGS / RESAMPLE_ROLLOFF)
        kernel_size = 2 * self.width * ratio + 1
        self.crop_left = 2 * self.width * ratio
        self.crop_right = kernel_size - ratio
        self.register_buffer("filter", hann_sinc_filter(ratio).to(torch.get_default_device()), persistent=False)

    def init_computed_buffers(self, device: torch.device | str) -> None:
        """Materialize the filter (computed on CPU in float32, then moved) after a meta-device build."""
        self.filter = hann_sinc_filter(self.ratio).to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.width, self.width), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels)
        return x[..., self.crop_left:-self.crop_right]


class BweVocoder(nn.Module):
    """LTX-2.3 vocoder: log-mel (B, 2, T, 64) -> waveform (B, 2, T * samples_per_frame) in [-1, 1] at 48 kHz.

    Computes in float32 whatever the caller's autocast state (weights must be float32).
    """

    def __init__(self, config: VocoderConfig):
        super().__init__()
        if config.bwe is None or config.bwe_generator is None:
            raise ValueError("BweVocoder needs a vocoder config with a 'bwe' section (LTX-2.3 layout)")
        self.config = config
        self.sample_rate = config.sample_rate
        self.samples_per_frame = config.samples_per_frame
        bwe = config.bwe
        self.vocoder = BigVGanGenerator(config.generator)
        self.bwe_generator = BigVGanGenerator(config.bwe_generator)
        self.mel_stft = CausalLogMel(bwe.n_fft, bwe.hop_length, bwe.num_mels)
        self.resampler = HannSincUpsampler(bwe.upsample_ratio)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = stereo_mel_to_channels(log_mel)
        with torch.autocast(x.device.type, enabled=False):
            low = self.vocoder(x)
            batch, channels, length = low.shape
            hop = self.config.bwe.hop_length
            low = F.pad(low, (0, -length % hop))
            mel = self.mel_stft(low.reshape(batch * channels, 1, low.shape[-1]))
            residual = self.bwe_generator(mel.reshape(batch, channels * mel.shape[1], mel.shape[2]))
            out = torch.clamp(residual + self.resampler(low), -1, 1)
            return out[..., :length * self.config.bwe.upsample_ratio]
