"""Unit tests of the video VAE: full-size key/shape layout, input validation, padding, tiled decoding."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from comfyui_avgen.models.checkpoint import CheckpointFile, build_on_meta
from comfyui_avgen.models.video_vae import (
    VideoVAE,
    VideoVAEConfig,
    VideoVAEInputError,
    load_video_vae,
    to_rgb01,
)
from comfyui_avgen.models.video_vae.convolution import CausalConv3d
from comfyui_avgen.models.video_vae.tiling import TilingOptions, decode_tiled, iter_decode_tiled, split_axis
from reference import manifest

REFERENCE = Path(__file__).resolve().parent.parent.parent / "shared" / "reference"
GOLDEN = Path(__file__).resolve().parent.parent.parent / "shared" / "golden"
FAMILIES = {"ltx2": "ltx2_19b", "ltx23": "ltx23_22b"}


def _full_size_config(variant: str) -> dict:
    return json.loads((REFERENCE / "configs" / f"{variant}_metadata.json").read_text())["config"]


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def tiny(request):
    return load_video_vae(GOLDEN / request.param / "checkpoint.safetensors")


@pytest.mark.parametrize("variant", sorted(FAMILIES.values()))
@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_full_size_layout_matches_manifest(variant, part):
    config = _full_size_config(variant)
    vae = build_on_meta(lambda: VideoVAE(VideoVAEConfig.from_config(config), parts=(part,)))
    got = {f"vae.{k}": tuple(v.shape) for k, v in vae.state_dict().items()}
    assert got == manifest(variant, f"video_vae_{part}")


def test_full_size_geometry():
    for variant in FAMILIES.values():
        config = VideoVAEConfig.from_config(_full_size_config(variant))
        assert config.encoder_scale == config.decoder_scale == (8, 32, 32)
        assert config.decoder_bottleneck_channels == 1024 and not config.timestep_conditioning
    assert VideoVAEConfig.from_config(_full_size_config("ltx2_19b")).decoder_padding == "reflect"
    assert VideoVAEConfig.from_config(_full_size_config("ltx23_22b")).decoder_padding == "zeros"


def test_timestep_conditioning_detected_from_keys(tmp_path):
    tscond = CheckpointFile(GOLDEN / "ltx2" / "checkpoint_vae_tscond.safetensors")
    assert VideoVAEConfig.from_checkpoint(tscond).timestep_conditioning
    plain = CheckpointFile(GOLDEN / "ltx2" / "checkpoint.safetensors")
    assert not VideoVAEConfig.from_checkpoint(plain).timestep_conditioning
    # metadata says false, the weights say true: the weights win (the 19B metadata may be wrong).
    config = tscond.config
    config["vae"]["timestep_conditioning"] = False
    path = tmp_path / "vae_mislabelled.safetensors"
    tensors = {k: tscond.get(k).contiguous() for k in tscond.keys()}
    save_file(tensors, str(path), metadata={"config": json.dumps(config)})
    vae = load_video_vae(path, parts=("decoder",))
    assert vae.decoder.timestep_conditioning and vae.encoder is None


def test_bad_sizes_raise_named_errors(tiny):
    with pytest.raises(VideoVAEInputError, match="F = 1 \\+ 8"):
        tiny.encode(torch.zeros(1, 3, 8, 64, 64))
    with pytest.raises(VideoVAEInputError, match="multiples of 32"):
        tiny.encode(torch.zeros(1, 3, 9, 48, 64))
    with pytest.raises(VideoVAEInputError, match="pixels"):
        tiny.encode(torch.zeros(1, 4, 9, 64, 64))
    with pytest.raises(VideoVAEInputError, match="latent"):
        tiny.decode(torch.zeros(1, 5, 2, 2, 2))
    thin = torch.zeros(1, 4, 2, 1, 3)
    if tiny.config.decoder_padding == "reflect":
        with pytest.raises(VideoVAEInputError, match="reflection"):
            tiny.decode(thin)
    else:
        assert tiny.decode(thin).shape == (1, 3, 9, 32, 96)


def test_decode_shapes_and_rgb01(tiny):
    pixels = tiny.decode(torch.randn(2, 4, 3, 2, 3, generator=torch.Generator().manual_seed(1)))
    assert pixels.shape == (2, 3, 17, 64, 96) and pixels.dtype == torch.float32
    frames = to_rgb01(pixels)
    assert frames.shape == (2, 17, 64, 96, 3) and frames.min() >= 0 and frames.max() <= 1
    assert tiny.encode(pixels.clamp(-1, 1)).shape == (2, 4, 3, 2, 3)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_buffered_padding_matches_concatenate_then_pad(causal, padding):
    torch.manual_seed(0)
    conv = CausalConv3d(3, 5, 3, causal, padding)
    x = torch.randn(2, 3, 4, 5, 6)
    front = 2 if causal else 1
    padded = torch.cat([x[:, :, :1]] * front + [x] + ([] if causal else [x[:, :, -1:]]), dim=2)
    padded = F.pad(padded, (1, 1, 1, 1, 0, 0), mode="constant" if padding == "zeros" else "reflect")
    with torch.no_grad():
        torch.testing.assert_close(conv(x), conv.conv(padded), atol=1e-6, rtol=1e-5)


def test_split_axis():
    assert split_axis(5, None, 0) == [(0, 5)]
    assert split_axis(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert split_axis(9, 4, 0, min_tile=2) == [(0, 4), (4, 9)]
    with pytest.raises(ValueError, match="overlap"):
        TilingOptions(spatial_tile=4, spatial_overlap=2)
    assert TilingOptions.from_pixels() == TilingOptions(24, 2, 10, 3)


class _LocalDecoder(torch.nn.Module):
    """Stand-in decoder without receptive field: latent frame 0 -> 1 frame, others -> 8; 32×32 pixels each."""

    timestep_conditioning = False

    def forward(self, z, t=None):
        x = z[:, :3]
        x = torch.cat([x[:, :, :1], x[:, :, 1:].repeat_interleave(8, dim=2)], dim=2)
        return x.repeat_interleave(32, dim=3).repeat_interleave(32, dim=4)


def test_tiling_weights_and_mapping_are_exact(tiny, monkeypatch):
    """With a decoder without receptive field the blend must reproduce the untiled output exactly."""
    latent = torch.randn(1, 4, 9, 7, 5, generator=torch.Generator().manual_seed(2))
    vae = VideoVAE(tiny.config, parts=("decoder",))
    vae.per_channel_statistics.load_state_dict(tiny.per_channel_statistics.state_dict())
    vae.decoder = _LocalDecoder()
    vae.decoder.conv_in = tiny.decoder.conv_in  # dtype / device probe used by decoder_input
    full = vae.decode(latent)
    for options in (TilingOptions(3, 1, 4, 1), TilingOptions(4, 0, 3, 0), TilingOptions(None, 0, 5, 2)):
        torch.testing.assert_close(decode_tiled(vae, latent, options), full, atol=1e-5, rtol=1e-5)


def test_tiled_decode_close_to_untiled_and_progressive(tiny):
    """Tiled = untiled outside the blend zones; inside them the tiles differ because the tiny random decoder's
    influence reaches ~7 latent units and decays slowly, so only the average error is bounded there."""
    gen = torch.Generator().manual_seed(3)
    cases = (((1, 4, 2, 2, 40), TilingOptions(28, 12, None, 0), 4, (32 * 16, 32 * 28)),  # spans (0,28) (16,40)
             ((1, 4, 26, 2, 2), TilingOptions(None, 0, 18, 8), 2, (8 * 9, 1 + 8 * 17)))  # (0,18) (10,26)
    for shape, options, axis, (z0, z1) in cases:
        latent = torch.randn(*shape, generator=gen)
        full = tiny.decode(latent)
        calls = []
        hook = tiny.decoder.register_forward_pre_hook(lambda m, args: calls.append(tuple(args[0].shape)))
        try:
            chunks, calls_at_first_chunk = [], None
            for chunk in iter_decode_tiled(tiny, latent, options):
                calls_at_first_chunk = calls_at_first_chunk or len(calls)
                chunks.append(chunk)
        finally:
            hook.remove()
        tiled = torch.cat(chunks, dim=2)
        assert tiled.shape == full.shape
        # the decoder never sees the whole latent: every tile is strictly smaller along the tiled axis
        assert len(calls) == 2 and all(s[axis] < shape[axis] for s in calls)
        err = (tiled - full).abs()
        outside = torch.cat([err.narrow(axis, 0, z0), err.narrow(axis, z1, err.shape[axis] - z1)], dim=axis)
        assert outside.max() < 1e-4
        assert err.mean() < 0.05 * full.abs().mean(), err.mean()
        if options.temporal_tile:
            assert len(chunks) == 2 and calls_at_first_chunk == 1  # frames handed out before the last tile


@pytest.mark.parametrize("latent_channels,base", [(12, 4), (12, 3), (5, 1)])
def test_depth_to_space_without_residual_takes_any_channel_count(latent_channels, base):
    """LTX-2.3-style decoder (no residual path) with channel counts that do not divide by the (2, 2, 2) stride
    volume: only the residual path needs that, so it builds and decodes F -> 8(F - 1) + 1 frames, 32x the size."""
    config = json.loads(CheckpointFile(GOLDEN / "ltx23" / "checkpoint.safetensors").metadata["config"])["vae"]
    config = {**config, "latent_channels": latent_channels, "decoder_base_channels": base}
    vae = VideoVAE(VideoVAEConfig.from_config(config), parts=("decoder",)).eval()
    with torch.no_grad():
        pixels = vae.decoder(torch.randn(1, latent_channels, 2, 1, 2))
    assert pixels.shape == (1, 3, 9, 32, 64)


def test_residual_depth_to_space_still_needs_divisible_channels():
    config = json.loads(CheckpointFile(GOLDEN / "ltx2" / "checkpoint.safetensors").metadata["config"])["vae"]
    with pytest.raises(ValueError, match="residual upsampler on 12 channels, stride .*divide by the stride volume"):
        VideoVAE(VideoVAEConfig.from_config({**config, "decoder_base_channels": 3}), parts=("decoder",))
