"""Models build from any config the official format allows, not only the released ones.

Random weights, small sizes; each test checks the output shape the format's rules give for that config (frames
8(F-1)+1 generalised to the config's time strides, pixels per latent cell from its space strides and patch size;
4T - 3 mel frames per T audio latent frames when causal, 4T when not), the official checkpoint key layout of the
parts a config adds, upstream's numerics where a block is new, and a ValueError naming the key for configs the
official code refuses too (at build or at run time) or that this implementation does not build.
"""
from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
import torch.nn.functional as F
from golden import SHARED_GOLDEN

from comfyui_avgen.models.audio.audio_vae import AudioVAE, AudioVAEConfig
from comfyui_avgen.models.audio.vocoder import build_vocoder
from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.positions import audio_positions, video_positions
from comfyui_avgen.models.rope import _frequency_grid, apply_rope, rope_cos_sin
from comfyui_avgen.models.text.text_config import TextEmbedderConfig
from comfyui_avgen.models.text.text_embedder import build_text_embedder
from comfyui_avgen.models.transformer import StreamInput, TransformerConfig, build_transformer
from comfyui_avgen.models.video_vae import VideoVAE, VideoVAEConfig
from comfyui_avgen.models.video_vae.blocks import FrameAttention, ResnetBlock3D, pixel_norm
from comfyui_avgen.models.video_vae.config import RESIDUAL_ON_EVERY_UPSAMPLER
from comfyui_avgen.models.video_vae.convolution import CausalConv3d
from comfyui_avgen.tiny import builtin

CONFIG = {family: json.loads(CheckpointFile(SHARED_GOLDEN / family / "checkpoint.safetensors").metadata["config"])
          for family in ("ltx2", "ltx23")}
STRIDES = {"compress_space": (1, 2, 2), "compress_time": (2, 1, 1), "compress_all": (2, 2, 2)}


# ---- video VAE

def _vae(encoder_blocks, decoder_blocks, **overrides) -> VideoVAE:
    config = {**CONFIG["ltx23"]["vae"], "encoder_blocks": encoder_blocks, "decoder_blocks": decoder_blocks,
              **overrides}
    torch.manual_seed(0)
    return VideoVAE(VideoVAEConfig.from_config(config)).eval()


def _decoded_shape(latent_shape, blocks, patch=4):
    b, _, f, h, w = latent_shape
    for name, _ in blocks:
        if name in STRIDES:
            st, sh, sw = STRIDES[name]
            f, h, w = f * st - (st - 1), h * sh, w * sw
    return b, 3, f, h * patch, w * patch


DECODER_CASES = [
    (name, multiplier, residual)
    for name, multiplier, residual in itertools.product(STRIDES, (1, 2), (False, True))
]


def test_issue_case_12_latent_channels_and_a_2x2x2_depth_to_space_without_residual():
    """The LTX-2.3 layout with 12 latent channels and 3 base channels: a (2, 2, 2) upsampler (residual off) runs
    on 12 channels, which the stride volume 8 does not divide; only the residual path needs that."""
    config = {**CONFIG["ltx23"]["vae"], "latent_channels": 12, "decoder_base_channels": 3}
    vae = VideoVAE(VideoVAEConfig.from_config(config), parts=("decoder",)).eval()
    upsamplers = [b for b in vae.decoder.up_blocks if hasattr(b, "stride")]
    assert [(b.stride, b.conv.conv.in_channels, b.residual) for b in upsamplers][:2] == [
        ((2, 2, 2), 24, False), ((2, 2, 2), 12, False)]
    with torch.no_grad():
        pixels = vae.decoder(torch.randn(1, 12, 3, 2, 1))
    assert tuple(pixels.shape) == (1, 3, 8 * (3 - 1) + 1, 2 * 32, 32)


@pytest.mark.parametrize("name,multiplier,residual", DECODER_CASES)
def test_every_decoder_upsampler_with_and_without_residual(name, multiplier, residual):
    """One upsampler of each kind between two resnet groups; 8 base channels so the residual path divides."""
    params = {"multiplier": multiplier, "residual": residual}
    blocks = [["res_x", {"num_layers": 1}], [name, params], ["res_x", {"num_layers": 2}]]
    vae = _vae([["res_x", {"num_layers": 1}]], blocks, latent_channels=5, decoder_base_channels=8)
    latent = torch.randn(1, 5, 3, 2, 3)
    with torch.no_grad():
        assert tuple(vae.decoder(latent).shape) == _decoded_shape(latent.shape, blocks)


@pytest.mark.parametrize("latent_channels,base", [(12, 3), (7, 5), (1, 1), (3, 6)])
def test_odd_channel_counts_build_and_decode(latent_channels, base):
    blocks = [["res_x", {"num_layers": 1}], ["compress_all", {"multiplier": 1}], ["compress_space", {"multiplier": 2}],
              ["compress_time", {"multiplier": 1}]]
    vae = _vae([["res_x", {"num_layers": 1}]], blocks, latent_channels=latent_channels, decoder_base_channels=base)
    latent = torch.randn(1, latent_channels, 2, 2, 2)
    with torch.no_grad():
        assert tuple(vae.decoder(latent).shape) == _decoded_shape(latent.shape, blocks)


@pytest.mark.parametrize("order", list(itertools.permutations(["compress_space_res", "compress_time_res",
                                                                 "compress_all_res"])))
def test_encoder_block_lists_in_any_order_compress_by_their_strides(order):
    blocks = [["res_x", {"num_layers": 1}]] + [[name, {"multiplier": 2}] for name in order]
    vae = _vae(blocks, [["res_x", {"num_layers": 1}]], encoder_base_channels=4)
    t = math.prod(STRIDES[n.removesuffix("_res")][0] for n in order)
    s = 4 * math.prod(STRIDES[n.removesuffix("_res")][1] for n in order)
    assert vae.config.encoder_scale == (t, s, s)
    frames = 1 + 2 * t
    with torch.no_grad():
        latent = vae.encode(torch.rand(1, 3, frames, 2 * s, s) * 2 - 1)
    assert tuple(latent.shape) == (1, vae.config.latent_channels, 3, 2, 1)


@pytest.mark.parametrize("name", ["compress_space", "compress_time", "compress_all", "compress_all_x_y"])
def test_encoder_strided_convolutions_and_channel_resnets(name):
    """Plain strided causal convs (official default multiplier 1, 2 for _x_y) and res_x_y (x2 channels with a
    GroupNorm + 1x1 conv shortcut) in the encoder; the latent keeps the format's frame rule 1 + (F - 1) / s_t."""
    blocks = [["res_x_y", {"multiplier": 3}], [name, {}], ["res_x", {"num_layers": 1}]]
    vae = _vae(blocks, [["res_x", {"num_layers": 1}]], latent_channels=2)
    state = vae.encoder.state_dict()
    assert state["down_blocks.0.conv1.conv.weight"].shape[:2] == (6, 2)
    assert state["down_blocks.0.norm3.weight"].shape == (2,) and state["down_blocks.0.conv_shortcut.weight"].shape == (
        6, 2, 1, 1, 1)
    out = 12 if name.endswith("_x_y") else 6
    assert state["down_blocks.1.conv.weight"].shape[:2] == (out, 6)
    st, sh, sw = STRIDES[name.removesuffix("_x_y")]
    with torch.no_grad():
        latent = vae.encode(torch.rand(1, 3, 1 + 2 * st, 8 * sh, 8 * sw) * 2 - 1)
    assert tuple(latent.shape) == (1, 2, 3, 2, 2)


def test_encoder_plain_strided_convs_keep_the_channels_whatever_multiplier_says():
    """The official encoder builds compress_space / time / all as in -> in convs (only compress_all_x_y reads
    `multiplier`)."""
    vae = _vae([["compress_all", {"multiplier": 4}], ["compress_all_x_y", {"multiplier": 3}]],
               [["res_x", {"num_layers": 1}]], latent_channels=2)
    assert [spec.multiplier for spec in vae.config.encoder_blocks] == [1, 3]
    assert vae.encoder.conv_out.conv.in_channels == 6


def test_decoder_channel_resnet_and_residual_only_on_compress_all():
    blocks = [["res_x_y", {"multiplier": 2}], ["compress_space", {"multiplier": 2, "residual": True}],
              ["compress_all", {"residual": True}]]
    vae = _vae([["res_x", {"num_layers": 1}]], blocks, latent_channels=3, decoder_base_channels=4)
    specs = {spec.name: spec for spec in vae.config.decoder_blocks}
    assert (specs["compress_space"].residual, specs["compress_all"].residual) == (False, True)  # as the official code
    assert vae.config.decoder_bottleneck_channels == 4 * 2 * 2  # res_x_y's multiplier counts, like an upsampler's
    state = vae.decoder.state_dict()
    assert state["up_blocks.2.conv_shortcut.weight"].shape == (4, 8, 1, 1, 1)  # last listed block runs last
    latent = torch.randn(1, 3, 2, 2, 2)
    with torch.no_grad():
        assert tuple(vae.decoder(latent).shape) == _decoded_shape(latent.shape, blocks)


def test_residual_on_other_upsamplers_only_with_this_projects_extension_key():
    """AVGen-Tiny's decoder was trained with a compress_time shortcut: its config says so with its own key, and
    the shipped weights file carries it; official configs keep the official rule."""
    blocks = [["compress_time", {"residual": True}], ["compress_space", {"multiplier": 2, "residual": True}]]
    official = _vae([["res_x", {"num_layers": 1}]], blocks, latent_channels=4, decoder_base_channels=8)
    extended = _vae([["res_x", {"num_layers": 1}]], blocks, latent_channels=4, decoder_base_channels=8,
                    **{RESIDUAL_ON_EVERY_UPSAMPLER: True})
    assert [b.residual for b in official.config.decoder_blocks] == [False, False]
    assert [b.residual for b in extended.config.decoder_blocks] == [True, True]
    shipped = VideoVAEConfig.from_config(CheckpointFile(builtin.checkpoint_path()).config)
    assert [b.residual for b in shipped.decoder_blocks if b.name != "res_x"] == [True, True, True]


def test_timestep_conditioned_decoder_with_unusual_blocks():
    """Conditioned res_x groups next to blocks that take no timestep (attn, res_x_y) and injected noise."""
    blocks = [["res_x", {"num_layers": 2, "inject_noise": True}], ["attn", {}], ["compress_time", {"multiplier": 1}],
              ["res_x_y", {"multiplier": 2}], ["res_x", {"num_layers": 1}]]
    vae = _vae([["res_x", {"num_layers": 1}]], blocks, latent_channels=3, decoder_base_channels=4,
               timestep_conditioning=True)
    assert "up_blocks.0.time_embedder.timestep_embedder.linear_1.weight" in vae.decoder.state_dict()
    assert "up_blocks.1.scale_shift_table" not in vae.decoder.state_dict()  # res_x_y: never conditioned
    latent = torch.randn(2, 3, 2, 1, 1)
    with torch.no_grad():
        assert tuple(vae.decoder(latent, torch.tensor([0.05, 0.05])).shape) == _decoded_shape(latent.shape, blocks)


def test_group_norm_vae_has_affine_norms_in_resnets_and_before_conv_out():
    """norm_layer group_norm (official: GroupNorm with 32 groups, eps 1e-6, in every resnet and before conv_out)."""
    blocks = [["res_x", {"num_layers": 1}], ["compress_all", {"multiplier": 1}], ["res_x_y", {"multiplier": 2}]]
    vae = _vae([["res_x", {"num_layers": 1}], ["compress_all_res", {"multiplier": 2}]], blocks, latent_channels=32,
               decoder_base_channels=32, norm_layer="group_norm")
    decoder = vae.decoder.state_dict()
    for key in ("up_blocks.2.res_blocks.0.norm1.weight", "up_blocks.2.res_blocks.0.norm2.bias",
                "up_blocks.0.norm1.weight", "up_blocks.0.norm3.weight", "conv_norm_out.weight"):  # run order
        assert key in decoder, key
    assert vae.encoder.state_dict()["conv_norm_out.weight"].shape == (64,)
    latent = torch.randn(1, 32, 2, 1, 1)
    with torch.no_grad():
        before = vae.decoder(latent)
        vae.decoder.conv_norm_out.bias.fill_(3.0)  # the final norm's affine parameters are used
        after = vae.decoder(latent)
    assert before.shape == _decoded_shape(latent.shape, blocks) and not torch.allclose(before, after)
    with pytest.raises(ValueError, match="12 channels do not divide into 32 groups"):
        _vae([["res_x", {"num_layers": 1}]], blocks, latent_channels=12, norm_layer="group_norm")


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("causal,stride", [(True, (1, 1, 1)), (False, (1, 1, 1)), (True, (2, 2, 2))])
def test_every_official_padding_mode_pads_like_conv3d(mode, causal, stride):
    """The official convs pad space with nn.Conv3d's padding_mode (zeros / reflect / replicate / circular) and
    time by repeating the first (and, non-causal, last) frame."""
    torch.manual_seed(0)
    ours = CausalConv3d(3, 4, 3, causal, mode, stride=stride)
    reference = torch.nn.Conv3d(3, 4, 3, stride=stride, padding=(0, 1, 1), padding_mode=mode)
    reference.load_state_dict(ours.conv.state_dict())
    x = torch.randn(2, 3, 5, 6, 7)
    front = x[:, :, :1].repeat(1, 1, 2 if causal else 1, 1, 1)
    padded = torch.cat([front, x] if causal else [front, x, x[:, :, -1:]], dim=2)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(padded))


@pytest.mark.parametrize("mode", ["replicate", "circular"])
def test_vae_with_replicate_or_circular_padding_encodes_and_decodes(mode):
    blocks = [["res_x", {"num_layers": 1}], ["compress_all", {"multiplier": 2}]]
    vae = _vae([["res_x", {"num_layers": 1}], ["compress_all_res", {"multiplier": 2}]], blocks, latent_channels=8,
               spatial_padding_mode=mode)
    assert vae.config.encoder_padding == vae.config.decoder_padding == mode
    with torch.no_grad():
        latent = vae.encode(torch.rand(1, 3, 3, 8, 16) * 2 - 1)
        assert tuple(latent.shape) == (1, 8, 2, 1, 2)
        assert tuple(vae.decode(latent).shape) == _decoded_shape(latent.shape, blocks)


def _official_frame_attention(block: FrameAttention, x: torch.Tensor) -> torch.Tensor:
    """Upstream's AttnBlock3D written out: per frame, RMS-normalised channels, one head of width C."""
    b, c, t, h, w = x.shape
    frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    normed = F.normalize(frames, dim=1) * (c ** 0.5 * block.norm.gamma)
    q, k, v = block.to_qkv(normed).reshape(b * t, 3 * c, h * w).permute(0, 2, 1).chunk(3, dim=-1)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1)
    out = block.proj((weights @ v).permute(0, 2, 1).reshape(b * t, c, h, w))
    return x + out.reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


def test_attention_blocks_in_encoder_and_decoder():
    """``attn`` (both sides): single-head self-attention over each frame's positions, channels kept."""
    blocks = [["res_x", {"num_layers": 1}], ["attn", {}], ["compress_space", {"multiplier": 2}], ["attn", {}]]
    vae = _vae([["attn", {}], ["compress_all_res", {"multiplier": 2}], ["attn", {}]], blocks, latent_channels=4,
               decoder_base_channels=3)
    keys = vae.state_dict()
    assert keys["encoder.down_blocks.2.to_qkv.weight"].shape == (24, 8, 1, 1)
    assert keys["decoder.up_blocks.0.norm.gamma"].shape == (6, 1, 1)  # runs first, before the x2 upsampler
    assert keys["decoder.up_blocks.2.proj.weight"].shape == (3, 3, 1, 1)
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        latent = vae.encode(torch.rand(1, 3, 3, 16, 24) * 2 - 1)
        assert tuple(latent.shape) == (1, 4, 2, 2, 3)
        assert tuple(vae.decode(latent).shape) == _decoded_shape(latent.shape, blocks)
        block, x = vae.decoder.up_blocks[0], torch.randn(2, 6, 3, 4, 5)
        torch.testing.assert_close(block(x), _official_frame_attention(block, x))


def test_injected_noise_follows_upstream():
    """A decoder ``inject_noise`` resnet adds ``per_channel_scale[c] · n[y, x]`` after each conv: one standard
    normal (H, W) map per conv, drawn from the decode generator in order."""
    torch.manual_seed(0)
    block = ResnetBlock3D(4, False, "zeros", inject_noise=True)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn_like(p))
        x = torch.randn(2, 4, 3, 5, 6)
        generator = torch.Generator().manual_seed(7)
        first, second = torch.randn((5, 6), generator=generator), torch.randn((5, 6), generator=generator)
        h = block.conv1(F.silu(pixel_norm(x))) + block.per_channel_scale1[None, :, None] * first
        h = block.conv2(F.silu(pixel_norm(h))) + block.per_channel_scale2[None, :, None] * second
        torch.testing.assert_close(block(x, generator=torch.Generator().manual_seed(7)), x + h)


def test_decoder_with_injected_noise_decodes_reproducibly_per_generator():
    blocks = [["res_x", {"num_layers": 1, "inject_noise": True}], ["compress_all", {"multiplier": 2}],
              ["res_x_y", {"multiplier": 1, "inject_noise": True}]]
    vae = _vae([["res_x", {"num_layers": 2, "inject_noise": True}]], blocks, latent_channels=3,
               decoder_base_channels=4)
    assert not any("per_channel_scale" in k for k in vae.encoder.state_dict())  # the official encoder ignores it
    scales = [k for k in vae.decoder.state_dict() if "per_channel_scale" in k]
    assert sorted(scales) == ["up_blocks.0.per_channel_scale1", "up_blocks.0.per_channel_scale2",
                              "up_blocks.2.res_blocks.0.per_channel_scale1",
                              "up_blocks.2.res_blocks.0.per_channel_scale2"]
    latent = torch.randn(1, 3, 2, 2, 2)

    def decode(seed):
        return vae.decode(latent, generator=torch.Generator().manual_seed(seed))

    quiet = decode(0)
    torch.testing.assert_close(quiet, decode(1))  # zero-initialised scales: no noise yet
    with torch.no_grad():
        for name in scales:
            vae.decoder.get_parameter(name).fill_(0.5)
    assert decode(0).shape == _decoded_shape(latent.shape, blocks) == quiet.shape
    torch.testing.assert_close(decode(0), decode(0))
    assert not torch.allclose(decode(0), decode(1))


@pytest.mark.parametrize("side,blocks,message", [
    ("decoder", [["res_x", {}]], "res_x needs num_layers"),
    ("decoder", [["compress_all", {"multiplier": 0}]], "multiplier must be a positive integer"),
    ("encoder", [["compress_all_res", {"multiplier": 1.5}]], "multiplier must be a positive integer"),
    ("decoder", [["attn_res_x", {"num_layers": 1, "attention_head_dim": 8}]], "attn_res_x is not supported"),
    ("decoder", [["res_x_y", {"multiplier": 2, "inject_noise": True}]], "cannot inject noise"),
    ("encoder", [["compress_everything", {}]], "unknown block 'compress_everything'"),
])
def test_block_lists_the_official_code_cannot_build_name_the_entry(side, blocks, message):
    other = [["res_x", {"num_layers": 1}]]
    with pytest.raises(ValueError, match=message):
        _vae(blocks if side == "encoder" else other, blocks if side == "decoder" else other, latent_channels=4)


def test_diffusion_vae_configs_are_refused_by_class_name():
    with pytest.raises(ValueError, match="_class_name 'CausalDiffusionVAE' is not supported"):
        VideoVAEConfig.from_config({**CONFIG["ltx23"]["vae"], "_class_name": "CausalDiffusionVAE"})


# ---- audio VAE

def _audio_config(**ddconfig) -> dict:
    config = json.loads(json.dumps(CONFIG["ltx2"]["audio_vae"]))
    config["model"]["params"]["ddconfig"].update(ddconfig)
    return config


def _audio_vae(**ddconfig) -> AudioVAE:
    torch.manual_seed(0)
    vae = AudioVAE(AudioVAEConfig.from_config(_audio_config(**ddconfig))).eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        vae.per_channel_statistics.get_buffer("std-of-means").fill_(1.0)
        vae.per_channel_statistics.get_buffer("mean-of-means").fill_(0.0)
    return vae


@pytest.mark.parametrize("ch_mult,num_res_blocks,z", [((1,), 1, 1), ((1, 2), 3, 2), ((2, 1, 1, 3), 1, 4)])
def test_audio_vae_level_counts(ch_mult, num_res_blocks, z):
    config = _audio_config(ch_mult=list(ch_mult), num_res_blocks=num_res_blocks, z_channels=z, ch=8)
    torch.manual_seed(0)
    vae = AudioVAE(AudioVAEConfig.from_config(config)).eval()
    factor = 2 ** (len(ch_mult) - 1)
    with torch.no_grad():
        latent = vae.encode(torch.randn(1, 2, 4 * factor + 1, 64))
        assert tuple(latent.shape) == (1, z, -(-(4 * factor + 1) // factor), 64 // factor)
        assert tuple(vae.decode(latent).shape[1::2]) == (2, 64)


@pytest.mark.parametrize("resolutions,mid", [((64,), False), ((256, 128), True), ((), True)])
def test_audio_vae_attention_where_the_config_asks(resolutions, mid):
    """Attention after every resnet of a level whose resolution (256 halved per level) is listed, and between
    the middle resnets with mid_block_add_attention: keys as the official layout, shapes unchanged."""
    config = _audio_config(attn_resolutions=list(resolutions), mid_block_add_attention=mid, ch=8, ch_mult=[1, 2, 2],
                           num_res_blocks=1)
    torch.manual_seed(0)
    vae = AudioVAE(AudioVAEConfig.from_config(config)).eval()
    keys = vae.state_dict().keys()
    levels = {0: 256, 1: 128, 2: 64}
    for level, size in levels.items():
        assert (f"encoder.down.{level}.attn.0.q.weight" in keys) == (size in resolutions)
        assert (f"decoder.up.{level}.attn.1.proj_out.weight" in keys) == (size in resolutions)  # 2 resnets a level
    assert ("encoder.mid.attn_1.k.weight" in keys) == mid and ("decoder.mid.attn_1.v.bias" in keys) == mid
    with torch.no_grad():
        latent = vae.encode(torch.randn(1, 2, 17, 64))
        assert tuple(latent.shape) == (1, 1, 5, 16)
        assert tuple(vae.decode(latent).shape) == (1, 2, 17, 64)


@pytest.mark.parametrize("axis", ["none", None])
def test_audio_vae_without_causality(axis):
    """causality_axis "none" (JSON null alike): symmetric padding, time halves rounding down per level, every
    upsampled row kept, so T latent frames decode to 4T mel frames (not 4T - 3)."""
    vae = _audio_vae(causality_axis=axis)
    assert not vae.cfg.causal
    conv = vae.encoder.conv_in
    mel = torch.randn(1, 2, 21, 64)
    with torch.no_grad():
        torch.testing.assert_close(conv(mel), F.conv2d(mel, conv.conv.weight, conv.conv.bias, padding=1))
        latent = vae.encode(mel)
        assert tuple(latent.shape) == (1, 1, 21 // 2 // 2, 16)
        assert tuple(vae.decode(latent).shape) == (1, 2, 4 * 5, 64)


def test_audio_vae_group_norm_average_pooling_and_encoder_attention_type():
    """Non-causal options: GroupNorm(32) with weights everywhere (norm1/norm2/norm_out/attention norm), average
    pooling instead of strided convs in the encoder (resamp_with_conv false; the decoder always convolves), and
    attn_type "none" (identity attention in the encoder only, as upstream)."""
    vae = _audio_vae(causality_axis="none", norm_type="group", ch=32, resamp_with_conv=False,
                     attn_resolutions=[64], mid_block_add_attention=True, attn_type="none")
    keys = vae.state_dict()
    for key in ("encoder.down.0.block.0.norm1.weight", "encoder.norm_out.bias", "decoder.up.2.block.1.norm2.weight",
                "decoder.up.2.attn.0.norm.weight", "decoder.mid.attn_1.q.weight",
                "decoder.up.1.upsample.conv.conv.weight"):
        assert key in keys, key
    assert not any(".attn" in k for k in keys if k.startswith("encoder."))
    assert not any("downsample" in k for k in keys)
    with torch.no_grad():
        latent = vae.encode(torch.randn(2, 2, 16, 64))
        assert tuple(latent.shape) == (2, 1, 4, 16)
        assert tuple(vae.decode(latent).shape) == (2, 2, 16, 64)


def test_audio_vae_config_defaults_are_the_official_ones():
    """Missing ddconfig keys take the official configurators' defaults; mel_bins falls back to the front end's."""
    config = {"model": {"params": {"ddconfig": {}}}, "preprocessing": {"mel": {"n_mel_channels": 80}}}
    cfg = AudioVAEConfig.from_config(config)
    assert (cfg.ch, cfg.ch_mult, cfg.num_res_blocks, cfg.z_channels) == (128, (1, 2, 4), 2, 8)
    assert (cfg.mel_bins, cfg.latent_mel_bins, cfg.causal, cfg.mid_attention) == (80, 20, True, True)


@pytest.mark.parametrize("changes,message", [
    ({"norm_type": "group"}, "norm_type='group' is not supported with causality_axis='height'"),
    ({"resamp_with_conv": False}, "resamp_with_conv=false is not supported"),
    ({"causality_axis": "width-compatibility"}, "causality_axis='width-compatibility' is not supported"),
    ({"attn_type": "linear", "mid_block_add_attention": True}, "attn_type 'linear' is not supported"),
    ({"causality_axis": "none", "norm_type": "group", "ch": 12}, "12 channels do not divide into 32 groups"),
])
def test_audio_vae_configs_upstream_refuses_or_we_do_not_build_name_the_key(changes, message):
    with pytest.raises(ValueError, match=message):
        AudioVAE(AudioVAEConfig.from_config(_audio_config(**changes)))


# ---- vocoders

@pytest.mark.parametrize("initial,rates", [(40, (2, 3, 2)), (33, (5, 2)), (8, (2, 2, 2))])
def test_hifigan_channel_counts_round_down_at_every_stage(initial, rates):
    vocoder = build_vocoder({"vocoder": {**CONFIG["ltx2"]["vocoder"], "upsample_initial_channel": initial,
                                         "upsample_rates": list(rates),
                                         "upsample_kernel_sizes": [2 * r + r % 2 for r in rates]}})
    assert vocoder.state_dict()["conv_post.weight"].shape[1] == initial // 2 ** len(rates)
    with torch.no_grad():
        assert tuple(vocoder(torch.randn(1, 2, 5, 64)).shape) == (1, 2, 5 * math.prod(rates))


@pytest.mark.parametrize("activation,has_beta", [("snake", False), ("snakebeta", True), (None, False)])
def test_bigvgan_with_snake_or_snakebeta(activation, has_beta):
    """Absent `activation` is plain Snake in the official Vocoder class; its final activation (act_post) is a
    SnakeBeta whatever `activation` says."""
    stage1 = {k: v for k, v in CONFIG["ltx23"]["vocoder"]["vocoder"].items() if k != "activation"}
    if activation:
        stage1["activation"] = activation
    vocoder = build_vocoder({"vocoder": {**CONFIG["ltx23"]["vocoder"], "vocoder": stage1}})
    keys = [k for k in vocoder.state_dict() if k.startswith("vocoder.resblocks.")]  # stage 1's AMP blocks
    assert any(k.endswith("act.alpha") for k in keys)
    assert any(k.endswith("act.beta") for k in keys) == has_beta
    assert "vocoder.act_post.act.beta" in vocoder.state_dict()
    with torch.no_grad():
        assert tuple(vocoder(torch.randn(1, 2, 3, 64)).shape) == (1, 2, 3 * vocoder.samples_per_frame)


def _official_length(frames, rates, kernels):
    """Upstream's transposed convs (padding (k - r) // 2): L -> L * r + (k - r) % 2 per stage."""
    for rate, kernel in zip(rates, kernels):
        frames = frames * rate + (kernel - rate) % 2
    return frames


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("rates,kernels", [((4, 6, 10), (8, 12, 20)), ((2, 3), (3, 4)), ((5,), (6,))])
def test_hifigan_upsample_lists_and_kernels_of_any_parity(rates, kernels):
    """Even resblock kernels ("same" padding, one more sample on the right) and dilation lists longer than 3 (the
    official blocks read three) build and run; odd kernel - rate differences add a sample per stage as upstream."""
    config = {**CONFIG["ltx2"]["vocoder"], "upsample_initial_channel": 16, "upsample_rates": list(rates),
              "upsample_kernel_sizes": list(kernels), "resblock_kernel_sizes": [2, 3, 4],
              "resblock_dilation_sizes": [[1, 2, 3, 9], [1, 3, 5], [2, 2, 2, 2]]}
    vocoder = build_vocoder({"vocoder": config})
    assert len(vocoder.resblocks) == 3 * len(rates) and len(vocoder.resblocks[0].convs1) == 3
    assert vocoder.resblocks[0].convs1[2].dilation == (3,)
    with torch.no_grad():
        wave = vocoder(torch.randn(2, 2, 5, 64))
    assert tuple(wave.shape) == (2, 2, _official_length(5, rates, kernels))
    assert wave.abs().max() < 1  # tanh


def test_bwe_vocoder_with_other_generators():
    """Other stage-1 and BWE upsampling lists, widths and resblock lists; 3x the 16 kHz length at 48 kHz."""
    release = CONFIG["ltx23"]["vocoder"]
    stage1 = {**release["vocoder"], "upsample_initial_channel": 24, "upsample_rates": [4, 4, 10],
              "upsample_kernel_sizes": [8, 8, 10], "resblock_kernel_sizes": [3, 5, 7],
              "resblock_dilation_sizes": [[1, 3, 5]] * 3}
    bwe = {**release["bwe"], "upsample_initial_channel": 40, "upsample_rates": [3, 4, 5, 2, 2],
           "upsample_kernel_sizes": [5, 8, 11, 4, 4], "resblock_kernel_sizes": [5, 3],
           "resblock_dilation_sizes": [[1, 2, 3], [1, 3, 5]]}
    vocoder = build_vocoder({"vocoder": {**release, "vocoder": stage1, "bwe": bwe}})
    assert (vocoder.sample_rate, vocoder.samples_per_frame) == (48000, 160 * 3)
    with torch.no_grad():
        wave = vocoder(torch.randn(1, 2, 4, 64))
    assert tuple(wave.shape) == (1, 2, 4 * 480) and wave.abs().max() <= 1


@pytest.mark.parametrize("part,changes,message", [
    ("vocoder", {"resblock_kernel_sizes": [3, 4]}, "AMP1 resblock_kernel_sizes must be odd"),
    ("vocoder", {"upsample_kernel_sizes": [4, 4, 4, 4, 4, 4]}, r"upsample_kernel_sizes\[0\]=4 is smaller"),
    ("vocoder", {"resblock_dilation_sizes": [[1, 3], [1, 3, 5]]}, "3 dilations"),
    ("bwe", {"upsample_kernel_sizes": [11, 11, 4, 4, 4]}, "must be even"),
    ("bwe", {"upsample_rates": [6, 5, 2, 2, 1], "upsample_kernel_sizes": [12, 11, 4, 4, 1]}, "samples per frame"),
])
def test_vocoder_configs_upstream_cannot_run_name_the_key(part, changes, message):
    release = CONFIG["ltx23"]["vocoder"]
    with pytest.raises(ValueError, match=message):
        build_vocoder({"vocoder": {**release, part: {**release[part], **changes}}})


# ---- DiT

def _randomize(module: torch.nn.Module) -> torch.nn.Module:
    """Small random weights everywhere (some official parameters start as torch.empty)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.3)
    return module.eval()


def _dit_forward(model, frames=2):
    c = model.config
    vpos, apos = video_positions(1, frames, 2, 3, 24.0), audio_positions(1, 5)
    width_v = c.caption_channels if c.caption_projection else c.video_context_dim
    width_a = c.caption_channels if c.caption_projection else c.audio_context_dim

    def stream(positions, channels, width):
        tokens = positions.shape[2]
        return StreamInput(latent=torch.randn(1, tokens, channels), timesteps=torch.full((1, tokens, 1), 0.5),
                           sigma=torch.full((1,), 0.5), positions=positions, context=torch.randn(1, 4, width))

    with torch.no_grad():
        return model(stream(vpos, c.video_in_channels, width_v), stream(apos, c.audio_in_channels, width_a))


def _transformer(**changes) -> dict:
    config = json.loads(json.dumps(CONFIG["ltx2"]))
    config["transformer"].update(changes)
    return config


@pytest.mark.parametrize("family,changes", [
    ("ltx2", {"num_layers": 3, "num_attention_heads": 3, "audio_num_attention_heads": 3, "attention_head_dim": 6}),
    ("ltx23", {"num_layers": 1, "attention_head_dim": 10}),
    ("ltx23", {"num_attention_heads": 4, "audio_num_attention_heads": 4, "audio_attention_head_dim": 2}),
])
def test_dit_with_other_head_counts_dims_and_layer_counts(family, changes):
    """The cross-attention context widths follow the streams' widths (heads x head dim), as in the releases."""
    config = json.loads(json.dumps(CONFIG[family]))
    t = config["transformer"]
    t.update(changes)
    t["cross_attention_dim"] = t["num_attention_heads"] * t["attention_head_dim"]
    t["audio_cross_attention_dim"] = t["audio_num_attention_heads"] * t["audio_attention_head_dim"]
    torch.manual_seed(0)
    model = build_transformer(config).eval()
    video, audio = _dit_forward(model)
    c = model.config
    assert video.shape == (1, 2 * 2 * 3, c.video_in_channels) and audio.shape == (1, 5, c.audio_in_channels)
    assert len(model.transformer_blocks) == config["transformer"].get("num_layers")


@pytest.mark.parametrize("gated,adaln,projection_in_text_path", list(itertools.product((False, True), repeat=3)))
def test_dit_gated_attention_cross_attention_adaln_and_caption_projection_in_any_combination(
        gated, adaln, projection_in_text_path):
    """The three LTX-2 -> 2.3 switches are independent in the official model: every combination builds and runs."""
    config = _transformer(apply_gated_attention=gated, cross_attention_adaln=adaln,
                          caption_proj_before_connector=projection_in_text_path)
    model = _randomize(build_transformer(config))
    keys = model.state_dict()
    assert ("transformer_blocks.0.attn1.to_gate_logits.weight" in keys) == gated
    assert ("transformer_blocks.0.audio_to_video_attn.to_gate_logits.weight" in keys) == gated
    assert ("prompt_adaln_single.linear.weight" in keys) == adaln
    assert keys["transformer_blocks.1.scale_shift_table"].shape[0] == (9 if adaln else 6)
    assert ("caption_projection.linear_1.weight" in keys) == (not projection_in_text_path)
    video, audio = _dit_forward(model)
    assert video.shape == (1, 2 * 2 * 3, 4) and audio.shape == (1, 5, 16)
    assert torch.isfinite(video).all() and torch.isfinite(audio).all()


def test_dit_without_blocks_is_the_output_head_on_the_patch_projection():
    model = _randomize(build_transformer(_transformer(num_layers=0)))
    assert len(model.transformer_blocks) == 0
    video, audio = _dit_forward(model)
    assert video.shape == (1, 12, 4) and audio.shape == (1, 5, 16)


@pytest.mark.parametrize("changes,key", [
    ({"attention_head_dim": 7, "cross_attention_dim": 14}, "attention_head_dim=7 must be even"),
    ({"audio_attention_head_dim": 3, "audio_cross_attention_dim": 6}, "audio_attention_head_dim=3 must be even"),
    ({"audio_cross_attention_dim": 16}, "audio_cross_attention_dim=16 must equal"),
    ({"cross_attention_dim": 8}, "cross_attention_dim=8 must equal"),
    ({"num_attention_heads": 4}, "head counts must match"),
    ({"ff_bias": False}, "ff_bias"),
    ({"use_prompt_adaln_single": False}, "use_prompt_adaln_single"),
    ({"use_keyframes_abs_pos_embedding": True}, "use_keyframes_abs_pos_embedding"),
])
def test_dit_configs_the_official_model_cannot_run_or_we_do_not_build_name_the_key(changes, key):
    with pytest.raises(ValueError, match=key):
        TransformerConfig.from_checkpoint_config(_transformer(**changes))


# ---- text feature extractor and connectors

def _text_config(**changes) -> dict:
    t = {k: v for k, v in CONFIG["ltx23"]["transformer"].items()}
    t.update(changes)
    return {k: v for k, v in t.items() if v is not None}


def _text_forward(embedder, tokens=6, real=4):
    cfg = embedder.config
    hidden = torch.randn(cfg.num_hidden_states, 2, tokens, cfg.gemma_width)
    mask = torch.zeros(2, tokens, dtype=torch.int64)
    mask[0, -real:] = 1
    mask[1, :] = 1
    return embedder(hidden, mask)


@pytest.mark.parametrize("video_layers,audio_layers", [(0, 0), (1, 3), (3, None)])
def test_connectors_with_other_layer_counts_and_widths(video_layers, audio_layers):
    changes = {"connector_num_layers": video_layers, "audio_connector_num_layers": audio_layers,
               "connector_num_attention_heads": 3, "connector_attention_head_dim": 4, "num_attention_heads": 3,
               "attention_head_dim": 4, "audio_connector_num_attention_heads": 1,
               "audio_connector_attention_head_dim": 6}
    embedder = _randomize(build_text_embedder(_text_config(**changes), num_hidden_states=3))
    audio_layers = video_layers if audio_layers is None else audio_layers
    assert len(embedder.video_connector.transformer_1d_blocks) == video_layers
    assert len(embedder.audio_connector.transformer_1d_blocks) == audio_layers
    context = _text_forward(embedder)
    assert context.video.shape == (2, 6, 12) and context.audio.shape == (2, 6, 6)
    assert context.mask.tolist() == [[1] * 6] * 2


def test_connector_registers_are_128_whatever_the_config_says_and_cycle_past_128_tokens():
    """The official connector hard-wires 128 registers (it ignores connector_num_learnable_registers); padded
    position i gets register i mod 128. With no blocks the output is just the final RMS norm of that sequence."""
    config = _text_config(connector_num_layers=0, connector_num_learnable_registers=4, connector_norm_output=False)
    embedder = _randomize(build_text_embedder(config, num_hidden_states=2))
    connector = embedder.video_connector
    assert connector.learnable_registers.shape == (128, connector.config.width)
    features = torch.randn(1, 131, connector.config.width)
    mask = torch.zeros(1, 131, dtype=torch.int64)
    mask[0, -2:] = 1  # two real tokens at the end move to the front
    with torch.no_grad():
        out = connector(features, mask)
        expected = torch.cat([features[0, -2:], connector.learnable_registers[2:128],
                              connector.learnable_registers[:3]])
    rms = lambda x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)  # noqa: E731
    torch.testing.assert_close(out[0], rms(expected))


def test_text_config_defaults_of_the_official_configurators():
    """No caption_channels: Gemma-3-12B's 3840; V2 keys without text_encoder_norm_type: still per-token RMS (V2)."""
    config = _text_config()
    del config["caption_channels"], config["text_encoder_norm_type"]
    cfg = TextEmbedderConfig.from_transformer_config(config)
    assert (cfg.version, cfg.gemma_width) == (2, 3840)


@pytest.mark.parametrize("changes,key", [
    ({"connector_attention_head_dim": 5, "attention_head_dim": 5}, "connector_attention_head_dim=5 must be even"),
    ({"audio_connector_attention_head_dim": 3}, "audio_connector_attention_head_dim=3 must be even"),
    ({"rope_type": "rotary3d"}, "rope_type"),
    ({"connector_ff_bias": False}, "connector_ff_bias"),
])
def test_text_configs_we_do_not_build_name_the_key(changes, key):
    with pytest.raises(ValueError, match=key):
        TextEmbedderConfig.from_transformer_config(_text_config(**changes))


def test_v1_connectors_of_different_widths_name_the_keys():
    config = {k: v for k, v in CONFIG["ltx2"]["transformer"].items()}
    config.update(audio_connector_num_attention_heads=1)
    with pytest.raises(ValueError, match="audio_connector_num_attention_heads x"):
        build_text_embedder(config, num_hidden_states=2)


def test_rope_grid_precision_follows_frequencies_precision_as_upstream():
    """Upstream builds the RoPE grid in float64 only for frequencies_precision "float64" (the releases); any other
    value, or none, gives its float32 grid (rounded at every step), which differs in the last bits."""
    assert _frequency_grid(10000.0, 3, 96, True).dtype == _frequency_grid(10000.0, 3, 96, False).dtype == torch.float32
    assert not torch.equal(_frequency_grid(10000.0, 3, 96, True), _frequency_grid(10000.0, 3, 96, False))
    for value, double in (("float64", True), ("float32", False), (None, False)):
        transformer = {k: v for k, v in CONFIG["ltx23"]["transformer"].items() if k != "frequencies_precision"}
        if value:
            transformer["frequencies_precision"] = value
        config = {**CONFIG["ltx23"], "transformer": transformer}
        assert TransformerConfig.from_checkpoint_config(config).double_precision_rope is double
        text = TextEmbedderConfig.from_transformer_config(config)
        assert text.video.double_precision_rope is text.audio.double_precision_rope is double


@pytest.mark.parametrize("dim,heads,axes", [(24, 2, 3), (20, 2, 3), (16, 4, 1)])
def test_interleaved_rope_equals_the_flat_rotation_of_adjacent_pairs(dim, heads, axes):
    """Legacy rope_type "interleaved": every frequency twice, dim % (2 * axes) leading slots left unrotated, and
    each adjacent pair (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin) over the flat width (checked here on the
    flat layout, computed per head by the model)."""
    positions = torch.rand(1, axes, 5) * 10
    cos, sin = rope_cos_sin(positions, dim, heads, [20] * axes, interleaved=True)
    assert cos.shape == (1, heads, 5, dim // heads)
    grid = _frequency_grid(10000.0, axes, dim)
    angles = (grid * (positions.permute(0, 2, 1).unsqueeze(-1) / 20 * 2 - 1)).transpose(-1, -2).flatten(2)
    pad = dim % (2 * axes)
    flat_cos = torch.cat([torch.ones(1, 5, pad), angles.cos().repeat_interleave(2, -1)], -1)
    flat_sin = torch.cat([torch.zeros(1, 5, pad), angles.sin().repeat_interleave(2, -1)], -1)
    x = torch.randn(1, 5, dim)
    rotated = torch.stack((-x[..., 1::2], x[..., 0::2]), -1).flatten(-2)
    expected = x * flat_cos + rotated * flat_sin
    assert torch.allclose(apply_rope(x, cos, sin), expected, atol=1e-6)
    if pad == 0:
        assert not torch.allclose(expected, x)  # something is rotated


def test_dit_and_connectors_with_interleaved_rope():
    config = json.loads(json.dumps(CONFIG["ltx2"]))
    config["transformer"]["rope_type"] = "interleaved"
    torch.manual_seed(0)
    model = build_transformer(config).eval()
    assert model.config.interleaved_rope
    video, audio = _dit_forward(model)
    assert torch.isfinite(video).all() and torch.isfinite(audio).all()
    assert TextEmbedderConfig.from_transformer_config(config).video.interleaved_rope
