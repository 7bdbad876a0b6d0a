"""LTX-2 vocoder: HiFi-GAN (ResBlock1) from stereo log-mel to a stereo waveform (24 kHz in the 19B model).

State-dict names follow the released checkpoints with `vocoder.` stripped: `conv_pre`, `ups.N`,
`resblocks.N.convs{1,2}.M`, `conv_post`. Also home of the pieces BigVGAN shares (input layout, padding,
upsampling stack, block averaging, output activation).
"""
from __future__ import annotations

from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .vocoder_config import STEREO_MEL_CHANNELS, GeneratorConfig

LRELU_SLOPE = 0.1  # inside the upsampling stack; the last activation uses LeakyReLU's default 0.01


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Symmetric padding that keeps the length of a stride-1 conv with an odd kernel."""
    return (kernel_size * dilation - dilation) // 2


def stereo_mel_to_channels(log_mel: torch.Tensor) -> torch.Tensor:
    """(B, 2, T, 64) natural-log mel -> float32 (B, 128, T), channel = stereo_channel * 64 + mel_bin."""
    if log_mel.dim() != 4 or log_mel.shape[1] != 2 or 2 * log_mel.shape[3] != STEREO_MEL_CHANNELS:
        raise ValueError(f"vocoder input must be a stereo log-mel (B, 2, T, 64), got {tuple(log_mel.shape)}")
    batch, _, frames, _ = log_mel.shape
    return log_mel.to(torch.float32).transpose(2, 3).reshape(batch, STEREO_MEL_CHANNELS, frames)


def upsample_layers(config: GeneratorConfig) -> nn.ModuleList:
    """Transposed convs halving the channels; stage i multiplies the length by upsample_rates[i] exactly."""
    return nn.ModuleList(
        nn.ConvTranspose1d(config.channels(i - 1), config.channels(i), kernel, rate, padding=(kernel - rate) // 2)
        for i, (rate, kernel) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes))
    )


def apply_final_activation(x: torch.Tensor, kind: str | None) -> torch.Tensor:
    """The generator's output activation: "tanh", "clamp" to [-1, 1], or None (identity)."""
    if kind == "tanh":
        return torch.tanh(x)
    if kind == "clamp":
        return x.clamp(-1, 1)
    return x


def mean_of_blocks(blocks: Iterable[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Average of parallel residual blocks applied to the same input (stacked, then mean as upstream)."""
    return torch.stack([block(x) for block in blocks], dim=0).mean(dim=0)


class ResBlock1(nn.Module):
    """Three (LeakyReLU -> dilated conv -> LeakyReLU -> conv) residual units; (B, C, L) -> (B, C, L).

    "same" padding as upstream: symmetric for odd kernels, one more sample on the right for even ones.
    """

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding="same") for d in dilations
        )
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding="same") for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2):
            h = conv2(F.leaky_relu(conv1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            x = h + x
        return x


class HifiGanVocoder(nn.Module):
    """LTX-2 vocoder: log-mel (B, 2, T, 64) -> waveform (B, 2, T * samples_per_frame) in (-1, 1) (see
    `GeneratorConfig.samples_per_frame` for kernels that lengthen it).

    Computes in float32 whatever the caller's autocast state (weights must be float32).
    """

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        if config.resblock != "1":
            raise ValueError(f"HiFi-GAN vocoder needs resblock '1', got {config.resblock!r}")
        self.config = config
        self.sample_rate = config.output_sampling_rate
        self.samples_per_frame = config.samples_per_frame
        self.conv_pre = nn.Conv1d(STEREO_MEL_CHANNELS, config.upsample_initial_channel, 7, padding=3)
        self.ups = upsample_layers(config)
        self.resblocks = nn.ModuleList(
            ResBlock1(config.channels(i), kernel, dilations)
            for i in range(len(config.upsample_rates))
            for kernel, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes)
        )
        self.conv_post = nn.Conv1d(config.final_channels, 2, 7, padding=3, bias=config.use_bias_at_final)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        x = stereo_mel_to_channels(log_mel)
        with torch.autocast(x.device.type, enabled=False):
            x = self.conv_pre(x)
            per_stage = len(self.config.resblock_kernel_sizes)
            for i, up in enumerate(self.ups):
                x = up(F.leaky_relu(x, LRELU_SLOPE))
                x = mean_of_blocks(self.resblocks[i * per_stage:(i + 1) * per_stage], x)
            x = self.conv_post(F.leaky_relu(x))
            return apply_final_activation(x, self.config.final_activation)
