"""Audio VAEs and vocoders from unusual but valid configs (see unusual_configs.py): level counts, attention,
causality, norms; HiFi-GAN / BigVGAN / BWE generator lists. 4T - 3 mel frames per T latent frames when causal,
4T when not."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from unusual_configs import CONFIG

from comfyui_avgen.models.audio.audio_vae import AudioVAE, AudioVAEConfig
from comfyui_avgen.models.audio.vocoder import build_vocoder


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


