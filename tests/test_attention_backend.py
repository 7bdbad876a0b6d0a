"""Attention backend choice (pure policy, env override) and the chunked kernel against SDPA."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from comfyui_avgen.models import attention as attn
from comfyui_avgen.models.layers import MASKED_BIAS, context_mask_bias, scaled_dot_product, strength_mask_bias

NONE = frozenset()
BOTH = frozenset({"flash", "sage"})


def _qkv(batch=2, heads=3, tq=37, tk=29, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, heads, tq, d, generator=g), torch.randn(batch, heads, tk, d, generator=g),
            torch.randn(batch, heads, tk, d, generator=g))


def _sdpa(q, k, v, bias=None):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0 / math.sqrt(q.shape[-1]))


def _chunked(q, k, v, bias=None, **chunks):
    return attn.chunked_attention(q, k, v, bias, 1.0 / math.sqrt(q.shape[-1]), **chunks)


# ---- policy -------------------------------------------------------------------------------------------------
def test_cpu_auto_keeps_fused_sdpa_and_chunks_only_large_unfused_calls():
    big = attn.CPU_UNFUSED_MAX_SCORE_BYTES + 1
    assert attn.select_backend("cpu", torch.float32, 128, False, BOTH, sdpa_fused=True, score_bytes=big) == "sdpa"
    assert attn.select_backend("cpu", torch.float32, 128, True, NONE, sdpa_fused=False, score_bytes=big) == "chunked"
    assert attn.select_backend("cpu", torch.bfloat16, 128, False, NONE, sdpa_fused=False, score_bytes=1024) == "sdpa"


def test_cuda_auto_prefers_flash_attn_when_installed_and_inputs_qualify():
    assert attn.select_backend("cuda", torch.bfloat16, 128, False, BOTH) == "flash"
    assert attn.select_backend("cuda", torch.float16, 64, False, frozenset({"flash"})) == "flash"
    assert attn.select_backend("cuda", torch.bfloat16, 128, False, frozenset({"sage"})) == "sdpa"  # sage: opt-in
    assert attn.select_backend("cuda", torch.bfloat16, 128, False, NONE) == "sdpa"
    assert attn.select_backend("cuda", torch.float32, 128, False, BOTH) == "sdpa"  # flash needs fp16/bf16
    assert attn.select_backend("cuda", torch.bfloat16, 128, True, BOTH) == "sdpa"  # no bias support
    assert attn.select_backend("cuda", torch.bfloat16, 260, False, BOTH) == "sdpa"  # head dim too large


def test_forced_backends_apply_where_they_qualify_else_sdpa():
    assert attn.select_backend("cuda", torch.bfloat16, 128, False, BOTH, "sage") == "sage"
    assert attn.select_backend("cuda", torch.bfloat16, 80, False, BOTH, "sage") == "sdpa"  # sage head dims
    assert attn.select_backend("cuda", torch.bfloat16, 128, True, BOTH, "flash") == "sdpa"
    assert attn.select_backend("cpu", torch.bfloat16, 128, False, BOTH, "flash") == "sdpa"
    assert attn.select_backend("cpu", torch.float32, 128, True, NONE, "chunked") == "chunked"
    assert attn.select_backend("cuda", torch.float32, 128, True, NONE, "chunked") == "chunked"
    assert attn.select_backend("cuda", torch.bfloat16, 128, False, BOTH, "sdpa") == "sdpa"


def test_forced_package_backend_without_the_package_is_a_clear_error():
    with pytest.raises(ValueError, match="flash_attn"):
        attn.select_backend("cuda", torch.bfloat16, 128, False, NONE, "flash")
    with pytest.raises(ValueError, match="sageattention"):
        attn.select_backend("cuda", torch.bfloat16, 128, False, frozenset({"flash"}), "sage")
    with pytest.raises(ValueError, match="expected one of"):
        attn.select_backend("cpu", torch.float32, 128, False, NONE, "xformers")


def test_env_override(monkeypatch):
    q, k, v = _qkv(batch=1, heads=1, tq=4, tk=4, d=8)
    monkeypatch.delenv(attn.ENV_VAR, raising=False)
    assert attn.requested_backend() == "auto" and attn.choose_backend(q, k, v) == "sdpa"
    monkeypatch.setenv(attn.ENV_VAR, " Chunked ")
    assert attn.choose_backend(q, k, v) == "chunked"
    monkeypatch.setenv(attn.ENV_VAR, "bogus")
    with pytest.raises(ValueError, match=attn.ENV_VAR):
        attn.choose_backend(q, k, v)


def test_forced_chunked_runs_through_the_layer_entry_point(monkeypatch):
    q, k, v = _qkv()
    calls = []
    monkeypatch.setenv(attn.ENV_VAR, "chunked")
    monkeypatch.setitem(attn.KERNELS, "chunked", lambda *a: calls.append(1) or attn.chunked_attention(*a))
    out = scaled_dot_product(q, k, v, None)
    assert calls and torch.allclose(out, _sdpa(q, k, v), atol=1e-5, rtol=0)


# ---- chunked kernel == SDPA ------------------------------------------------------------------------------------
@pytest.mark.parametrize("query_chunk,key_chunk", [(None, 4096), (5, 7), (1, 1), (16, 29)])
def test_chunked_matches_sdpa_without_bias(query_chunk, key_chunk):
    q, k, v = _qkv()
    out = _chunked(q, k, v, query_chunk=query_chunk, key_chunk=key_chunk)
    assert (out - _sdpa(q, k, v)).abs().max() < 1e-5


def test_chunked_matches_sdpa_with_strength_bias_and_context_mask():
    q, k, v = _qkv(tq=23, tk=23)
    strength = torch.rand(2, 23, 23, generator=torch.Generator().manual_seed(1))
    strength[:, :, 5:9] = 0.0  # log(0) -> float32 min
    self_bias = strength_mask_bias(strength, torch.float32)
    assert (_chunked(q, k, v, self_bias, query_chunk=4, key_chunk=6) - _sdpa(q, k, v, self_bias)).abs().max() < 1e-5
    mask = torch.ones(2, 23)
    mask[0, 10:] = 0
    mask[1] = 0  # every key masked (-float32 max): SDPA gives the mean of the values
    ctx_bias = context_mask_bias(mask, torch.float32)
    assert ctx_bias.min() == MASKED_BIAS
    out = _chunked(q, k, v, ctx_bias, query_chunk=3, key_chunk=4)
    assert (out - _sdpa(q, k, v, ctx_bias)).abs().max() < 1e-5
    assert torch.allclose(out[1], v[1].mean(-2, keepdim=True).expand_as(out[1]), atol=1e-5)


def test_chunked_matches_sdpa_for_minus_inf_and_boolean_masks():
    q, k, v = _qkv(tq=9, tk=12)
    bias = torch.zeros(2, 1, 9, 12)
    bias[0, :, :, :8] = -math.inf  # first key chunks fully masked for sample 0
    bias[1, :, 4] = -math.inf  # one query with every key masked: SDPA gives 0
    out = _chunked(q, k, v, bias, query_chunk=2, key_chunk=4)
    assert torch.isfinite(out).all()
    assert (out - _sdpa(q, k, v, bias)).abs().max() < 1e-5
    keep = torch.rand(2, 1, 9, 12, generator=torch.Generator().manual_seed(2)) > 0.3
    assert (_chunked(q, k, v, keep, key_chunk=5) - _sdpa(q, k, v, keep)).abs().max() < 1e-5


def test_chunked_bf16_inputs_return_bf16_close_to_fp32():
    q, k, v = (t.bfloat16() for t in _qkv())
    out = _chunked(q, k, v, key_chunk=8)
    assert out.dtype == torch.bfloat16
    reference = _sdpa(q.float(), k.float(), v.float())
    assert (out.float() - reference).abs().max() <= 2 ** -7 * reference.abs().max()


def test_chunked_score_block_stays_within_budget(monkeypatch):
    q, k, v = _qkv(batch=1, heads=2, tq=64, tk=64, d=8)
    seen = []
    original = torch.matmul

    def spy(a, b, **kwargs):
        seen.append(a.shape[-2] * b.shape[-1] * a.shape[0] * a.shape[1] * 4)
        return original(a, b, **kwargs)

    block = 2 * 16 * 32 * 4
    monkeypatch.setattr(torch, "matmul", spy)
    out = attn.chunked_attention(q, k, v, None, 0.5, key_chunk=32, block_bytes=block)
    monkeypatch.undo()
    assert max(seen) <= block
    assert (out - F.scaled_dot_product_attention(q, k, v, scale=0.5)).abs().max() < 1e-5


def test_chunked_rejects_wrong_rank():
    with pytest.raises(ValueError, match=r"\(B, H, T, d\)"):
        attn.chunked_attention(torch.zeros(3, 4, 8), torch.zeros(3, 4, 8), torch.zeros(3, 4, 8), None, 1.0)


def test_chunked_gradients_match_sdpa():
    q, k, v = (t.requires_grad_() for t in _qkv(tq=11, tk=13))
    bias = context_mask_bias(torch.tensor([[1.0] * 9 + [0.0] * 4, [1.0] * 13]), torch.float32)
    grads = []
    for kernel in (_sdpa, lambda *a: _chunked(*a, query_chunk=4, key_chunk=5)):
        (kernel(q, k, v, bias) * torch.linspace(-1, 1, 16)).sum().backward()
        grads.append([t.grad.clone() for t in (q, k, v)])
        for t in (q, k, v):
            t.grad = None
    for reference, chunked in zip(*grads):
        assert (reference - chunked).abs().max() < 1e-5
