"""Video VAEs from unusual but valid configs (see unusual_configs.py): every block kind, stride, residual and
norm option, padding mode, attention and injected noise; frames 8(F-1)+1 generalised to the config's time strides."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from unusual_configs import CONFIG

from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.video_vae import VideoVAE, VideoVAEConfig
from comfyui_avgen.models.video_vae.blocks import FrameAttention, ResnetBlock3D, pixel_norm
from comfyui_avgen.models.video_vae.config import RESIDUAL_ON_EVERY_UPSAMPLER
from comfyui_avgen.models.video_vae.convolution import CausalConv3d
from comfyui_avgen.tiny import builtin

STRIDES = {"compress_space": (1, 2, 2), "compress_time": (2, 1, 1), "compress_all": (2, 2, 2)}


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


