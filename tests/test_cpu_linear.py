"""CPU GEMM paths of Linear layers: policy, numerics, and that the in-place swap keeps keys and hooks."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from comfyui_avgen.models import cpu_linear as cl


def test_gemm_path_policy():
    bf16, fp32 = torch.bfloat16, torch.float32
    assert cl.gemm_path("auto", "cpu", fp32, False, False) == "aten"
    assert cl.gemm_path("onednn", "cpu", fp32, False, False) == "onednn"
    assert cl.gemm_path("auto", "cpu", bf16, False, False) == "upcast"
    assert cl.gemm_path("onednn", "cpu", torch.float16, False, False) == "upcast"
    assert cl.gemm_path("auto", "cpu", bf16, True, False) == "aten"  # native bf16 (avx512-bf16 / AMX)
    assert cl.gemm_path("aten", "cpu", bf16, False, False) == "aten"
    assert cl.gemm_path("onednn", "cuda", fp32, False, False) == "aten"
    assert cl.gemm_path("onednn", "cpu", fp32, False, True) == "aten"  # autograd: plain F.linear
    with pytest.raises(ValueError, match="expected one of"):
        cl.gemm_path("mkl", "cpu", fp32, False, False)


def test_env_mode(monkeypatch):
    monkeypatch.delenv(cl.ENV_VAR, raising=False)
    assert cl.requested_mode() == "auto"
    monkeypatch.setenv(cl.ENV_VAR, "oneDNN")
    model = nn.Sequential(nn.Linear(4, 4))
    assert cl.use_cpu_linears(model) == 1 and model[0].cpu_linear_mode == "onednn"
    monkeypatch.setenv(cl.ENV_VAR, "fast")
    with pytest.raises(ValueError, match=cl.ENV_VAR):
        cl.requested_mode()


def _model(dtype=torch.float32):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(24, 40), nn.GELU(), nn.Linear(40, 8, bias=False)).to(dtype)


def test_onednn_float32_matches_f_linear():
    model = _model()
    x = torch.randn(3, 5, 24)
    with torch.inference_mode():
        reference = model(x)
        assert cl.use_cpu_linears(model, "onednn") == 2
        assert torch.allclose(model(x), reference, atol=1e-5, rtol=1e-5)


def test_bf16_upcast_within_one_rounding_step(monkeypatch):
    monkeypatch.setattr(cl, "UPCAST_BLOCK_BYTES", 24 * 4 * 7)  # 7 weight rows per block: exercise the blocks
    layer = _model(torch.bfloat16)[0]
    x = torch.randn(6, 24).bfloat16()
    exact = F.linear(x.double(), layer.weight.double(), layer.bias.double())
    with torch.no_grad():
        native = layer(x)
        cl.use_cpu_linears(layer, "auto")
        monkeypatch.setattr(cl, "native_low_precision_cpu", lambda: False)
        upcast = layer(x)
    assert upcast.dtype == torch.bfloat16 and upcast.shape == (6, 40)
    step = 2.0 ** (torch.floor(torch.log2(exact.abs().clamp_min(1e-30))) - 7)  # bf16 spacing at each value
    assert ((upcast.double() - exact).abs() <= step).all()
    assert ((upcast.double() - native.double()).abs() <= 2 * step).all()


def test_swap_keeps_state_dict_parameters_and_hooks():
    model = _model()
    keys, weight = list(model.state_dict()), model[0].weight
    model[0].register_forward_hook(lambda module, args, out: out + 1.0)
    x = torch.randn(2, 24)
    with torch.no_grad():
        reference = model(x)
        cl.use_cpu_linears(model, "onednn")
        assert isinstance(model[0], nn.Linear) and model[0].weight is weight
        assert list(model.state_dict()) == keys
        assert torch.allclose(model(x), reference, atol=1e-5)


def test_autograd_still_works():
    model = _model()
    cl.use_cpu_linears(model, "onednn")
    x = torch.randn(2, 24, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None and model[0].weight.grad is not None


def test_loaded_transformer_uses_cpu_linears():
    """The checkpoint loader switches the DiT's Linears to CPULinear (same keys), so a bf16 DiT on a CPU without
    bf16 units computes in float32."""
    from comfyui_avgen.models.ltx import open_ltx
    from golden import SHARED_GOLDEN

    model = open_ltx(SHARED_GOLDEN / "ltx2" / "checkpoint.safetensors").load_transformer(torch.bfloat16)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears and all(type(m) is cl.CPULinear for m in linears)
    assert all(k in model.state_dict() for k in ("proj_out.weight", "patchify_proj.weight"))
