"""Decoding a normalized latent with the diffusion decoder, as the official ``decode_video`` does.

1. A latent smaller than `config.min_latent_size` is edge-padded (time at the end, space centred); the pixels of
   the padding are cropped at the end, so the clip keeps (F' − 1)·8 + 1 frames of 32·H' x 32·W'.
2. The last latent frame is repeated `config.ghost_latent_frames` times (NATTEN's last-frame border) and stages
   1-3 run once on the whole volume.
3. Noise: one float32 ``torch.randn`` of the whole padded pixel canvas (B, 3, F, H, W) from the caller's
   generator; each tile takes its slice, edge-extended to its stage-5 canvas. A single-step x0 decoder instead
   draws each tile's noise in its stage-5 canvas shape from the same generator, in tile order.
4. Per tile: stage 4 (the tile holding the last frame keeps the repeated frames and crops them after stage 4),
   the stage-5 sampling loop, blending into the canvas; frames are yielded as soon as no later tile touches
   them.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from ..video_vae.vae import VideoVAEInputError
from .padding import append_last_frames, pad_to_min_latent, resize_axis
from .sampling import denoise, inference_timesteps
from .tiling import DecodeTile, DiffusionTiling, plan_tiles, summed_weights

if TYPE_CHECKING:
    from .model import DiffusionVideoDecoder


def check_latent(latent: torch.Tensor, channels: int) -> None:
    """Raise `VideoVAEInputError` unless `latent` is (B, channels, F', H', W') with every size >= 1."""
    if latent.ndim != 5 or latent.shape[1] != channels or min(latent.shape) < 1:
        raise VideoVAEInputError(
            f"the diffusion video decoder expects a latent (B, {channels}, F', H', W'), got {tuple(latent.shape)}")


def draw_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Standard normal float32 noise drawn on the generator's device (else `device`), moved to `device`."""
    source = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, dtype=torch.float32, device=source).to(device)


def decode_tile(decoder: DiffusionVideoDecoder, features: torch.Tensor, tile: DecodeTile,
                noise: torch.Tensor | None, generator: torch.Generator | None,
                timesteps: torch.Tensor) -> torch.Tensor:
    """Stages 4-5 of one tile -> float32 pixels (B, 3, f, h, w) covering `tile.pixels`.

    features: stage-4 input of the whole volume, ghost frames included. noise: the canvas noise, or None to
    draw this tile's own."""
    config = decoder.config
    t, h, w = tile.stage4
    stop = features.shape[1] if tile.trailing else t.stop
    context = decoder.stage_4(features[:, t.start:stop, h, w], drop_first_frame=tile.is_origin,
                              crop_ghost=tile.trailing)
    p = config.patch_size
    shape = (features.shape[0], config.out_channels, context.shape[1], context.shape[2] * p, context.shape[3] * p)
    if noise is None:
        x_t = draw_noise(shape, generator, context.device)
    else:
        x_t = noise[:, :, tile.pixels[0], tile.pixels[1], tile.pixels[2]]
        for dim, mode in ((2, "end"), (3, "centre"), (4, "centre")):
            x_t = resize_axis(x_t, dim, shape[dim], mode)[0]
    pixels = denoise(lambda x, timestep: decoder.predict(context, x, timestep), x_t, timesteps,
                     config.model_output_type)
    for dim, (mode, span) in enumerate(zip(("end", "centre", "centre"), tile.pixels), start=2):
        pixels = resize_axis(pixels, dim, span.stop - span.start, mode)[0]
    return pixels


class _FrameAccumulator:
    """Blended canvas frames [start, start + n) not yet emitted, (B, C, n, H, W) float32."""

    def __init__(self, batch: int, channels: int, height: int, width: int, device: torch.device):
        self.start = 0
        self.frames = torch.zeros(batch, channels, 0, height, width, device=device)

    def add(self, pixels: torch.Tensor, tile: DecodeTile) -> None:
        span = tile.pixels[0]
        missing = span.stop - self.start - self.frames.shape[2]
        if missing > 0:
            pad = self.frames.new_zeros(*self.frames.shape[:2], missing, *self.frames.shape[3:])
            self.frames = torch.cat([self.frames, pad], dim=2)
        wt, wh, ww = (weights.to(pixels.device) for weights in tile.weights)
        weighted = pixels * wt[:, None, None] * wh[:, None] * ww
        self.frames[:, :, span.start - self.start:span.stop - self.start, tile.pixels[1], tile.pixels[2]] += weighted

    def take(self, stop: int) -> tuple[int, torch.Tensor]:
        """Remove and return (first frame index, frames up to canvas frame `stop`)."""
        count = max(0, stop - self.start)
        start, done = self.start, self.frames[:, :, :count]
        self.frames = self.frames[:, :, count:].clone()
        self.start += count
        return start, done


def _temporal_groups(tiles: list[DecodeTile]) -> list[list[DecodeTile]]:
    groups: list[list[DecodeTile]] = []
    for tile in tiles:
        if groups and groups[-1][0].pixels[0] == tile.pixels[0]:
            groups[-1].append(tile)
        else:
            groups.append([tile])
    return groups


def iter_decode_pixels(decoder: DiffusionVideoDecoder, latent: torch.Tensor,
                       generator: torch.Generator | None = None, tiling: DiffusionTiling | None = None,
                       num_steps: int | None = None) -> Iterator[torch.Tensor]:
    """Normalized latent (B, C, F', H', W') -> float32 pixel chunks (B, 3, f, H, W), consecutive in time, together
    (F' − 1)·8 + 1 frames of 32·H' x 32·W' (the config's scale factors in general), about [−1, 1], unclamped.

    generator: draws the decode noise (None: torch's global generator). tiling: None decodes stages 4-5 in one
    tile. num_steps: sampling steps (None: the file's ``default_num_inference_steps``)."""
    config = decoder.config
    check_latent(latent, config.latent_channels)
    device = decoder.device
    content = config.pixel_size(tuple(latent.shape[2:]))
    padded, (pad_h, pad_w) = pad_to_min_latent(latent.to(device=device, dtype=torch.float32), config.min_latent_size)
    canvas = config.pixel_size(tuple(padded.shape[2:]))
    stage4_thw = config.stage4_size(tuple(padded.shape[2:]))
    tiles = plan_tiles(config, stage4_thw, tiling)
    sums = summed_weights(tiles, canvas)
    features = decoder.stages_1_to_3(append_last_frames(padded, config.ghost_latent_frames))
    timesteps = inference_timesteps(config.default_num_steps if num_steps is None else num_steps).to(device)
    batch, channels = latent.shape[0], config.out_channels
    per_tile_noise = len(timesteps) == 1 and config.model_output_type == "x0"
    noise = None if per_tile_noise else draw_noise((batch, channels, *canvas), generator, device)
    top, left = pad_h * config.scale_factors[1], pad_w * config.scale_factors[2]
    accumulator = _FrameAccumulator(batch, channels, canvas[1], canvas[2], device)
    groups = _temporal_groups(tiles)
    for index, group in enumerate(groups):
        for tile in group:
            accumulator.add(decode_tile(decoder, features, tile, noise, generator, timesteps), tile)
        final = groups[index + 1][0].pixels[0].start if index + 1 < len(groups) else canvas[0]
        start, frames = accumulator.take(final)
        frames = frames[:, :, :max(0, content[0] - start)]
        if frames.shape[2] == 0:
            continue
        if sums is not None:
            wt = sums[0][start:start + frames.shape[2]].to(device)
            frames = frames / (wt[:, None, None] * sums[1].to(device)[:, None] * sums[2].to(device))
        yield frames[:, :, :, top:top + content[1], left:left + content[2]].contiguous()
