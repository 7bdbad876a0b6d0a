"""3-D neighbourhood attention with NATTEN ``na3d`` semantics, in plain torch with bounded memory.

Window rule, per axis of length L and kernel K (L >= K): query i attends keys [s_i, s_i + K) with
s_i = clamp(i − K//2, 0, L − K), i.e. a window centred on the query and shifted inward at the borders (never
clipped). A query attends the product of its three axis windows.

The queries are cut into small blocks; a block attends the bounding box of its queries' windows through one
dense attention call with an additive mask that keeps each query's own window. Blocks whose windows have the same
shape relative to their box (all interior blocks do) share a mask and are batched together, up to an element
budget, so memory stays bounded whatever the volume and no (tokens x tokens) matrix is ever built.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import torch

from ..attention import attention

# Query block per axis (time, height, width); a block attends a box of (block + kernel − 1) keys per axis.
QUERY_BLOCK = (3, 8, 8)
# Most elements of one batched call's score matrix and of its gathered key (or value) copies.
SCORE_BUDGET = 2 ** 24
KEY_BUDGET = 2 ** 24


class NeighborhoodShapeError(ValueError):
    """A volume smaller than the attention kernel along some axis."""


def window_starts(length: int, kernel: int) -> list[int]:
    """First key index of each query's window along one axis (centred, shifted inward at the borders)."""
    if kernel > length:
        raise NeighborhoodShapeError(f"neighbourhood attention needs an axis of at least {kernel}, got {length}")
    return [min(max(i - kernel // 2, 0), length - kernel) for i in range(length)]


@dataclass(frozen=True)
class AxisBlock:
    """Queries [q0, q1) of one axis, the keys [k0, k1) their windows cover, and each window's start - k0."""

    q0: int
    q1: int
    k0: int
    k1: int
    offsets: tuple[int, ...]


def axis_blocks(length: int, kernel: int, block: int) -> list[AxisBlock]:
    """Query blocks of `block` positions along one axis with the key span their windows cover."""
    starts = window_starts(length, kernel)
    blocks = []
    for q0 in range(0, length, block):
        q1 = min(q0 + block, length)
        k0, k1 = starts[q0], starts[q1 - 1] + kernel
        blocks.append(AxisBlock(q0, q1, k0, k1, tuple(s - k0 for s in starts[q0:q1])))
    return blocks


def _axis_visibility(offsets: tuple[int, ...], kernel: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: key j lies in query i's window."""
    j = torch.arange(keys)
    start = torch.tensor(offsets)[:, None]
    return (j >= start) & (j < start + kernel)


Geometry = tuple[tuple[int, int, tuple[int, ...]], ...]  # per axis: (queries, keys, window offsets)


def _geometry(blocks: tuple[AxisBlock, AxisBlock, AxisBlock]) -> Geometry:
    return tuple((b.q1 - b.q0, b.k1 - b.k0, b.offsets) for b in blocks)


@functools.lru_cache(maxsize=64)
def block_bias(geometry: Geometry, kernel: tuple[int, int, int], dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
    """(queries, keys) additive mask of one 3-D block over its key box, both flattened (t, h, w)-major:
    0 inside the query's window, −inf outside."""
    t, h, w = (_axis_visibility(offsets, k, keys) for (_, keys, offsets), k in zip(geometry, kernel))
    visible = t[:, None, None, :, None, None] & h[None, :, None, None, :, None] & w[None, None, :, None, None, :]
    visible = visible.reshape(geometry[0][0] * geometry[1][0] * geometry[2][0], -1)
    bias = torch.zeros(visible.shape, dtype=dtype).masked_fill_(~visible, float("-inf"))
    return bias.to(device)


def _gather(x: torch.Tensor, boxes: list[tuple[slice, slice, slice]]) -> torch.Tensor:
    """Boxes of x (B, T, H, W, heads, d) stacked -> (G·B, heads, box volume, d)."""
    stacked = torch.stack([x[:, t, h, w] for t, h, w in boxes])
    g, b, bt, bh, bw, heads, d = stacked.shape
    return stacked.view(g * b, bt * bh * bw, heads, d).transpose(1, 2)


def neighborhood_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: tuple[int, int, int],
                           scale: float | None = None, query_block: tuple[int, int, int] = QUERY_BLOCK,
                           ) -> torch.Tensor:
    """q, k, v (B, T, H, W, heads, d) -> (B, T, H, W, heads, d); softmax(scale · q·k) over each query's window.

    `scale` defaults to d^−½. Raises `NeighborhoodShapeError` when an axis is shorter than its kernel.
    """
    if q.ndim != 6 or k.shape != q.shape or v.shape[:-1] != q.shape[:-1]:
        raise ValueError(f"neighbourhood attention expects (B, T, H, W, heads, d) tensors, got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    batch, heads, dim = q.shape[0], q.shape[4], q.shape[5]
    scale = dim ** -0.5 if scale is None else scale
    per_axis = [axis_blocks(n, kk, bb) for n, kk, bb in zip(q.shape[1:4], kernel, query_block)]
    groups: dict[Geometry, list[tuple[AxisBlock, AxisBlock, AxisBlock]]] = {}
    for blocks in itertools.product(*per_axis):
        groups.setdefault(_geometry(blocks), []).append(blocks)
    out = torch.empty(q.shape[:-1] + (v.shape[-1],), dtype=v.dtype, device=v.device)
    for geometry, members in groups.items():
        mask = block_bias(geometry, tuple(kernel), q.dtype, q.device)
        nq, nk = mask.shape
        per_call = max(1, min(SCORE_BUDGET // (batch * heads * nq * nk), KEY_BUDGET // (batch * nk * heads * dim)))
        for c0 in range(0, len(members), per_call):
            chunk = members[c0:c0 + per_call]
            queries = [tuple(slice(b.q0, b.q1) for b in m) for m in chunk]
            keys = [tuple(slice(b.k0, b.k1) for b in m) for m in chunk]
            result = attention(_gather(q, queries), _gather(k, keys), _gather(v, keys), mask, scale=scale)
            shape = [len(chunk), batch, *(b.q1 - b.q0 for b in chunk[0]), heads, v.shape[-1]]
            result = result.transpose(1, 2).reshape(shape)
            for i, (t, h, w) in enumerate(queries):
                out[:, t, h, w] = result[i]
    return out

