"""Attention kernels and the choice between them.

`attention(q, k, v, bias, scale)` takes (B, H, T, d) tensors and an optional additive bias broadcastable to
(B, H, Tq, Tk) and runs one of:

- ``sdpa``: `F.scaled_dot_product_attention`. On CPU its fused (flash) kernel already works in blocks with
  memory linear in tokens; measured on a 2-core AVX2 EPYC, 1 thread, fp32, head dim 128, it runs at 72-77
  GFLOP/s from 1.5k to 12k tokens (>= 90 % of the fp32 GEMM rate), with or without a bias.
- ``chunked``: pure-torch flash-style attention: query chunks *and* key/value chunks merged by an online
  softmax (running max / sum per query), in float32. Its score buffer is bounded by a byte budget whatever
  the sequence length, so memory is linear in tokens. Measured on the same machine (GFLOP/s, SDPA / chunked
  with the best of 256 or 512 query rows): 2k 76/46, 4k 60/56, 6k 76/59, 8k 77/58, 12k 75/58 (its softmax
  passes go through memory), so the automatic choice uses it only where SDPA would fall back to its unfused
  kernel and materialise a large (B, H, Tq, Tk) score matrix.
- ``flash``: `flash_attn.flash_attn_func` (CUDA, fp16/bf16, no bias, head dim a multiple of 8 up to 256).
- ``sage``: `sageattention.sageattn` (CUDA, fp16/bf16, no bias, head dim 64/96/128). It quantises Q/K to
  int8, so it changes results more than the others: used only when asked for, never by ``auto``.

The environment variable ``AVGEN_ATTENTION`` = auto | sdpa | chunked | flash | sage overrides the choice;
a forced flash/sage backend needs its package, and calls it cannot take (CPU, fp32, a bias) run SDPA.
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os

import torch
import torch.nn.functional as F

ENV_VAR = "AVGEN_ATTENTION"
BACKENDS = ("sdpa", "chunked", "flash", "sage")
PACKAGES = {"flash": "flash_attn", "sage": "sageattention"}
LOW_PRECISION = (torch.float16, torch.bfloat16)
SAGE_HEAD_DIMS = (64, 96, 128)
FLASH_MAX_HEAD_DIM = 256
# Chunked path: bytes of one float32 score block (B, H, query chunk, key chunk), and the longest key chunk.
SCORE_BLOCK_BYTES = 128 * 2**20
KEY_CHUNK = 4096
# CPU auto choice: an unfused SDPA call whose full score matrix is above this size goes to the chunked path.
CPU_UNFUSED_MAX_SCORE_BYTES = 256 * 2**20
_SDPA_MATH_BACKEND = 0  # torch's SDPBackend.MATH: the unfused kernel


@functools.lru_cache(maxsize=1)
def installed_backends() -> frozenset[str]:
    """The optional backends whose package is importable here ("flash", "sage")."""
    return frozenset(name for name, package in PACKAGES.items() if importlib.util.find_spec(package) is not None)


def requested_backend() -> str:
    """The backend asked for by ``AVGEN_ATTENTION`` ("auto" when unset or empty)."""
    value = os.environ.get(ENV_VAR, "").strip().lower() or "auto"
    if value != "auto" and value not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={value!r}: expected one of auto, {', '.join(BACKENDS)}")
    return value


def qualifies(backend: str, device_type: str, dtype: torch.dtype, head_dim: int, has_bias: bool) -> bool:
    """Whether `backend` can run a call with these properties (sdpa and chunked run everything)."""
    if backend in ("sdpa", "chunked"):
        return True
    if device_type != "cuda" or dtype not in LOW_PRECISION or has_bias:
        return False
    if backend == "flash":
        return head_dim % 8 == 0 and head_dim <= FLASH_MAX_HEAD_DIM
    return head_dim in SAGE_HEAD_DIMS


def select_backend(
    device_type: str,
    dtype: torch.dtype,
    head_dim: int,
    has_bias: bool,
    installed: frozenset[str],
    requested: str = "auto",
    sdpa_fused: bool = True,
    score_bytes: int = 0,
) -> str:
    """The backend for one call (a pure function, so the policy is testable without the packages or a GPU).

    installed: optional backends available ("flash", "sage"). sdpa_fused: whether SDPA would run a fused kernel
    for these inputs. score_bytes: size of the full (B, H, Tq, Tk) score matrix in the inputs' dtype.
    """
    if requested != "auto" and requested not in BACKENDS:
        raise ValueError(f"attention backend {requested!r}: expected one of auto, {', '.join(BACKENDS)}")
    if requested in PACKAGES and requested not in installed:
        raise ValueError(f"{ENV_VAR}={requested} needs the {PACKAGES[requested]} package, which is not installed")
    if requested != "auto":
        return requested if qualifies(requested, device_type, dtype, head_dim, has_bias) else "sdpa"
    if device_type == "cuda":
        flash_ok = "flash" in installed and qualifies("flash", device_type, dtype, head_dim, has_bias)
        return "flash" if flash_ok else "sdpa"
    if device_type == "cpu" and not sdpa_fused and score_bytes > CPU_UNFUSED_MAX_SCORE_BYTES:
        return "chunked"
    return "sdpa"


def sdpa_attention(q, k, v, bias: torch.Tensor | None, scale: float) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)


def flash_attention(q, k, v, bias: torch.Tensor | None, scale: float) -> torch.Tensor:
    from flash_attn import flash_attn_func

    out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), softmax_scale=scale)
    return out.transpose(1, 2)


def sage_attention(q, k, v, bias: torch.Tensor | None, scale: float) -> torch.Tensor:
    from sageattention import sageattn

    return sageattn(q, k, v, tensor_layout="HND", is_causal=False, sm_scale=scale)


def _float_bias(bias: torch.Tensor | None) -> torch.Tensor | None:
    """Additive float32 bias with 4 dims (a boolean mask becomes 0 / -inf)."""
    if bias is None:
        return None
    if bias.dtype == torch.bool:
        bias = torch.zeros(bias.shape, dtype=torch.float32, device=bias.device).masked_fill_(~bias, -math.inf)
    bias = bias.to(torch.float32)
    return bias.reshape((1,) * (4 - bias.ndim) + tuple(bias.shape))


def _bias_block(bias: torch.Tensor | None, q0: int, q1: int, k0: int, k1: int) -> torch.Tensor | None:
    if bias is None:
        return None
    rows = slice(q0, q1) if bias.shape[-2] > 1 else slice(None)
    cols = slice(k0, k1) if bias.shape[-1] > 1 else slice(None)
    return bias[..., rows, cols]


def chunked_attention(
    q, k, v, bias: torch.Tensor | None, scale: float,
    query_chunk: int | None = None, key_chunk: int = KEY_CHUNK, block_bytes: int = SCORE_BLOCK_BYTES,
) -> torch.Tensor:
    """Softmax attention in float32 over (query chunk x key chunk) score blocks merged with a running max and
    sum per query, so extra memory is one block (<= `block_bytes` unless a single query row exceeds it).

    query_chunk defaults to the most query rows whose (B, H, rows, key chunk) block fits `block_bytes`.
    Queries whose keys are all masked with -inf give 0 (as SDPA does); a finite bias such as -float32 max
    gives the mean of the values, as SDPA does.
    """
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(f"chunked attention expects (B, H, T, d) tensors, got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    batch, heads, tq, _ = q.shape
    tk = k.shape[-2]
    key_chunk = max(1, min(key_chunk, tk))
    if query_chunk is None:
        query_chunk = max(1, block_bytes // (batch * heads * key_chunk * 4))
    query_chunk = max(1, min(query_chunk, tq))
    out_dtype = q.dtype
    q = q.to(torch.float32) * scale
    k_t = k.to(torch.float32).transpose(-1, -2)
    v = v.to(torch.float32)
    bias = _float_bias(bias)
    rows = [_attend_rows(q[..., q0:q0 + query_chunk, :], k_t, v, bias, q0, key_chunk)
            for q0 in range(0, tq, query_chunk)]
    return torch.cat(rows, dim=-2).to(out_dtype)


def _attend_rows(q, k_t, v, bias, q0: int, key_chunk: int) -> torch.Tensor:
    """Attention of the query rows `q` (scaled, float32), one key chunk at a time. The running max only shifts
    the exponent (the result does not depend on it), so it is taken without autograd."""
    tk, rows = k_t.shape[-1], q.shape[-2]
    out = running_max = running_sum = None
    for k0 in range(0, tk, key_chunk):
        k1 = min(k0 + key_chunk, tk)
        scores = torch.matmul(q, k_t[..., k0:k1])
        block_bias = _bias_block(bias, q0, q0 + rows, k0, k1)
        if block_bias is not None:
            scores = scores.add_(block_bias)
        block_max = scores.detach().amax(-1, keepdim=True)
        new_max = block_max if running_max is None else torch.maximum(running_max, block_max)
        shift = new_max.masked_fill(new_max == -math.inf, 0.0)  # rows with every key so far at -inf
        probabilities = scores.sub_(shift).exp_()
        block_sum = probabilities.sum(-1, keepdim=True)
        block_out = torch.matmul(probabilities, v[..., k0:k1, :])
        if out is None:
            out, running_sum = block_out, block_sum
        else:
            correction = torch.exp(running_max - shift)
            out = out * correction + block_out
            running_sum = running_sum * correction + block_sum
        running_max = new_max
    return out / running_sum.clamp_min(torch.finfo(torch.float32).tiny)


KERNELS = {"sdpa": sdpa_attention, "chunked": chunked_attention, "flash": flash_attention, "sage": sage_attention}


def _sdpa_fused(q, k, v, bias, scale) -> bool:
    """Whether SDPA would run a fused kernel (not the unfused math one) for these inputs."""
    choice = getattr(torch, "_fused_sdp_choice", None)
    if choice is None:
        return True
    try:
        return int(choice(q, k, v, bias, 0.0, False, scale=scale)) != _SDPA_MATH_BACKEND
    except RuntimeError:
        return False


def choose_backend(q, k, v, bias: torch.Tensor | None = None, scale: float | None = None) -> str:
    """The backend `attention` runs for these tensors under the current ``AVGEN_ATTENTION`` setting."""
    requested = requested_backend()
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    device_type = q.device.type
    fused, score_bytes = True, 0
    if requested == "auto" and device_type == "cpu":
        fused = _sdpa_fused(q, k, v, bias, scale)
        score_bytes = q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.element_size()
    return select_backend(device_type, q.dtype, q.shape[-1], bias is not None, installed_backends(), requested,
                          fused, score_bytes)


def attention(q, k, v, bias: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
    """Attention over (B, H, T, d) tensors, scale 1/sqrt(d) by default; bias additive, broadcastable to
    (B, H, Tq, Tk). Returns (B, H, Tq, d) in q's dtype."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return KERNELS[choose_backend(q, k, v, bias, scale)](q, k, v, bias, scale)
