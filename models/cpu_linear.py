"""GEMM paths for Linear layers on CPU: PyTorch's default (MKL), oneDNN for float32, and float32 compute for
bf16/fp16 weights on CPUs without native bf16 arithmetic.

Measured on a 2-core AVX2 AMD EPYC (no avx512-bf16 / AMX), 1536x4096 @ 4096x4096, 1 thread:
float32 F.linear (MKL) 82 GFLOP/s, oneDNN `mkldnn._linear_pointwise` 83 GFLOP/s (no gain here; the 2-thread
run on a loaded machine gave 81 vs 79), bf16 F.linear 10.5 GFLOP/s but the same bf16 operands computed in
float32 57 GFLOP/s (384 tokens, weight conversion included). Modes:

- ``aten``: `F.linear` everywhere (PyTorch's default).
- ``auto``: `F.linear` for float32; bf16/fp16 on a CPU without native bf16 compute in float32.
- ``onednn``: as ``auto`` but float32 goes through oneDNN (`torch.ops.mkldnn._linear_pointwise`).

Float32 compute for bf16 operands: the input is converted once, the weight a few rows at a time (at most
`UPCAST_BLOCK_BYTES` of float32 weight alive), and each output block is rounded to bf16 like a bf16 GEMM's
float32 accumulator: results stay within one bf16 rounding step of a native bf16 GEMM.

`use_cpu_linears(model, mode)` switches the class of every `nn.Linear` in place: the parameters, state-dict
keys, `isinstance(m, nn.Linear)` and forward hooks (LoRA) are untouched. Paths other than `F.linear` are used
only for CPU tensors outside autograd.
"""
from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as F
from torch import nn

ENV_VAR = "AVGEN_CPU_LINEAR"
MODES = ("auto", "aten", "onednn")
LOW_PRECISION = (torch.bfloat16, torch.float16)
UPCAST_BLOCK_BYTES = 32 * 2**20


@functools.lru_cache(maxsize=1)
def native_low_precision_cpu() -> bool:
    """Whether this CPU computes bf16 natively (avx512-bf16 or AMX), so bf16 GEMMs are fast as they are."""
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def requested_mode() -> str:
    """The mode asked for by ``AVGEN_CPU_LINEAR`` ("auto" when unset or empty)."""
    value = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"{ENV_VAR}={value!r}: expected one of {', '.join(MODES)}")
    return value


def gemm_path(mode: str, device_type: str, dtype: torch.dtype, native_low_precision: bool, autograd: bool) -> str:
    """"aten", "onednn" or "upcast": how a Linear call with these properties runs under `mode`."""
    if mode not in MODES:
        raise ValueError(f"CPU linear mode {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "aten" or device_type != "cpu" or autograd:
        return "aten"
    if dtype in LOW_PRECISION:
        return "aten" if native_low_precision else "upcast"
    return "onednn" if mode == "onednn" and dtype == torch.float32 else "aten"


def upcast_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.linear` of low-precision operands computed in float32, the weight converted in row blocks; (..., out)
    in x's dtype."""
    out_features, in_features = weight.shape
    out = torch.empty(x.shape[:-1] + (out_features,), dtype=x.dtype, device=x.device)
    x32 = x.to(torch.float32)
    rows = max(1, UPCAST_BLOCK_BYTES // (4 * in_features))
    for r0 in range(0, out_features, rows):
        r1 = min(r0 + rows, out_features)
        block_bias = None if bias is None else bias[r0:r1].to(torch.float32)
        out[..., r0:r1] = F.linear(x32, weight[r0:r1].to(torch.float32), block_bias)
    return out


def onednn_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """float32 `F.linear` through oneDNN's inner product (the weight stays a plain dense tensor)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class CPULinear(nn.Linear):
    """An `nn.Linear` whose forward picks the CPU GEMM path (`gemm_path`) from `cpu_linear_mode`."""

    cpu_linear_mode = "auto"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        autograd = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        path = gemm_path(self.cpu_linear_mode, x.device.type, x.dtype, native_low_precision_cpu(), autograd)
        if path == "upcast" and self.weight.dtype == x.dtype:
            return upcast_linear(x, self.weight, self.bias)
        if path == "onednn" and self.weight.dtype == x.dtype and torch.backends.mkldnn.is_available():
            return onednn_linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)


def use_cpu_linears(module: nn.Module, mode: str | None = None) -> int:
    """Make every `nn.Linear` of `module` a `CPULinear` with `mode` (None: ``AVGEN_CPU_LINEAR``, default auto);
    returns how many. Float8 and other Linear-like modules are left alone."""
    mode = requested_mode() if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"CPU linear mode {mode!r}: expected one of {', '.join(MODES)}")
    count = 0
    for child in module.modules():
        if type(child) in (nn.Linear, CPULinear):
            child.__class__ = CPULinear
            child.cpu_linear_mode = mode
            count += 1
    return count
