"""NVFP4 pre-quantized DiT files: the packed layout decodes as documented (nibble order, tiled block scales), the
quantization error stays within E2M1 resolution, an NVFP4 tiny 2.5 DiT runs the transformer25_t2av inputs close to
the float32 model, and malformed NVFP4 layers give named errors. Also the official per-tensor fp8 layout of a 2.5
file.

The files are written by this test's own quantizer, following the format contract of the official kernels
(packages/ltx-kernels/docs/NVFP4.md): per-tensor decode scale amax / (448 * 6), block scale
e4m3_rne(min(block_amax / 6 / s_t, 448)), codes e2m1_rne(x / (s_t * s_b)) saturating at 6, element 2j in the high
nibble, block scales in the cuBLAS 128x4 tiled order.
"""
from __future__ import annotations

import dataclasses
import itertools

import pytest
import torch
from golden import SHARED_GOLDEN
from safetensors import safe_open
from safetensors.torch import save_file

from comfyui_avgen.models.checkpoint import CheckpointError, CheckpointFile
from comfyui_avgen.models.fp8 import FP8Linear
from comfyui_avgen.models.ltx import open_ltx
from comfyui_avgen.models.nvfp4 import (
    NVFP4FormatError, NVFP4Linear, block_scale_shape, swap_nvfp4_linears, unpack_e2m1, untile_block_scales,
)
from comfyui_avgen.models.transformer import StreamInput, load_transformer

LTX25 = SHARED_GOLDEN.parent / "golden_next" / "ltx25"
T2AV_CASE = LTX25 / "cases" / "transformer25_t2av.safetensors"
DIT = "model.diffusion_model."
CONNECTORS = (DIT + "video_embeddings_connector.", DIT + "audio_embeddings_connector.")
E2M1_GRID = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
E2M1_BY_CODE = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


# ---------------------------------------------------------------- the test's own quantizer and decoder


def e2m1_codes(x: torch.Tensor) -> torch.Tensor:
    """Round-to-nearest-even E2M1 codes (uint8 0..15) of x, saturating at +-6."""
    magnitude = x.abs().clamp(max=6.0)
    code = torch.zeros(x.shape, dtype=torch.int64)
    for i, (low, high) in enumerate(itertools.pairwise(E2M1_GRID)):
        midpoint = float(low + high) / 2
        up_on_tie = (i + 1) % 2 == 0  # a tie goes to the even code
        code += (magnitude > midpoint) | ((magnitude == midpoint) & up_on_tie)
    return (code + 8 * torch.signbit(x)).to(torch.uint8)


def tile_offsets(rows: int, cols: int) -> torch.Tensor:
    """(rows, cols) byte offsets of a scale grid padded to 128x4 tiles, from the documented formula."""
    r = torch.arange(rows)[:, None]
    c = torch.arange(cols)[None, :]
    tile = (r // 128) * (cols // 4) + c // 4
    return tile * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4


def quantize(weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """{weight, weight_scale, weight_scale_2} of an (out, in) float weight in the NVFP4 file layout."""
    w = weight.detach().to(torch.float32)
    out_features, in_features = w.shape
    global_scale = w.abs().amax() / (448.0 * 6.0)
    blocks = w.reshape(out_features, in_features // 16, 16)
    block_scale = (blocks.abs().amax(-1) / 6.0 / global_scale).clamp(max=448.0).to(torch.float8_e4m3fn)
    total = global_scale * block_scale.to(torch.float32)
    scaled = torch.where(total[..., None] > 0, blocks / total[..., None], torch.zeros_like(blocks))
    codes = e2m1_codes(scaled).reshape(out_features, in_features // 2, 2)
    packed = (codes[..., 0] << 4) | codes[..., 1]
    rows, cols = block_scale_shape(out_features, in_features)
    padded = torch.zeros(rows, cols, dtype=torch.uint8)
    padded[:out_features, : in_features // 16] = block_scale.view(torch.uint8)
    tiled = torch.zeros(rows * cols, dtype=torch.uint8)
    tiled[tile_offsets(rows, cols).flatten()] = padded.flatten()
    return {"weight": packed, "weight_scale": tiled.reshape(rows, cols).view(torch.float8_e4m3fn),
            "weight_scale_2": global_scale.reshape(())}


def e4m3_value(byte: int) -> float:
    """float8 E4M3 (fn) bits -> value: 1 sign, 4 exponent (bias 7), 3 mantissa bits, subnormals at exponent 0."""
    sign = -1.0 if byte & 0x80 else 1.0
    exponent, mantissa = (byte >> 3) & 15, byte & 7
    if exponent == 0:
        return sign * mantissa / 8 * 2.0**-6
    return sign * (1 + mantissa / 8) * 2.0 ** (exponent - 7)


def reference_decode(packed: torch.Tensor, tiled: torch.Tensor, global_scale: float) -> torch.Tensor:
    """Element by element: code of element k = high nibble of byte k // 2 when k is even, low nibble when odd;
    its scale byte is at the documented tile offset of (row, k // 16)."""
    cols = tiled.shape[1]
    scale_bytes = tiled.view(torch.uint8).flatten().tolist()
    out_features, half = packed.shape
    result = torch.empty(out_features, 2 * half, dtype=torch.float64)
    for r, row in enumerate(packed.tolist()):
        for k in range(2 * half):
            byte = row[k // 2]
            code = byte >> 4 if k % 2 == 0 else byte & 15
            c = k // 16
            offset = ((r // 128) * (cols // 4) + c // 4) * 512 + (r % 32) * 16 + ((r % 128) // 32) * 4 + c % 4
            result[r, k] = E2M1_BY_CODE[code] * e4m3_value(scale_bytes[offset]) * global_scale
    return result


def nvfp4_layer(weight: torch.Tensor, bias: torch.Tensor | None = None) -> NVFP4Linear:
    out_features, in_features = weight.shape
    layer = NVFP4Linear(in_features, out_features, bias is not None)
    for name, tensor in quantize(weight).items():
        setattr(layer, name, tensor if name != "weight" else torch.nn.Parameter(tensor, requires_grad=False))
    if bias is not None:
        layer.bias = torch.nn.Parameter(bias)
    return layer


# ---------------------------------------------------------------- the packed format


def test_nibble_order_high_nibble_is_the_even_element():
    packed = torch.tensor([[0x27, 0xF8, 0x5A, 0x00, 0x00, 0x00, 0x00, 0x01]], dtype=torch.uint8)
    values = unpack_e2m1(packed)[0].tolist()
    assert values[:6] == [1.0, 6.0, -6.0, -0.0, 3.0, -1.0] and values[-2:] == [0.0, 0.5]


def test_untiling_reads_the_documented_tile_offsets():
    out_features, in_features = 200, 16 * 9  # two row tiles (second padded), three column tiles (last padded)
    rows, cols = block_scale_shape(out_features, in_features)
    assert (rows, cols) == (256, 12)
    grid = (torch.arange(rows * cols) % 251).to(torch.uint8).reshape(rows, cols)
    tiled = torch.zeros(rows * cols, dtype=torch.uint8)
    tiled[tile_offsets(rows, cols).flatten()] = grid.flatten()
    untiled = untile_block_scales(tiled.reshape(rows, cols), out_features, in_features)
    assert torch.equal(untiled, grid[:out_features, :9])


def test_e2m1_rounding_of_the_test_quantizer_is_nearest_even():
    x = torch.tensor([0.24, 0.25, 0.26, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 7.0, -0.75, -5.0, -100.0])
    assert E2M1_GRID[e2m1_codes(x).long() % 8].tolist() == [0, 0, 0.5, 1, 1, 2, 2, 4, 4, 6, 1, 4, 6]
    assert (e2m1_codes(x) >= 8).tolist() == [False] * 10 + [True] * 3


def test_dequantized_weight_equals_a_straightforward_decode():
    torch.manual_seed(0)
    weight = torch.randn(160, 96) * torch.rand(160, 1) * 3  # rows of different ranges: varied block scales
    layer = nvfp4_layer(weight)
    expected = reference_decode(layer.weight, layer.weight_scale, float(layer.weight_scale_2))
    torch.testing.assert_close(layer.dequantized_weight(torch.float32).double(), expected, rtol=1e-6, atol=0)
    assert layer.weight.shape == (160, 48) and layer.weight_scale.shape == (256, 8)


def test_quantization_error_per_block_is_within_e2m1_resolution():
    torch.manual_seed(1)
    weight = torch.randn(130, 64) * torch.logspace(-2, 1, 64)  # blocks with very different magnitudes
    layer = nvfp4_layer(weight)
    block_factor = layer.row_scales().repeat_interleave(16, dim=1)  # s_t * s_b of each element's block
    ratio = weight.abs() / block_factor
    half_step = torch.where(ratio < 2, 0.25, torch.where(ratio < 4, 0.5, 1.0))  # grid steps 0.5 / 1 / 2
    error = (layer.dequantized_weight(torch.float32) - weight).abs()
    assert (error <= half_step * block_factor * (1 + 1e-6)).all()
    # and the block scales use the range: every block's largest element lands on the top of the grid or near it
    assert (ratio.reshape(130, 4, 16).amax(-1) > 5.0).all()


def test_forward_computes_in_the_input_dtype_and_in_row_blocks(monkeypatch):
    torch.manual_seed(2)
    weight, bias, x = torch.randn(48, 32), torch.randn(48), torch.randn(2, 5, 32)
    layer = nvfp4_layer(weight, bias)
    expected = torch.nn.functional.linear(x, layer.dequantized_weight(torch.float32), bias)
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    monkeypatch.setattr("comfyui_avgen.models.nvfp4.DEQUANT_BLOCK_BYTES", 4 * 32 * 10)  # 10 rows at a time
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    low = layer(x.to(torch.bfloat16))
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), expected, rtol=0.03, atol=0.05)


def test_in_features_must_be_a_multiple_of_16():
    with pytest.raises(NVFP4FormatError, match="divisible by 16"):
        NVFP4Linear(40, 8, bias=False)


# ---------------------------------------------------------------- an NVFP4 tiny 2.5 DiT


def _dit_tensors() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(LTX25 / "transformer.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def _quantizable(tensors: dict[str, torch.Tensor]) -> list[str]:
    """The DiT Linear weights (2-D `.weight`, connectors excluded) with a multiple of 16 inputs."""
    return [k[: -len("weight")] for k, t in tensors.items() if k.startswith(DIT) and not k.startswith(CONNECTORS)
            and k.endswith(".weight") and t.ndim == 2 and t.shape[1] % 16 == 0]


def nvfp4_dit(input_scale: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str], list[str]]:
    """The tiny 2.5 file with every quantizable DiT Linear as NVFP4 (+ an input_scale as the official files)."""
    tensors, metadata = _dit_tensors()
    layers = _quantizable(tensors)
    for layer in layers:
        for name, tensor in quantize(tensors[layer + "weight"]).items():
            tensors[layer + name] = tensor
        if input_scale:
            tensors[layer + "input_scale"] = torch.tensor(0.01)
    return tensors, metadata, layers


def _write(tmp_path, tensors, metadata, name="nvfp4.safetensors"):
    path = tmp_path / name
    save_file({k: t.contiguous() for k, t in tensors.items()}, str(path), metadata=metadata)
    return path


def _t2av_streams():
    with safe_open(str(T2AV_CASE), framework="pt") as f:
        x = {k[3:]: f.get_tensor(k) for k in f.keys() if k.startswith("in.")}

    def stream(name):
        return StreamInput(latent=x[f"{name}_latent"], timesteps=x[f"{name}_timesteps"], sigma=x[f"{name}_sigma"],
                           positions=x[f"{name}_positions"], context=x[f"{name}_context"],
                           keyframes_mask=x.get(f"{name}_keyframes_mask"))
    return stream("video"), stream("audio")


def test_nvfp4_dit_matches_the_dequantized_float_model_and_stays_close_to_float32(tmp_path):
    tensors, metadata, layers = nvfp4_dit()
    path = _write(tmp_path, tensors, metadata)
    model = open_ltx(path).load_transformer()
    # ff.net.2 / audio_ff.net.2 of both blocks, the eight AdaLN timestep embedders' linear_1, audio_patchify_proj:
    # the other tiny layers have 28 or 8 inputs
    assert sum(isinstance(m, NVFP4Linear) for m in model.modules()) == len(layers) == 13
    assert all(m.weight.dtype == torch.uint8 and m.weight_scale_2.dtype == torch.float32
               for m in model.modules() if isinstance(m, NVFP4Linear))

    dequantized, _ = _dit_tensors()  # the same weights decoded independently, as a float32 file
    for layer in layers:
        decoded = reference_decode(tensors[layer + "weight"], tensors[layer + "weight_scale"],
                                   float(tensors[layer + "weight_scale_2"]))
        dequantized[layer + "weight"] = decoded.to(torch.float32)
    fake_quant = load_transformer(CheckpointFile(_write(tmp_path, dequantized, metadata, "dequantized.safetensors")))
    full = load_transformer(CheckpointFile(LTX25 / "transformer.safetensors"))

    video, audio = _t2av_streams()
    with torch.no_grad():
        outputs = model(video, audio)
        same_weights = fake_quant(video, audio)
        reference = full(video, audio)
    for got, want, ref in zip(outputs, same_weights, reference):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # FP4 rounds each of the 13 weights by ~9.5% (relative L2); the outputs move as much: measured video 11.2%,
        # audio 9.4% relative L2 (largest element error 8% / 12% of the largest output)
        assert 0.02 < float((got - ref).norm() / ref.norm()) < 0.2


def test_bf16_load_keeps_the_per_tensor_scales_in_float32(tmp_path):
    tensors, metadata, layers = nvfp4_dit(input_scale=False)
    model = load_transformer(CheckpointFile(_write(tmp_path, tensors, metadata)), torch.bfloat16)
    quantized = {n: m for n, m in model.named_modules() if isinstance(m, NVFP4Linear)}
    assert len(quantized) == len(layers) and not any(hasattr(m, "input_scale") for m in quantized.values())
    for name, module in quantized.items():
        assert module.weight_scale_2.dtype == torch.float32
        assert module.weight_scale_2.item() == tensors[DIT + name + ".weight_scale_2"].item()
        assert module.bias is None or module.bias.dtype == torch.bfloat16
    video, audio = _t2av_streams()
    with torch.no_grad():
        v, a = model(*(dataclasses.replace(s, latent=s.latent.bfloat16(), context=s.context.bfloat16())
                       for s in (video, audio)))
    full = load_transformer(CheckpointFile(LTX25 / "transformer.safetensors"))
    with torch.no_grad():
        for got, ref in zip((v, a), full(video, audio)):
            assert float((got.float() - ref).norm() / ref.norm()) < 0.2


# ---------------------------------------------------------------- malformed files


def _ff(block: int = 0) -> str:
    return f"{DIT}transformer_blocks.{block}.ff.net.2."


@pytest.mark.parametrize("mutation,message", [
    (lambda t: t.pop(_ff() + "weight_scale"), r"ff\.net\.2\.weight_scale is missing"),
    (lambda t: t.pop(_ff() + "weight_scale_2"), r"weight_scale_2 is missing"),
    (lambda t: [t.pop(_ff() + "weight_scale"), t.pop(_ff() + "weight_scale_2")], "are missing"),
    (lambda t: t.update({_ff() + "weight": torch.zeros(28, 112, dtype=torch.uint8)}), r"expects U8 \(28, 56\)"),
    (lambda t: t.update({_ff() + "weight_scale": torch.zeros(28, 7).to(torch.float8_e4m3fn)}),
     r"expects F8_E4M3 \(128, 8\)"),
    (lambda t: t.update({_ff() + "weight_scale": torch.zeros(128, 8)}), "is F32"),
    (lambda t: t.update({_ff() + "weight_scale_2": torch.ones(2)}), "one F32 value"),
    (lambda t: t.update({_ff() + "input_scale": torch.ones((), dtype=torch.bfloat16)}), "input_scale is BF16"),
    (lambda t: t.update({_ff(1) + "weight": torch.randn(28, 112)}), "marks an NVFP4 layer"),
])
def test_malformed_nvfp4_layers_give_a_named_error(tmp_path, mutation, message):
    tensors, metadata, _ = nvfp4_dit()
    mutation(tensors)
    with pytest.raises(NVFP4FormatError, match=message):
        load_transformer(CheckpointFile(_write(tmp_path, tensors, metadata)))


def test_nvfp4_layer_of_a_linear_with_odd_inputs_is_refused(tmp_path):
    tensors, metadata = _dit_tensors()
    layer = f"{DIT}transformer_blocks.0.attn1.to_q."  # 28 inputs
    padded = torch.nn.functional.pad(tensors[layer + "weight"], (0, 4))
    for name, tensor in quantize(padded).items():
        tensors[layer + name] = tensor
    with pytest.raises(NVFP4FormatError, match="28 inputs"):
        load_transformer(CheckpointFile(_write(tmp_path, tensors, metadata)))


def test_swap_leaves_float_and_fp8_layers_alone(tmp_path):
    tensors, metadata = _dit_tensors()
    model = torch.nn.Sequential(torch.nn.Linear(28, 28))
    assert swap_nvfp4_linears(model, CheckpointFile(_write(tmp_path, tensors, metadata)), DIT) == 0
    assert type(model[0]) is torch.nn.Linear


# ---------------------------------------------------------------- the official fp8 layout on a 2.5 file


def test_official_fp8_layout_loads_on_the_25_dit(tmp_path):
    """Official fp8 files (ltx_core/quantization/fp8_cast.py, fp8_scaled_mm.py): F8_E4M3 weights with a scalar F32
    `weight_scale` (and `input_scale`) under `model.diffusion_model.`; weight = fp8 * weight_scale."""
    tensors, metadata = _dit_tensors()
    layers = [k[: -len("weight")] for k in tensors if ".transformer_blocks." in k and k.startswith(DIT)
              and not k.startswith(CONNECTORS) and k.endswith(("to_q.weight", "to_out.0.weight", "ff.net.2.weight"))]
    for layer in layers:
        weight = tensors[layer + "weight"]
        scale = weight.abs().amax() / 448.0
        tensors[layer + "weight"] = (weight / scale).to(torch.float8_e4m3fn)
        tensors[layer + "weight_scale"] = scale.reshape(())
        tensors[layer + "input_scale"] = torch.tensor(0.02)
    model = load_transformer(CheckpointFile(_write(tmp_path, tensors, metadata, "fp8.safetensors")))
    assert sum(isinstance(m, FP8Linear) for m in model.modules()) == len(layers)
    full = load_transformer(CheckpointFile(LTX25 / "transformer.safetensors"))
    video, audio = _t2av_streams()
    with torch.no_grad():
        for got, ref in zip(model(video, audio), full(video, audio)):
            assert float((got - ref).norm() / ref.norm()) < 0.05


def test_per_channel_fp8_scales_are_refused_by_name(tmp_path):
    tensors, metadata = _dit_tensors()
    layer = f"{DIT}transformer_blocks.0.attn1.to_q."
    tensors[layer + "weight"] = tensors[layer + "weight"].to(torch.float8_e4m3fn)
    tensors[layer + "weight_scale"] = torch.ones(28)
    with pytest.raises(CheckpointError, match=r"to_q\.weight_scale has shape \(28,\)"):
        load_transformer(CheckpointFile(_write(tmp_path, tensors, metadata, "fp8.safetensors")))



def test_a_lora_hooks_nvfp4_layers_like_float_ones():
    from comfyui_avgen.models.lora import linear_targets

    weight = torch.randn(32, 64, generator=torch.Generator().manual_seed(3))
    model = torch.nn.Sequential(nvfp4_layer(weight))
    assert list(linear_targets(model)) == ["0"]
