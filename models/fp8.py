"""float8 checkpoints: Linears stored as `F8_E4M3` weights with a per-tensor float32 `weight_scale`.

The weights stay in float8 in memory (half the bytes of bf16) and are dequantised one layer at a time in the
forward pass: `w = weight.to(dtype) * weight_scale`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import CheckpointFile

FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
SCALE_SUFFIXES = ("weight_scale", "input_scale")


class FP8Linear(nn.Module):
    """A Linear whose weight is float8 with a scalar float32 scale; computes in the input's dtype."""

    def __init__(self, in_features: int, out_features: int, bias: bool, weight_dtype: torch.dtype,
                 has_input_scale: bool = False):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=weight_dtype), requires_grad=False)
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.register_buffer("weight_scale", torch.ones((), dtype=torch.float32))
        if has_input_scale:  # present in some fp8 files; the dequantising path does not need it
            self.register_buffer("input_scale", torch.ones((), dtype=torch.float32))

    def dequantized_weight(self, dtype: torch.dtype) -> torch.Tensor:
        return self.weight.to(dtype) * self.weight_scale.to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.linear(x, self.dequantized_weight(x.dtype), bias)


_SAFETENSORS_FP8 = {"F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}


def swap_fp8_linears(module: nn.Module, ckpt: CheckpointFile, prefix: str) -> int:
    """Replace (meta-built) Linears that the file stores in float8 by `FP8Linear`s; returns how many."""
    swapped = 0
    for name, child in list(module.named_modules()):
        if not isinstance(child, nn.Linear) or f"{prefix}{name}.weight_scale" not in ckpt:
            continue
        file_dtype = _SAFETENSORS_FP8.get(ckpt.dtype(f"{prefix}{name}.weight"))
        if file_dtype is None:
            continue
        with torch.device("meta"):
            replacement = FP8Linear(child.in_features, child.out_features, child.bias is not None, file_dtype,
                                    has_input_scale=f"{prefix}{name}.input_scale" in ckpt)
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, replacement)
        swapped += 1
    return swapped


# The Linears the official fp8 policy stores in float8 (fact sheet 1.4): attention projections and feed-forwards
# inside the transformer blocks.
FP8_LINEAR_SUFFIXES = ("to_q", "to_k", "to_v", "to_out.0", "ff.net.0.proj", "ff.net.2")

FP8_MAX = 448.0  # largest finite float8_e4m3fn value


def quantize_linears_fp8(module: nn.Module, blocks_attr: str = "transformer_blocks") -> int:
    """Cast the fp8-policy Linears of a loaded model to float8 with a per-tensor scale, layer by layer.

    The scale maps each weight's largest magnitude to 448; the forward dequantises to the input's dtype.
    Returns how many Linears were converted.
    """
    converted = 0
    blocks = getattr(module, blocks_attr)
    for name, child in list(blocks.named_modules()):
        if not isinstance(child, nn.Linear) or not name.endswith(FP8_LINEAR_SUFFIXES):
            continue
        weight = child.weight.detach().float()
        scale = (weight.abs().max() / FP8_MAX).clamp_min(1e-12)
        fp8 = FP8Linear(child.in_features, child.out_features, child.bias is not None, torch.float8_e4m3fn)
        fp8.weight.data = (weight / scale).to(torch.float8_e4m3fn)
        fp8.weight_scale.fill_(scale.item())
        if child.bias is not None:
            fp8.bias.data = child.bias.detach()
        fp8.to(child.weight.device)
        parent_name, _, attr = name.rpartition(".")
        setattr(blocks.get_submodule(parent_name) if parent_name else blocks, attr, fp8)
        converted += 1
    return converted
