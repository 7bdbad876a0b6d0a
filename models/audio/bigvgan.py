"""BigVGAN-v2 generator (LTX-2.3 vocoder and bandwidth-extension generator).

HiFi-GAN layout with AMP residual blocks: every activation is a Snake or SnakeBeta (config `activation`; log-scale
alpha/beta) wrapped in an anti-aliased `Activation1d` (x2 kaiser-sinc upsample -> Snake -> kaiser-sinc lowpass + x2
decimation). The activation before `conv_post` is a SnakeBeta whatever `activation` says, as upstream.
The 12-tap kaiser-sinc filters are persistent buffers (`*.upsample.filter`, `*.downsample.lowpass.filter`) and
are loaded from the checkpoint; building the module computes the same deterministic values.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .hifigan import apply_final_activation, mean_of_blocks, same_padding, upsample_layers
from .vocoder_config import STEREO_MEL_CHANNELS, GeneratorConfig

SNAKE_EPS = 1e-9
ANTI_ALIAS_RATIO = 2
ANTI_ALIAS_TAPS = 12


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc lowpass (cutoff and transition half-width in cycles/sample), unit DC gain.

    Returns (1, 1, kernel_size) float32 on CPU; even sizes are centred between two taps.
    """
    half = kernel_size // 2
    attenuation = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, periodic=False, beta=beta, device="cpu")
    if kernel_size % 2 == 0:
        time = torch.arange(-half, half, device="cpu") + 0.5
    else:
        time = torch.arange(kernel_size, device="cpu") - half
    arg = 2 * cutoff * time
    sinc = torch.where(arg == 0, torch.ones_like(arg), torch.sin(math.pi * arg) / math.pi / arg)
    taps = 2 * cutoff * window * sinc
    return (taps / taps.sum()).view(1, 1, kernel_size)


def _filter_on_default_device(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """The filter computed on CPU (cheap, exact), placed on the current default device (meta in meta builds)."""
    return kaiser_sinc_filter(cutoff, half_width, kernel_size).to(torch.get_default_device())


class Snake(nn.Module):
    """x + sin^2(e^alpha x) / (e^beta + 1e-9) per channel, (B, C, L) -> (B, C, L); `alpha` and, for SnakeBeta
    (`separate_amplitude`), `beta` are (C,) logs. Plain Snake divides by e^alpha instead."""

    def __init__(self, channels: int, separate_amplitude: bool):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels)) if separate_amplitude else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = torch.exp(self.alpha[None, :, None])
        amplitude = alpha if self.beta is None else torch.exp(self.beta[None, :, None])
        return x + (1.0 / (amplitude + SNAKE_EPS)) * torch.sin(x * alpha).pow(2)


class KaiserUpsample(nn.Module):
    """x`ratio` upsampling by a transposed depthwise conv with the kaiser-sinc filter; (B,C,L) -> (B,C,ratio*L)."""

    def __init__(self, ratio: int, kernel_size: int):
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.crop_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.crop_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", _filter_on_default_device(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels)
        return x[..., self.crop_left:-self.crop_right]


class KaiserLowpass(nn.Module):
    """Replicate-padded depthwise kaiser-sinc lowpass with decimation by `stride`; (B,C,L) -> (B,C,L/stride)."""

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int):
        super().__init__()
        self.stride = stride
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", _filter_on_default_device(cutoff, half_width, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=self.stride, groups=channels)


class KaiserDownsample(nn.Module):
    """Anti-aliased decimation by `ratio` (checkpoint name `downsample.lowpass.filter`)."""

    def __init__(self, ratio: int, kernel_size: int):
        super().__init__()
        self.lowpass = KaiserLowpass(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Activation1d(nn.Module):
    """Anti-aliased Snake / SnakeBeta: upsample x2, activate, lowpass and decimate x2; (B, C, L) -> (B, C, L)."""

    def __init__(self, channels: int, activation: str):
        super().__init__()
        self.act = Snake(channels, separate_amplitude=activation == "snakebeta")
        self.upsample = KaiserUpsample(ANTI_ALIAS_RATIO, ANTI_ALIAS_TAPS)
        self.downsample = KaiserDownsample(ANTI_ALIAS_RATIO, ANTI_ALIAS_TAPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


class AMPBlock1(nn.Module):
    """Three (act -> dilated conv -> act -> conv) residual units with anti-aliased Snake(Beta); keeps (B, C, L)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], activation: str):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d))
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=same_padding(kernel_size)) for _ in dilations
        )
        self.acts1 = nn.ModuleList(Activation1d(channels, activation) for _ in dilations)
        self.acts2 = nn.ModuleList(Activation1d(channels, activation) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2, act1, act2 in zip(self.convs1, self.convs2, self.acts1, self.acts2):
            x = x + conv2(act2(conv1(act1(x))))
        return x


class BigVGanGenerator(nn.Module):
    """Mel channels (B, 128, T) -> waveform (B, 2, T * samples_per_frame), float32.

    Output activation per config: clamp to [-1, 1] (LTX-2.3 vocoder) or none (BWE generator).
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        if config.resblock != "AMP1":
            raise ValueError(f"BigVGAN generator needs resblock 'AMP1', got {config.resblock!r}")
        self.config = config
        self.conv_pre = nn.Conv1d(STEREO_MEL_CHANNELS, config.upsample_initial_channel, 7, padding=3)
        self.ups = upsample_layers(config)
        self.resblocks = nn.ModuleList(
            AMPBlock1(config.channels(i), kernel, dilations, config.activation)
            for i in range(len(config.upsample_rates))
            for kernel, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)
        )
        self.act_post = Activation1d(config.final_channels, "snakebeta")
        self.conv_post = nn.Conv1d(config.final_channels, 2, 7, padding=3, bias=config.use_bias_at_final)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        per_stage = len(self.config.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = mean_of_blocks(self.resblocks[i * per_stage:(i + 1) * per_stage], up(x))
        x = self.conv_post(self.act_post(x))
        return apply_final_activation(x, self.config.final_activation)
