"""Decode tiles of the diffusion decoder: where stages 4-5 run and how their pixels are blended.

Stages 1-3 always run once on the whole (padded) latent; stages 4-5 run per tile. Tiles are laid on the
stage-4-input grid of the size-floored canvas: a tile size / overlap in pixels (frames) is divided by the pixels
per stage-4 cell (`config.stage4_pixel_scale`, (2, 8, 8) for the real ladder) and each axis is split into
overlapping spans. A span maps to pixels through the last upsample and the patch: spatially x stride·patch;
temporally x 2, minus one frame at the end, and at the start too unless the span starts at frame 0 (that tile
drops its duplicate first frame). Tiles blend with trapezoidal ramps over the overlaps, which sum to one; where
they would not (a tiling whose ramps cross), the blend is divided by the summed weights.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from .config import DiffusionDecoderConfig

AXES = ("frames", "height", "width")


class DiffusionTilingError(ValueError):
    """A decode tiling the diffusion decoder cannot use."""


@dataclass(frozen=True)
class AxisTiling:
    """Tile size and overlap along one axis in frames or pixels; ``tile = 0`` leaves the axis untiled."""

    tile: int = 0
    overlap: int = 0


@dataclass(frozen=True)
class DiffusionTiling:
    frames: AxisTiling = AxisTiling()
    height: AxisTiling = AxisTiling()
    width: AxisTiling = AxisTiling()

    @classmethod
    def from_dict(cls, sizes: dict) -> DiffusionTiling:
        """From ``{"frames": [tile, overlap], "height": [...], "width": [...]}`` (missing axes untiled)."""
        unknown = set(sizes) - set(AXES)
        if unknown:
            raise DiffusionTilingError(f"unknown tiling axes {sorted(unknown)}; expected {AXES}")
        return cls(**{axis: AxisTiling(*(int(v) for v in sizes[axis])) for axis in sizes})


@dataclass(frozen=True)
class Span:
    """Cells [start, end) of one axis and the overlaps shared with the previous / next span."""

    start: int
    end: int
    left: int = 0
    right: int = 0


@dataclass(frozen=True)
class DecodeTile:
    """One tile: its stage-4-input cells (T, H, W) without the ghost frames, its canvas pixels (F, H, W) and
    the blend weights along those pixels; `trailing` marks the tile holding the clip's last stage-4 frame."""

    stage4: tuple[slice, slice, slice]
    pixels: tuple[slice, slice, slice]
    weights: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    trailing: bool

    @property
    def is_origin(self) -> bool:
        return self.stage4[0].start == 0


def split_axis(length: int, size: int, overlap: int, min_size: int) -> list[Span]:
    """Spans of `size` cells overlapping by `overlap` covering [0, length); a short last span grows backwards to
    `min_size`. One span when the axis is not longer than a tile (or shorter than `min_size`)."""
    if length <= size or length < min_size:
        return [Span(0, length)]
    step = size - overlap
    count = (length - overlap + step - 1) // step
    spans = [Span(i * step, min(i * step + size, length), overlap if i else 0, overlap if i + 1 < count else 0)
             for i in range(count)]
    last = spans[-1]
    if last.end - last.start < min_size:
        start = length - min_size
        shared = spans[-2].end - start
        spans[-2:] = [Span(spans[-2].start, spans[-2].end, spans[-2].left, shared), Span(start, length, shared, 0)]
    for i, span in enumerate(spans):
        if span.end - span.start < min_size or (i and span.start <= spans[i - 1].start):
            raise DiffusionTilingError(
                f"a tile of {size} cells with overlap {overlap} cannot split {length} cells into tiles of at least "
                f"{min_size}; use larger tiles")
    return spans


def ramp_weights(length: int, left: int, right: int) -> torch.Tensor:
    """(length,) float32 trapezoid: linear ramps strictly inside (0, 1) over the first `left` and last `right`
    samples, so overlapping ramps of two neighbours sum to one."""
    weights = torch.ones(length)
    left, right = min(max(left, 0), length), min(max(right, 0), length)
    if left:
        weights[:left] *= torch.linspace(0.0, 1.0, left + 2)[1:-1]
    if right:
        weights[length - right:] *= torch.linspace(1.0, 0.0, right + 2)[1:-1]
    return weights


def _pixel_span(span: Span, scale: int, temporal_doubling: bool) -> Span:
    if temporal_doubling:
        return Span(span.start * 2 - (1 if span.start else 0), span.end * 2 - 1, span.left * 2, span.right * 2)
    return Span(span.start * scale, span.end * scale, span.left * scale, span.right * scale)


def _axis_spans(config: DiffusionDecoderConfig, tiling: DiffusionTiling | None, axis: int,
                length: int) -> list[Span]:
    choice = AxisTiling() if tiling is None else getattr(tiling, AXES[axis])
    if choice.tile == 0:
        if choice.overlap:
            raise DiffusionTilingError(f"{AXES[axis]}: an untiled axis (tile 0) takes no overlap, got {choice.overlap}")
        return [Span(0, length)]
    factor = config.stage4_pixel_scale[axis]
    needed = config.min_tile_overlap[0 if axis == 0 else 1]
    unit = "frames" if axis == 0 else "pixels"
    if choice.tile < 2 * factor or choice.tile % factor or choice.overlap % factor:
        raise DiffusionTilingError(
            f"{AXES[axis]}: tile and overlap must be multiples of {factor} {unit} and the tile at least "
            f"{2 * factor}, got tile {choice.tile}, overlap {choice.overlap}")
    if not needed <= choice.overlap < choice.tile:
        raise DiffusionTilingError(
            f"{AXES[axis]}: overlap must be at least {needed} {unit} (the stage 4-5 halo) and below the tile "
            f"{choice.tile}, got {choice.overlap}")
    overlap = choice.overlap // factor
    size = max(choice.tile // factor, 2, overlap + 1)
    return split_axis(length, size, overlap, config.min_tile_size[axis])


def plan_tiles(config: DiffusionDecoderConfig, stage4_thw: tuple[int, int, int],
               tiling: DiffusionTiling | None) -> list[DecodeTile]:
    """Tiles over a stage-4-input volume (T, H, W), time slowest (the order of per-tile noise draws)."""
    per_axis = []
    for axis, length in enumerate(stage4_thw):
        doubling = axis == 0 and config.stage4_stride[0] == 2
        entries = []
        for span in _axis_spans(config, tiling, axis, length):
            px = _pixel_span(span, config.stage4_pixel_scale[axis], doubling)
            entries.append((slice(span.start, span.end), slice(px.start, px.end),
                            ramp_weights(px.end - px.start, px.left, px.right)))
        per_axis.append(entries)
    return [DecodeTile((t[0], h[0], w[0]), (t[1], h[1], w[1]), (t[2], h[2], w[2]), t[0].stop == stage4_thw[0])
            for t, h, w in itertools.product(*per_axis)]


def summed_weights(tiles: list[DecodeTile], canvas: tuple[int, int, int]) -> list[torch.Tensor] | None:
    """Per-axis sums of the distinct tiles' weights over the canvas (F, H, W), or None when every sum is one
    (the blend then needs no division)."""
    sums = []
    for axis, length in enumerate(canvas):
        total = torch.zeros(length)
        seen = set()
        for tile in tiles:
            span = tile.pixels[axis]
            if (span.start, span.stop) not in seen:
                seen.add((span.start, span.stop))
                total[span] += tile.weights[axis]
        sums.append(total)
    if all(torch.allclose(s, torch.ones_like(s), rtol=0.0, atol=1e-5) for s in sums):
        return None
    return sums
