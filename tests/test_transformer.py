"""Unit tests of the audio-video DiT and token positions beyond the golden parity cases."""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import pytest
import torch

from comfyui_avgen.models.checkpoint import CheckpointFile, build_on_meta
from comfyui_avgen.models.positions import (
    audio_positions, guide_positions, latent_shape_for, video_positions,
)
from comfyui_avgen.models.transformer import (
    StreamInput, TransformerConfig, build_transformer, load_transformer, to_denoised,
)
from comfyui_avgen.models.transformer.model import CHECKPOINT_PREFIX
from comfyui_avgen.models.transformer.timestep import DistinctTimesteps
from reference import manifest

SHARED = Path(__file__).resolve().parents[2] / "shared"
REFERENCE = SHARED / "reference"
GOLDEN = SHARED / "golden"
FAMILIES = ("ltx2", "ltx23")


@pytest.mark.parametrize("name", ["ltx2_19b", "ltx23_22b"])
def test_meta_build_matches_release_manifest(name):
    config = json.loads((REFERENCE / "configs" / f"{name}_metadata.json").read_text())["config"]
    model = build_on_meta(lambda: build_transformer(config))
    got = {CHECKPOINT_PREFIX + k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == manifest(name, "transformer")


def test_config_rejects_unsupported_flags():
    config = json.loads((REFERENCE / "configs" / "ltx2_19b_metadata.json").read_text())["config"]
    with pytest.raises(ValueError, match="rope_type"):
        TransformerConfig.from_checkpoint_config({"transformer": {**config["transformer"], "rope_type": "rotary3d"}})
    with pytest.raises(ValueError, match="transformer"):
        TransformerConfig.from_checkpoint_config({"vae": {}})


@functools.lru_cache(maxsize=2)
def _model(family: str):
    return load_transformer(CheckpointFile(GOLDEN / family / "checkpoint.safetensors"))


def _inputs(family: str, sigma_v=0.7, sigma_a=0.7, batch=1):
    model = _model(family)
    c = model.config
    g = torch.Generator().manual_seed(0)
    vpos = video_positions(batch, 2, 2, 3, 24.0)
    apos = audio_positions(batch, 9)
    tv, ta = vpos.shape[2], apos.shape[2]
    ctx_v = c.caption_channels if c.caption_projection else c.video_context_dim
    ctx_a = c.caption_channels if c.caption_projection else c.audio_context_dim
    video = StreamInput(
        latent=torch.randn(batch, tv, c.video_in_channels, generator=g),
        timesteps=torch.full((batch, tv, 1), sigma_v), sigma=torch.full((batch,), sigma_v),
        positions=vpos, context=torch.randn(batch, 8, ctx_v, generator=g),
    )
    audio = StreamInput(
        latent=torch.randn(batch, ta, c.audio_in_channels, generator=g),
        timesteps=torch.full((batch, ta, 1), sigma_a), sigma=torch.full((batch,), sigma_a),
        positions=apos, context=torch.randn(batch, 8, ctx_a, generator=g),
    )
    return model, video, audio


@pytest.mark.parametrize("family", FAMILIES)
def test_disabled_video_serves_only_as_keys_and_values(family):
    model, video, audio = _inputs(family)
    off = dataclasses.replace(video, enabled=False)
    v, a = model(off, audio)
    assert v is None and a.shape == audio.latent.shape[:2] + (model.config.audio_out_channels,)
    # without v2a the audio stream never sees the video tokens: same result as the isolated full pass
    isolated = [[{"type": "skip_v2a_cross_attn", "blocks": None}]]
    _, a_isolated_off = model(off, audio, isolated)
    _, a_isolated_full = model(video, audio, isolated)
    torch.testing.assert_close(a_isolated_off, a_isolated_full, rtol=0, atol=0)
    # with v2a the (un-updated) video tokens matter, and differ from the fully updated ones
    _, a_full = model(video, audio)
    assert not torch.allclose(a, a_full)
    _, a_other = model(dataclasses.replace(off, latent=off.latent + 1), audio)
    assert not torch.allclose(a, a_other)


@pytest.mark.parametrize("family", FAMILIES)
def test_per_sample_perturbations_only_touch_their_sample(family):
    model, video, audio = _inputs(family, batch=2)
    stg = [[], [{"type": "skip_video_self_attn", "blocks": [0]}]]
    v_plain, a_plain = model(video, audio)
    v_stg, a_stg = model(video, audio, stg)
    torch.testing.assert_close(v_stg[0], v_plain[0])
    torch.testing.assert_close(a_stg[0], a_plain[0])
    assert not torch.allclose(v_stg[1], v_plain[1])


def test_perturbation_validation():
    model, video, audio = _inputs("ltx2")
    with pytest.raises(ValueError, match="unknown type"):
        model(video, audio, [[{"type": "skip_everything", "blocks": None}]])
    with pytest.raises(ValueError, match="out of range"):
        model(video, audio, [[{"type": "skip_video_self_attn", "blocks": [7]}]])
    with pytest.raises(ValueError, match="one list per batch sample"):
        model(video, audio, [[], []])


def test_input_validation():
    model, video, audio = _inputs("ltx23")
    with pytest.raises(ValueError, match="video latent"):
        model(dataclasses.replace(video, latent=video.latent[..., :2]), audio)
    with pytest.raises(ValueError, match="audio positions"):
        model(video, dataclasses.replace(audio, positions=audio.positions[:, :, :3]))
    with pytest.raises(ValueError, match="context"):
        model(dataclasses.replace(video, context=video.context[..., :3]), audio)


def test_distinct_timesteps_gather_equals_per_token_adaln():
    adaln = _model("ltx23").adaln_single
    t = torch.tensor([[700.0, 0.0, 700.0, 350.0], [700.0, 700.0, 700.0, 700.0]])
    ada, embedding = DistinctTimesteps(t).modulation(adaln, torch.float32)
    assert ada.values.shape[0] == 3 and ada.index.shape == (2, 4)
    ref_ada, ref_embedding = adaln(t.flatten(), torch.float32)
    ref_ada = ref_ada.view(2, 4, adaln.coefficient, adaln.dim)
    for k in range(adaln.coefficient):
        torch.testing.assert_close(ada.row(k), ref_ada[:, :, k])
    torch.testing.assert_close(embedding.row(0), ref_embedding.view(2, 4, -1))
    constant = DistinctTimesteps(torch.full((2, 5), 300.0))
    assert constant.values.shape == (1,) and constant.index.shape == (2, 1)


def test_bfloat16_load_runs():
    model = load_transformer(CheckpointFile(GOLDEN / "ltx2" / "checkpoint.safetensors"), dtype=torch.bfloat16)
    _, video, audio = _inputs("ltx2")
    v, a = model(video, audio)
    assert v.dtype == torch.float32 and torch.isfinite(v).all() and torch.isfinite(a).all()
    x0 = to_denoised(video.latent, v, video.timesteps)
    assert x0.dtype == torch.float32 and x0.shape == video.latent.shape


def test_video_positions_layout():
    pos = video_positions(1, 2, 1, 2, 24.0)
    assert pos.shape == (1, 3, 4, 2) and pos.dtype == torch.float32
    torch.testing.assert_close(pos[0, 0, :, 0] * 24, torch.tensor([0.0, 0.0, 1.0, 1.0]))
    torch.testing.assert_close(pos[0, 0, :, 1] * 24, torch.tensor([1.0, 1.0, 9.0, 9.0]))
    torch.testing.assert_close(pos[0, 2, :, 0], torch.tensor([0.0, 32.0, 0.0, 32.0]))


def test_guide_positions_single_frame_and_frame0():
    single = guide_positions(1, 1, 1, 1, 24.0, frame_idx=9)
    torch.testing.assert_close(single[0, 0, 0] * 24, torch.tensor([9.0, 10.0]))
    first = guide_positions(1, 1, 1, 1, 24.0, frame_idx=0)
    torch.testing.assert_close(first[0, 0, 0] * 24, torch.tensor([0.0, 1.0]))
    multi = guide_positions(1, 2, 1, 1, 24.0, frame_idx=8, num_pixel_frames=9)
    torch.testing.assert_close(multi[0, 0, :, 0] * 24, torch.tensor([8.0, 16.0]))


def test_audio_positions_and_shapes():
    pos = audio_positions(2, 3)
    assert pos.shape == (2, 1, 3, 2)
    torch.testing.assert_close(pos[0, 0], torch.tensor([[0.0, 0.01], [0.01, 0.05], [0.05, 0.09]]))
    assert latent_shape_for(121, 512, 768, 24.0) == ((16, 16, 24), 126)
    with pytest.raises(ValueError, match="fps"):
        latent_shape_for(121, 512, 768, 0)
