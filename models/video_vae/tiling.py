"""Tiled video decoding in space and time, blended with linear ramps, yielded progressively.

The latent is cut into overlapping tiles; each tile is decoded on its own (peak memory is that of one tile's
decoder activations plus one temporal tile of output pixels) and the tiles are blended with complementary
linear ramps over their overlaps, so the weights sum to one everywhere.

Geometry (latent units; scale factors (8, 32, 32) for the shipped VAEs):
* spatial tile [b, e) -> pixels [32b, 32e); an overlap of o latent rows is a ramp of 32·o pixels;
* temporal tile [b, e) -> pixels [8b, 1 + 8(e−1)). Every temporal tile after the first also decodes one extra
  latent frame in front (b−1) as context: its decoded first frame (a "first frame" of the decoder) gets weight
  0, and the ramp spans the 1 + 8·o shared pixel frames.
Frames are yielded as soon as no later tile touches them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .vae import VideoVAE


@dataclass(frozen=True)
class TilingOptions:
    """Tile sizes and overlaps in **latent** units; a tile size of None leaves that axis untiled.

    Defaults = the official ones: 768 px tiles with 64 px overlap, 80-frame tiles with 24-frame overlap.
    """

    spatial_tile: int | None = 24
    spatial_overlap: int = 2
    temporal_tile: int | None = 10
    temporal_overlap: int = 3

    def __post_init__(self):
        for name, tile, overlap in (("spatial", self.spatial_tile, self.spatial_overlap),
                                    ("temporal", self.temporal_tile, self.temporal_overlap)):
            if tile is not None and (tile < 1 or overlap < 0 or 2 * overlap >= tile):
                raise ValueError(
                    f"{name} tiling needs tile >= 1 and 0 <= overlap < tile / 2 (latent units), "
                    f"got tile {tile}, overlap {overlap}"
                )

    @classmethod
    def from_pixels(cls, spatial_tile_px: int | None = 768, spatial_overlap_px: int = 64,
                    temporal_tile_frames: int | None = 80, temporal_overlap_frames: int = 24,
                    scale: tuple[int, int, int] = (8, 32, 32)) -> "TilingOptions":
        """Options from pixel sizes, which must be multiples of the VAE `scale` (time, height, width)."""
        st, ss = scale[0], scale[1]
        for what, value, unit in (("spatial_tile_px", spatial_tile_px, ss),
                                  ("spatial_overlap_px", spatial_overlap_px, ss),
                                  ("temporal_tile_frames", temporal_tile_frames, st),
                                  ("temporal_overlap_frames", temporal_overlap_frames, st)):
            if value is not None and value % unit:
                raise ValueError(f"{what} must be a multiple of {unit}, got {value}")
        return cls(
            spatial_tile=None if spatial_tile_px is None else spatial_tile_px // ss,
            spatial_overlap=spatial_overlap_px // ss,
            temporal_tile=None if temporal_tile_frames is None else temporal_tile_frames // st,
            temporal_overlap=temporal_overlap_frames // st,
        )


def split_axis(size: int, tile: int | None, overlap: int, min_tile: int = 1) -> list[tuple[int, int]]:
    """Latent spans [b, e) of overlapping tiles covering ``range(size)``; a last tile shorter than
    `min_tile` is merged into the one before it."""
    if tile is None or size <= tile:
        return [(0, size)]
    spans, start = [], 0
    while True:
        end = min(start + tile, size)
        spans.append((start, end))
        if end == size:
            break
        start += tile - overlap
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < min_tile:
        spans[-2:] = [(spans[-2][0], size)]
    return spans


def _ramp_up(length: int, temporal: bool) -> torch.Tensor:
    """Weights of the later tile over an overlap of `length` output samples (the earlier gets 1 − w)."""
    k = torch.arange(length, dtype=torch.float32)
    return k / length if temporal else (k + 0.5) / length


def _weights(ranges: list[tuple[int, int]], i: int, temporal: bool) -> torch.Tensor:
    """1-D blend weights of tile `i`, whose output range is ``ranges[i]``."""
    start, end = ranges[i]
    w = torch.ones(end - start)
    if i > 0:
        overlap = ranges[i - 1][1] - start
        w[:overlap] = _ramp_up(overlap, temporal)
    if i + 1 < len(ranges):
        overlap = end - ranges[i + 1][0]
        w[end - start - overlap:] = 1 - _ramp_up(overlap, temporal)
    return w


@torch.no_grad()
def iter_decode_tiled(vae: VideoVAE, latent: torch.Tensor, options: TilingOptions = TilingOptions(),
                      timestep: float | torch.Tensor | None = None, noise: torch.Tensor | None = None,
                      generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Decode a normalized latent (B, C, F', H', W') tile by tile, yielding consecutive float32 pixel chunks
    (B, 3, f, 32H', 32W') whose frames add up to 8(F'−1)+1 (arguments as in `VideoVAE.decode`)."""
    z, t = vae.decoder_input(latent, timestep, noise, generator)
    st, sh, sw = vae.config.decoder_scale
    min_tile = 2 if vae.config.decoder_padding == "reflect" else 1
    t_spans = split_axis(z.shape[2], options.temporal_tile, options.temporal_overlap)
    h_spans = split_axis(z.shape[3], options.spatial_tile, options.spatial_overlap, min_tile)
    w_spans = split_axis(z.shape[4], options.spatial_tile, options.spatial_overlap, min_tile)
    t_inputs = [(b if i == 0 else b - 1, e) for i, (b, e) in enumerate(t_spans)]
    t_ranges = [(st * b, 1 + st * (e - 1)) for b, e in t_inputs]
    h_ranges = [(sh * b, sh * e) for b, e in h_spans]
    w_ranges = [(sw * b, sw * e) for b, e in w_spans]
    batch, height, width = z.shape[0], sh * z.shape[3], sw * z.shape[4]
    carry = None
    for ti, ((lt0, lt1), (pt0, pt1)) in enumerate(zip(t_inputs, t_ranges)):
        out = torch.zeros(batch, vae.config.out_channels, pt1 - pt0, height, width, device=z.device)
        wt = _weights(t_ranges, ti, temporal=True).to(z.device)
        for hi, ((lh0, lh1), (ph0, ph1)) in enumerate(zip(h_spans, h_ranges)):
            wh = _weights(h_ranges, hi, temporal=False).to(z.device)
            for wi, ((lw0, lw1), (pw0, pw1)) in enumerate(zip(w_spans, w_ranges)):
                ww = _weights(w_ranges, wi, temporal=False).to(z.device)
                tile = vae.run_decoder(z[:, :, lt0:lt1, lh0:lh1, lw0:lw1], t, generator).float()
                tile.mul_(wt[:, None, None]).mul_(wh[:, None]).mul_(ww)
                out[:, :, :, ph0:ph1, pw0:pw1] += tile
                del tile
        if carry is not None:
            out[:, :, :carry.shape[2]] += carry
        done = (t_ranges[ti + 1][0] if ti + 1 < len(t_ranges) else pt1) - pt0
        carry = out[:, :, done:].clone()  # lets the caller free `out` once it drops the chunk
        yield out[:, :, :done]


@torch.no_grad()
def decode_tiled(vae: VideoVAE, latent: torch.Tensor, options: TilingOptions = TilingOptions(),
                 timestep: float | torch.Tensor | None = None, noise: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """`iter_decode_tiled` gathered into one (B, 3, 8(F'−1)+1, 32H', 32W') float32 tensor."""
    return torch.cat(list(iter_decode_tiled(vae, latent, options, timestep, noise, generator)), dim=2)
