"""NVFP4 pre-quantized checkpoints (the official `nvfp4-prequant` layout), computed without FP4 hardware.

A quantized Linear `<p>` with an (out, in) weight, in % 16 == 0, is stored as:

    <p>.weight          U8       (out, in / 2)        two E2M1 codes per byte, element 2j in the HIGH nibble
    <p>.weight_scale    F8_E4M3  (R, C) = (roundup(out, 128), roundup(in / 16, 4))
                                                      one scale per 16 inputs of a row, zero padded, in the cuBLAS
                                                      128x4 tiled order (see `untile_block_scales`)
    <p>.weight_scale_2  F32      one element          per-tensor decode scale (weight amax / (448 * 6))
    <p>.input_scale     F32      one element          optional calibrated activation scale (not needed here)
    <p>.bias            float    (out,)               as in an unquantized file

    weight[r, k] = e2m1(code[r, k]) * e4m3(block_scale[r, k // 16]) * weight_scale_2

Memory: 4 bits per weight + one E4M3 byte per 16 weights = 4.5 bits (bf16: 16). The layers stay packed; each
forward dequantizes the weight a block of rows at a time to the input's dtype (float32 on CPU, bf16 on CUDA) and
runs a plain GEMM. Activations keep the compute dtype (the official Blackwell GEMM also rounds them to FP4).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import CheckpointError, CheckpointFile

BLOCK = 16  # weights per E4M3 block scale
SCALE_TILE_ROWS, SCALE_TILE_COLS = 128, 4  # one cuBLAS scale tile: 128 rows x 4 block columns = 512 bytes
E2M1_MAX, E4M3_MAX = 6.0, 448.0
# The 16 E2M1 codes: bit 3 sign, bits 2-1 exponent, bit 0 mantissa.
E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)
DEQUANT_BLOCK_BYTES = 32 * 2**20  # float32 bytes of weight dequantized at once in a forward


class NVFP4FormatError(CheckpointError):
    """An NVFP4 layer of a checkpoint misses a tensor or has a tensor of another dtype or shape than the format."""


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def block_scale_shape(out_features: int, in_features: int) -> tuple[int, int]:
    """(rows, columns) of the stored block-scale grid of an (out, in) weight: padded to whole 128x4 tiles."""
    return _round_up(out_features, SCALE_TILE_ROWS), _round_up(in_features // BLOCK, SCALE_TILE_COLS)


def untile_block_scales(tiled: torch.Tensor, out_features: int, in_features: int) -> torch.Tensor:
    """The stored (R, C) scale bytes in tile order -> the (out, in / 16) grid in row-major order.

    Tile t = (r // 128) * (C / 4) + c // 4 holds 512 bytes; inside it (r, c) is at (r % 32) * 16 +
    ((r % 128) // 32) * 4 + c % 4, so the bytes read as [row tile, column tile, r % 32, (r % 128) // 32, c % 4].
    """
    rows, cols = tiled.shape
    tiles = tiled.reshape(rows // SCALE_TILE_ROWS, cols // SCALE_TILE_COLS, 32, 4, SCALE_TILE_COLS)
    grid = tiles.permute(0, 3, 2, 1, 4).reshape(rows, cols)
    return grid[:out_features, : in_features // BLOCK]


@functools.lru_cache(maxsize=8)
def _code_pair_table(device: torch.device) -> torch.Tensor:
    """(256, 2) float32: the values of a packed byte's two codes in element order (high nibble first)."""
    values = torch.tensor(E2M1_VALUES, dtype=torch.float32, device=device)
    byte = torch.arange(256, device=device)
    return torch.stack([values[byte >> 4], values[byte & 15]], dim=1)


def unpack_e2m1(packed: torch.Tensor) -> torch.Tensor:
    """(..., n / 2) uint8 -> (..., n) float32 E2M1 values; element 2j is the high nibble of byte j."""
    return F.embedding(packed.to(torch.int32), _code_pair_table(packed.device)).flatten(-2)


class NVFP4Linear(nn.Module):
    """A Linear whose weight stays in the packed NVFP4 layout; computes in the input's dtype."""

    def __init__(self, in_features: int, out_features: int, bias: bool, global_scale_shape: tuple[int, ...] = (),
                 input_scale_shape: tuple[int, ...] | None = None):
        super().__init__()
        if in_features % BLOCK:
            raise NVFP4FormatError(f"NVFP4 needs in_features divisible by {BLOCK}, got {in_features}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features // 2, dtype=torch.uint8), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        scale_shape = block_scale_shape(out_features, in_features)
        self.register_buffer("weight_scale", torch.empty(scale_shape, dtype=torch.float8_e4m3fn))
        self.register_buffer("weight_scale_2", torch.ones(global_scale_shape, dtype=torch.float32))
        if input_scale_shape is not None:  # in the official files; the dequantizing path does not use it
            self.register_buffer("input_scale", torch.ones(input_scale_shape, dtype=torch.float32))

    def row_scales(self) -> torch.Tensor:
        """(out, in / 16) float32: block scale x per-tensor scale, the factor of each block of 16 codes."""
        blocks = untile_block_scales(self.weight_scale.view(torch.uint8), self.out_features, self.in_features)
        return blocks.view(torch.float8_e4m3fn).to(torch.float32) * self.weight_scale_2.to(torch.float32).reshape(())

    def dequantized_weight(self, dtype: torch.dtype, rows: slice = slice(None), scales: torch.Tensor | None = None
                           ) -> torch.Tensor:
        """The (rows, in) weight in `dtype` (products in float32, rounded once); `scales` = `row_scales()`."""
        scales = self.row_scales() if scales is None else scales
        codes = unpack_e2m1(self.weight[rows]).unflatten(-1, (-1, BLOCK))
        return (codes * scales[rows, :, None]).flatten(-2).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scales = self.row_scales()
        step = max(1, DEQUANT_BLOCK_BYTES // (4 * self.in_features))
        if step >= self.out_features:
            bias = None if self.bias is None else self.bias.to(x.dtype)
            return F.linear(x, self.dequantized_weight(x.dtype, scales=scales), bias)
        out = torch.empty(x.shape[:-1] + (self.out_features,), dtype=x.dtype, device=x.device)
        for r0 in range(0, self.out_features, step):
            rows = slice(r0, min(r0 + step, self.out_features))
            bias = None if self.bias is None else self.bias[rows].to(x.dtype)
            out[..., rows] = F.linear(x, self.dequantized_weight(x.dtype, rows, scales), bias)
        return out


def _one_element(ckpt: CheckpointFile, key: str) -> tuple[int, ...]:
    """The shape of the float32 scalar `key` (any one-element shape), else an NVFP4FormatError."""
    shape, dtype = ckpt.shape(key), ckpt.dtype(key)
    if dtype != "F32" or any(n != 1 for n in shape):
        raise NVFP4FormatError(f"{ckpt.path}: {key} is {dtype} {shape}; NVFP4 expects one F32 value")
    return shape


def _nvfp4_layer(ckpt: CheckpointFile, key: str, linear: nn.Linear) -> NVFP4Linear | None:
    """The NVFP4Linear (on meta) for the Linear stored under `key` (ending in "."), None when it is not NVFP4."""
    weight, scale, global_scale = key + "weight", key + "weight_scale", key + "weight_scale_2"
    if weight not in ckpt:
        return None
    if ckpt.dtype(weight) != "U8":
        if global_scale in ckpt:
            raise NVFP4FormatError(f"{ckpt.path}: {global_scale} marks an NVFP4 layer but {weight} is "
                                   f"{ckpt.dtype(weight)}; NVFP4 expects U8 packed codes")
        return None
    missing = [k for k in (scale, global_scale) if k not in ckpt]
    if missing:
        raise NVFP4FormatError(f"{ckpt.path}: {weight} holds packed NVFP4 codes (U8) but {' and '.join(missing)} "
                               f"{'is' if len(missing) == 1 else 'are'} missing; the layer needs weight_scale "
                               f"(F8_E4M3 block scales) and weight_scale_2 (F32 per-tensor scale)")
    out_features, in_features = linear.out_features, linear.in_features
    if in_features % BLOCK:
        raise NVFP4FormatError(f"{ckpt.path}: {weight} is NVFP4 but the layer has {in_features} inputs; NVFP4 "
                               f"needs a multiple of {BLOCK}")
    expected = {weight: ("U8", (out_features, in_features // 2)),
                scale: ("F8_E4M3", block_scale_shape(out_features, in_features))}
    for name, (dtype, shape) in expected.items():
        if (ckpt.dtype(name), ckpt.shape(name)) != (dtype, shape):
            raise NVFP4FormatError(f"{ckpt.path}: {name} is {ckpt.dtype(name)} {ckpt.shape(name)}; an NVFP4 "
                                   f"{out_features}x{in_features} Linear expects {dtype} {shape}")
    input_scale = key + "input_scale"
    with torch.device("meta"):
        return NVFP4Linear(in_features, out_features, linear.bias is not None, _one_element(ckpt, global_scale),
                           _one_element(ckpt, input_scale) if input_scale in ckpt else None)


def swap_nvfp4_linears(module: nn.Module, ckpt: CheckpointFile, prefix: str) -> int:
    """Replace (meta-built) Linears that the file stores as NVFP4 by `NVFP4Linear`s; returns how many.

    Raises an `NVFP4FormatError` for a layer that is NVFP4 in part (packed codes without scales, scales beside a
    float weight) or whose tensors have other dtypes / shapes than the format's.
    """
    swapped = 0
    for name, child in list(module.named_modules()):
        if not isinstance(child, nn.Linear):
            continue
        replacement = _nvfp4_layer(ckpt, f"{prefix}{name}.", child)
        if replacement is None:
            continue
        parent_name, _, attr = name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, attr, replacement)
        swapped += 1
    return swapped


def keep_float32_scales(module: nn.Module, ckpt: CheckpointFile, prefix: str) -> None:
    """Re-read every NVFP4 per-tensor scale in float32 after `load_module`, which casts float tensors to the
    compute dtype (bf16 would scale each layer's whole output by up to 0.2%)."""
    for name, child in module.named_modules():
        if isinstance(child, NVFP4Linear):
            child.weight_scale_2 = ckpt.get(f"{prefix}{name}.weight_scale_2").to(child.weight.device, torch.float32)
