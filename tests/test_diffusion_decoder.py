"""LTX-2.5 diffusion video decoder: window rule, width slabs, config parsing, loading (key changes, gate folding),
sampling, tiling and decode shapes. Parity with the official numbers is in tests/parity/diffvae_cases.py."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from comfyui_avgen.models.checkpoint import CheckpointError, build_on_meta
from comfyui_avgen.models.diffusion_decoder import (
    DiffusionDecoderConfig, DiffusionDecoderConfigError, DiffusionTiling, DiffusionTilingError,
    DiffusionVideoDecoder, NeighborhoodShapeError, NotDiffusionVAEError, blocks, is_diffusion_vae,
    load_diffusion_decoder, load_video_encoder_25, neighborhood,
)
from comfyui_avgen.models.diffusion_decoder.blocks import (
    NeighborhoodAttention, PixelShuffleUpsample, attention_in_width_slabs, modulate,
)
from comfyui_avgen.models.diffusion_decoder.config import default_rope_split
from comfyui_avgen.models.diffusion_decoder.loader import encoder_config
from comfyui_avgen.models.diffusion_decoder.neighborhood import neighborhood_attention
from comfyui_avgen.models.diffusion_decoder.rope import apply_axis_rope
from comfyui_avgen.models.diffusion_decoder.sampling import denoise, euler_step, inference_timesteps
from comfyui_avgen.models.diffusion_decoder.tiling import plan_tiles, ramp_weights, split_axis, summed_weights
from comfyui_avgen.models.video_vae import VideoVAEInputError
from golden import REPO_ROOT
from safetensors.torch import save_file

GOLDEN_VAE = REPO_ROOT.parent / "shared" / "golden_next" / "ltx25" / "video_vae.safetensors"
TINY_DECODER = {
    "in_channels": 4, "head_dim": 16, "t_emb_dim": 16, "timestep_scale_multiplier": 1000.0,
    "stage_channels": [32, 16, 16, 16, 16], "stage_depths": [1, 1, 1, 1, 1],
    "stage_kernels": [[3, 3, 3]] * 5, "stage5_kernel": [3, 3, 3],
    "upsamples": [[[1, 2, 2], 2], [[2, 1, 1], 1], [[2, 2, 2], 1], [[2, 2, 2], 1]],
}


def _vae_config(output_type: str = "v", **decoder) -> dict:
    return {"vae": {"_class_name": "CausalDiffusionVAE", "latent_channels": 4, "model_output_type": output_type,
                    "decoder": {**TINY_DECODER, **decoder}}}


def _randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Weights N(0, 1/fan_in), biases N(0, 0.02²), norm weights 1 + N(0, 0.1²), tables N(0, 0.2²)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if "norm" in name:
                p.copy_(1 + 0.1 * noise)
            elif name.endswith("scale_shift_table"):
                p.copy_(0.2 * noise)
            elif p.ndim == 2:
                p.copy_(noise / p.shape[1] ** 0.5)
            else:
                p.copy_(0.02 * noise)
    return module.eval()


@pytest.fixture(scope="module")
def tiny():
    return _randomize(DiffusionVideoDecoder(DiffusionDecoderConfig.from_vae_config(_vae_config())))


# ---------------------------------------------------------------- neighbourhood attention


def _reference_window(i: int, length: int, kernel: int) -> set[int]:
    """NATTEN's window written out: centred on i, moved inward (not clipped) until it fits in [0, length)."""
    start = i - kernel // 2
    start = max(0, min(start, length - kernel))
    return set(range(start, start + kernel))


def _dense_reference(q, k, v, kernel):
    b, t, h, w, heads, d = q.shape
    coords = [(a, c, e) for a in range(t) for c in range(h) for e in range(w)]
    mask = torch.zeros(len(coords), len(coords), dtype=torch.bool)
    for i, (qa, qc, qe) in enumerate(coords):
        windows = [_reference_window(p, n, kk) for p, n, kk in zip((qa, qc, qe), (t, h, w), kernel)]
        for j, key in enumerate(coords):
            mask[i, j] = all(p in window for p, window in zip(key, windows))
    flat = [x.reshape(b, t * h * w, heads, -1).transpose(1, 2) for x in (q, k, v)]
    scores = (flat[0] @ flat[1].transpose(-1, -2)) * d ** -0.5
    out = scores.masked_fill(~mask, float("-inf")).softmax(-1) @ flat[2]
    return out.transpose(1, 2).reshape(b, t, h, w, heads, -1)


@pytest.mark.parametrize("shape,kernel,block", [
    ((3, 7, 7), (3, 7, 7), (3, 8, 8)),  # every axis exactly the kernel
    ((4, 9, 11), (3, 5, 5), (3, 8, 8)),  # borders on every axis
    ((5, 6, 8), (3, 3, 5), (2, 3, 5)),  # several blocks per axis, ragged last block
    ((3, 5, 6), (1, 5, 3), (1, 1, 1)),  # one query per block
])
def test_neighborhood_attention_equals_dense_masked_attention(shape, kernel, block):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, *shape, 2, 8, generator=g, dtype=torch.float64) for _ in range(3))
    got = neighborhood_attention(q, k, v, kernel, query_block=block)
    torch.testing.assert_close(got, _dense_reference(q, k, v, kernel), rtol=1e-10, atol=1e-10)


def test_neighborhood_attention_calls_stay_under_the_budget(monkeypatch):
    sizes = []

    def record(q, k, v, bias, scale):
        sizes.append(q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2])
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)

    monkeypatch.setattr(neighborhood, "attention", record)
    monkeypatch.setattr(neighborhood, "SCORE_BUDGET", 1_000_000)
    q = torch.randn(1, 12, 40, 40, 2, 8)
    neighborhood_attention(q, q, q, (3, 7, 7))
    assert len(sizes) > 10 and max(sizes) <= 1_000_000


def test_neighborhood_attention_rejects_a_volume_smaller_than_the_kernel():
    q = torch.randn(1, 3, 6, 7, 1, 8)
    with pytest.raises(NeighborhoodShapeError, match="at least 7"):
        neighborhood_attention(q, q, q, (3, 7, 7))
    attn = NeighborhoodAttention(16, 16, (3, 7, 7), default_rope_split(16))
    with pytest.raises(NeighborhoodShapeError, match=r"\(3, 7, 7\)"):
        attn(torch.randn(1, 2, 7, 7, 16))


def test_rope_rotates_adjacent_pairs_by_axis_positions():
    split = (4, 6, 6)
    x = torch.randn(1, 2, 3, 4, 1, 16)
    out = apply_axis_rope(x, split, w_offset=5)
    t, h, w = 1, 2, 3
    angle = (w + 5) * 10000.0 ** (-2 * 1 / 6)  # width group, second pair
    pair = x[0, t, h, w, 0, 10 + 2:10 + 4]
    expected = torch.stack([pair[0] * torch.cos(torch.tensor(angle)) - pair[1] * torch.sin(torch.tensor(angle)),
                            pair[0] * torch.sin(torch.tensor(angle)) + pair[1] * torch.cos(torch.tensor(angle))])
    torch.testing.assert_close(out[0, t, h, w, 0, 12:14], expected)
    torch.testing.assert_close(out[:, 0, ..., :4], x[:, 0, ..., :4])  # time group at t = 0: angle 0


# ---------------------------------------------------------------- width slabs (official chunked mode)


def _slab_attention_reference(attn, y, halo):
    """Plain attention over the width-padded volume (edge columns repeated `halo` times each side, width
    positions from −halo), cropped back: what the slabs compute when every slab is full and wider than the halo."""
    padded = torch.cat([y[:, :, :, :1].expand(-1, -1, -1, halo, -1), y,
                        y[:, :, :, -1:].expand(-1, -1, -1, halo, -1)], dim=3)
    return attn(padded, w_offset=-halo)[:, :, :, halo:-halo]


def test_width_slabs_repeat_edge_columns_and_match_plain_attention_inside():
    torch.manual_seed(0)
    attn = _randomize(NeighborhoodAttention(32, 16, (3, 3, 5), default_rope_split(16)))
    y = torch.randn(1, 3, 4, 16, 32)
    with torch.no_grad():
        plain = attn(y)
        slabs = attention_in_width_slabs(attn, y, lambda part: part, 4)
        torch.testing.assert_close(attention_in_width_slabs(attn, y, lambda part: part, 1), plain)
        torch.testing.assert_close(slabs, _slab_attention_reference(attn, y, 2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(slabs[:, :, :, 2:-2], plain[:, :, :, 2:-2], rtol=1e-5, atol=1e-5)
    assert (slabs[:, :, :, :2] - plain[:, :, :, :2]).abs().max() > 1e-3


def test_width_slab_halo_from_a_short_previous_slab_leaves_zero_tokens():
    """A slab narrower than the halo hands on only its own columns; the other halo slots stay zero tokens (the
    official buffer is zero-initialised), which then go through `prepare` like any token."""
    columns = blocks._slab_columns(1, 4, 2, 4, 7, 3)  # width 7, 4 slabs of 2 columns, halo 3
    assert columns == [None, 0, 1, 2, 3, 4, 5, 6]


# ---------------------------------------------------------------- config


def test_config_reads_nested_decoder_and_top_level_output_type():
    raw = _vae_config("x0", stage5_channels=32, na_head_dim=16)
    del raw["vae"]["decoder"]["head_dim"]
    config = DiffusionDecoderConfig.from_vae_config(raw)
    assert config.model_output_type == "x0" and config.diffusion_channels == 32 and config.context_channels == 16
    assert config.latent_channels == 4 and config.timestep_scale_multiplier == 1000.0
    flat = {"_class_name": "CausalDiffusionVAE", "latent_channels": 4, **TINY_DECODER}
    assert DiffusionDecoderConfig.from_vae_config(flat) == DiffusionDecoderConfig.from_vae_config(_vae_config())


def test_default_config_is_the_released_ladder():
    config = DiffusionDecoderConfig()
    assert config.scale_factors == (8, 32, 32)
    assert config.min_latent_size == (3, 7, 7)
    assert config.pixel_size(config.min_latent_size) == (17, 224, 224)
    assert config.ghost_latent_frames == 2
    assert config.min_tile_size == (3, 5, 5)
    assert config.tile_halos == ((2, 4, 4), (4, 12, 12))
    assert config.min_tile_overlap == (8, 96)
    assert config.rope_split == (16, 24, 24)
    decoder = build_on_meta(lambda: DiffusionVideoDecoder(config))
    assert decoder.diff_blocks[0].mlp.w_up.out_features == 512 and len(decoder.diff_blocks) == 8


@pytest.mark.parametrize("head_dim,split", [(16, (4, 6, 6)), (24, (4, 10, 10)), (64, (16, 24, 24)), (40, (8, 16, 16))])
def test_rope_split(head_dim, split):
    assert default_rope_split(head_dim) == split


@pytest.mark.parametrize("changes,match", [
    ({"head_dim": 8}, "multiple of 8 above 8"),
    ({"head_dim": 12}, "multiple of 8 above 8"),
    ({"stage_channels": [32, 16, 16, 16, 24]}, "multiples of head_dim"),
    ({"stage5_channels": 40}, "multiples of head_dim"),
    ({"stage_channels": [64, 16, 16, 16, 16]}, r"upsamples\[0\] turns 64 channels into 32"),
    ({"stage_depths": [1, 1, 1, 1]}, "expected 5"),
    ({"upsamples": [[[3, 1, 1], 1]] * 4}, "time 1 or 2"),
    ({"stage_kernels": [[3, 3]] * 5}, "3 positive sizes"),
    ({"stage_channels": "wide"}, "malformed"),
])
def test_config_errors_are_named(changes, match):
    with pytest.raises(DiffusionDecoderConfigError, match=match):
        DiffusionDecoderConfig.from_vae_config(_vae_config(**changes))


def test_output_type_and_class_checks():
    with pytest.raises(DiffusionDecoderConfigError, match="model_output_type"):
        DiffusionDecoderConfig.from_vae_config(_vae_config("eps"))
    conv = {"vae": {"_class_name": "CausalVideoAutoencoder", "decoder_blocks": []}}
    assert not is_diffusion_vae(conv) and not is_diffusion_vae({"vae": {}}) and is_diffusion_vae(_vae_config())
    with pytest.raises(NotDiffusionVAEError, match="convolutional"):
        DiffusionDecoderConfig.from_vae_config(conv)


# ---------------------------------------------------------------- loading


def _released_file(path, model: DiffusionVideoDecoder, gates: dict[str, torch.Tensor], prefix: str = "decoder.",
                   config: dict | None = None) -> None:
    """Write `model` in the released layout: fused qkv, t_embedder.mlp.0/2, unfolded gates, a coarse head."""
    tensors = {}
    for name, value in model.state_dict().items():
        if name.startswith("per_channel_statistics."):
            tensors[name] = value
            continue
        if ".attn.to_" in name:
            part, leaf = name.split(".attn.to_")
            if leaf.startswith("q"):
                fused = [model.state_dict()[f"{part}.attn.to_{x}{leaf[1:]}"] for x in "qkv"]
                tensors[f"{prefix}{part}.attn.qkv{leaf[1:]}"] = torch.cat(fused)
            continue
        name_out = name.replace("t_embedder.linear_1.", "t_embedder.mlp.0.").replace("t_embedder.linear_2.",
                                                                                  "t_embedder.mlp.2.")
        tensors[prefix + name_out] = value.clone()
    for name, gate in gates.items():
        tensors[prefix + name] = gate
    tensors[prefix + "coarse_head.weight"] = torch.randn(3, model.config.diffusion_channels)
    tensors["per_channel_statistics.channel"] = torch.arange(4.0)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={"config": json.dumps(config or _vae_config()), "model_version": "2.5.0"})


def _gates(seed: int = 3) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    names = ("gate_msa", "gate_mlp", "gate_ctx")
    return {f"diff_blocks.0.{name}": 0.25 + torch.rand(16, generator=g) for name in names}


def test_gate_folding_equals_the_gated_block(tmp_path, tiny):
    gates = _gates()
    _released_file(tmp_path / "vae.safetensors", tiny, gates)
    loaded = load_diffusion_decoder(tmp_path / "vae.safetensors")
    g = torch.Generator().manual_seed(5)
    x, context = torch.randn(1, 3, 4, 5, 16, generator=g), torch.randn(1, 3, 4, 5, 16, generator=g)
    modulation = 0.2 * torch.randn(1, 7, 16, generator=g)
    block = tiny.diff_blocks[0]
    table = modulation + block.scale_shift_table
    with torch.no_grad():
        x1 = x + gates["diff_blocks.0.gate_ctx"] * block.context_proj(context)
        x2 = x1 + gates["diff_blocks.0.gate_msa"] * block.attn(modulate(block.norm1(x1), table[:, 0], table[:, 1]))
        want = x2 + gates["diff_blocks.0.gate_mlp"] * block.mlp(modulate(block.norm2(x2), table[:, 3], table[:, 4]))
        got = loaded.diff_blocks[0](x, context, modulation, width_slabs=1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_loader_splits_qkv_renames_and_accepts_both_prefixes(tmp_path, tiny):
    _released_file(tmp_path / "bare.safetensors", tiny, {}, prefix="decoder.")
    _released_file(tmp_path / "mono.safetensors", tiny, {}, prefix="vae.decoder.")
    for name in ("bare", "mono"):
        loaded = load_diffusion_decoder(tmp_path / f"{name}.safetensors", dtype=torch.bfloat16)
        state = loaded.state_dict()
        for key, value in tiny.state_dict().items():
            want = value if key.startswith("per_channel_statistics.") else value.to(torch.bfloat16)
            assert state[key].dtype == want.dtype and torch.equal(state[key], want), key
        assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


def test_loader_rejects_weights_that_do_not_match_the_config(tmp_path, tiny):
    _released_file(tmp_path / "vae.safetensors", tiny, {}, config=_vae_config(stage_depths=[1, 1, 1, 1, 2]))
    with pytest.raises(CheckpointError, match="diff_blocks.1"):
        load_diffusion_decoder(tmp_path / "vae.safetensors")
    _released_file(tmp_path / "orphan.safetensors", tiny, {"norm_out.gate_ctx": torch.ones(16)})
    with pytest.raises(CheckpointError, match="fold"):
        load_diffusion_decoder(tmp_path / "orphan.safetensors")


def test_2_5_file_encoder_loads_and_encodes():
    vae = load_video_encoder_25(GOLDEN_VAE)
    assert vae.decoder is None and vae.config.encoder_scale == (8, 32, 32)
    latent = vae.encode(torch.rand(1, 3, 9, 64, 96) * 2 - 1)
    assert latent.shape == (1, 4, 2, 2, 3) and torch.isfinite(latent).all()
    with pytest.raises(DiffusionDecoderConfigError, match="vae.encoder"):
        encoder_config(_vae_config())


# ---------------------------------------------------------------- sampling


def test_timesteps_and_euler():
    torch.testing.assert_close(inference_timesteps(2), torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(inference_timesteps(4), torch.tensor([1.0, 0.75, 0.5, 0.25]))
    with pytest.raises(ValueError):
        inference_timesteps(0)
    x_t, x0 = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    t, t_next = torch.tensor([0.8, 0.5]), torch.tensor([0.0, 0.25])
    step = euler_step(x_t, x0, t, t_next, "x0")  # x0 -> velocity (x_t − x0) / t: t_next = 0 lands on x0
    torch.testing.assert_close(step[0], x0[0])
    torch.testing.assert_close(step[1], x_t[1] - 0.25 * (x_t[1] - x0[1]) / 0.5)
    torch.testing.assert_close(euler_step(x_t, x0, t, t_next, "v"), x_t - (t - t_next)[:, None, None] * x0)


def test_denoise_loop_ends_at_zero_for_v_and_returns_x0_prediction_for_x0():
    calls = []

    def predict(x, t):
        calls.append(float(t[0]))
        return torch.full_like(x, 2.0)

    x = torch.zeros(1, 2)
    torch.testing.assert_close(denoise(predict, x, inference_timesteps(2), "v"), torch.full((1, 2), -2.0))
    assert calls == [1.0, 0.5]
    calls.clear()
    torch.testing.assert_close(denoise(predict, x, inference_timesteps(2), "x0"), torch.full((1, 2), 2.0))
    assert calls == [1.0, 0.5]


# ---------------------------------------------------------------- tiling and decode


def test_split_axis_and_ramps_sum_to_one():
    spans = split_axis(13, 8, 4, 3)
    assert [(s.start, s.end, s.left, s.right) for s in spans] == [(0, 8, 0, 4), (4, 12, 4, 4), (8, 13, 4, 0)]
    grown = split_axis(11, 4, 1, 3)  # the last span [9, 11) grows back to 3 cells, widening the overlap
    assert [(s.start, s.end, s.left, s.right) for s in grown] == [(0, 4, 0, 1), (3, 7, 1, 1), (6, 10, 1, 2),
                                                                  (8, 11, 2, 0)]
    total = torch.zeros(13)
    for s in spans:
        total[s.start:s.end] += ramp_weights(s.end - s.start, s.left, s.right)
    torch.testing.assert_close(total, torch.ones(13))


def test_tile_plan_maps_stage4_cells_to_pixels():
    config = DiffusionDecoderConfig()
    tiles = plan_tiles(config, (13, 10, 10), DiffusionTiling.from_dict({"frames": [16, 8]}))
    frames = [(t.stage4[0].start, t.stage4[0].stop, t.pixels[0].start, t.pixels[0].stop) for t in tiles]
    assert frames == [(0, 8, 0, 15), (4, 12, 7, 23), (8, 13, 15, 25)]  # 2x, first frame dropped at the origin only
    assert [t.trailing for t in tiles] == [False, False, True] and tiles[0].is_origin and not tiles[1].is_origin
    assert summed_weights(tiles, (25, 80, 80)) is None


@pytest.mark.parametrize("tiling,match", [
    ({"height": [128, 64]}, "at least 96"),
    ({"height": [100, 96]}, "multiples of 8"),
    ({"frames": [16, 16]}, "below the tile"),
    ({"width": [0, 32]}, "untiled"),
    ({"depth": [8, 0]}, "unknown tiling axes"),
])
def test_tiling_errors_are_named(tiling, match):
    with pytest.raises(DiffusionTilingError, match=match):
        plan_tiles(DiffusionDecoderConfig(), (13, 40, 40), DiffusionTiling.from_dict(tiling))


def test_decode_shapes_for_small_and_one_frame_latents(tiny):
    for shape in [(1, 4, 1, 1, 1), (2, 4, 1, 2, 3), (1, 4, 2, 1, 1)]:
        latent = torch.randn(shape)
        out = tiny.decode(latent, generator=torch.Generator().manual_seed(0))
        assert out.shape == (shape[0], 3, 8 * (shape[2] - 1) + 1, 32 * shape[3], 32 * shape[4])
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
    with pytest.raises(VideoVAEInputError, match=r"\(B, 4, F', H', W'\)"):
        tiny.decode(torch.randn(1, 5, 1, 1, 1))


def test_decode_is_deterministic_with_a_seed(tiny):
    latent = torch.randn(1, 4, 2, 2, 2)
    first = tiny.decode(latent, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, tiny.decode(latent, generator=torch.Generator().manual_seed(7)))
    assert not torch.allclose(first, tiny.decode(latent, generator=torch.Generator().manual_seed(8)))


def test_tiled_decode_is_close_to_untiled_at_the_same_noise(tiny):
    latent = torch.randn(1, 4, 4, 3, 4, generator=torch.Generator().manual_seed(1))
    tiny.width_slabs = 1
    try:
        untiled = tiny.decode(latent, generator=torch.Generator().manual_seed(2))
        other_noise = tiny.decode(latent, generator=torch.Generator().manual_seed(3))
        tiling = DiffusionTiling.from_dict({"frames": [16, 8], "height": [64, 32], "width": [64, 32]})
        chunks = list(tiny.iter_decode(latent, generator=torch.Generator().manual_seed(2), tiling=tiling))
        single = tiny.decode(latent, generator=torch.Generator().manual_seed(2),
                             tiling=DiffusionTiling.from_dict({"height": [256, 32]}))  # one tile per axis
    finally:
        tiny.width_slabs = 4
    tiled = torch.cat(chunks, dim=2)
    assert len(chunks) > 1 and tiled.shape == untiled.shape
    assert torch.equal(single, untiled)
    seam_error = (tiled - untiled).abs().mean()
    assert seam_error < 0.1 * (other_noise - untiled).abs().mean()


def test_single_step_x0_decoder_draws_noise_per_tile():
    decoder = _randomize(DiffusionVideoDecoder(DiffusionDecoderConfig.from_vae_config(
        _vae_config("x0", default_num_inference_steps=1))))
    latent = torch.randn(1, 4, 1, 3, 3)
    tiling = DiffusionTiling.from_dict({"width": [64, 32]})
    used = torch.Generator().manual_seed(4)
    assert decoder.decode(latent, generator=used, tiling=tiling).shape == (1, 3, 1, 96, 96)
    replay = torch.Generator().manual_seed(4)
    tiles = plan_tiles(decoder.config, decoder.config.stage4_size((3, 3, 3)), tiling)
    assert len(tiles) == 2
    for tile in tiles:  # one draw per tile in its stage-5 canvas (17 frames: the padded 3-frame latent)
        torch.randn(1, 3, *(s.stop - s.start for s in tile.pixels), generator=replay)
    assert torch.equal(torch.randn(4, generator=used), torch.randn(4, generator=replay))


def test_pixel_shuffle_upsample_in_frame_chunks_matches_one_pass(monkeypatch):
    up = _randomize(PixelShuffleUpsample(8, (2, 2, 1), 2))
    x = torch.randn(1, 5, 3, 2, 8)
    with torch.no_grad():
        y = up.proj(x).view(1, 5, 3, 2, 4, 2, 2, 1).permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(1, 10, 6, 2, 4)
        monkeypatch.setattr(blocks, "CHUNK_ELEMENTS", 100)
        torch.testing.assert_close(up(x, drop_first_frame=True), y[:, 1:])
        torch.testing.assert_close(up(x, drop_first_frame=False), y)
