"""Latent upsampler: every config kind against a plain whole-clip reference, chunking that never changes the
result, config completion from the weights, and named errors for files it cannot build."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from comfyui_avgen.models.checkpoint import CheckpointError
from comfyui_avgen.models.upsampler import (
    LatentUpsampler, UpsamplerConfig, UpsamplerConfigError, load_latent_upsampler,
)
from comfyui_avgen.models.upsampler.whole_clip import whole_clip_forward

KINDS = {
    "spatial_x2": dict(spatial_upsample=True),
    "spatial_x2_dims2": dict(spatial_upsample=True, dims=2),
    "rational_x1_5": dict(spatial_upsample=True, rational_resampler=True, spatial_scale=1.5),
    "rational_x0_75": dict(spatial_upsample=True, rational_resampler=True, spatial_scale=0.75),
    "rational_x4": dict(spatial_upsample=True, rational_resampler=True, spatial_scale=4.0),
    "rational_x2": dict(spatial_upsample=True, rational_resampler=True, spatial_scale=2.0),
    "temporal_x2": dict(spatial_upsample=False, temporal_upsample=True),
    "spatiotemporal": dict(spatial_upsample=True, temporal_upsample=True),
}


def random_upsampler(seed: int = 0, **overrides) -> LatentUpsampler:
    config = UpsamplerConfig(**{"in_channels": 6, "mid_channels": 64, "num_blocks_per_stage": 2, **overrides})
    torch.manual_seed(seed)
    model = LatentUpsampler(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn_like(p) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
    return model.eval()


def reference_forward(model: LatentUpsampler, x: torch.Tensor) -> torch.Tensor:
    """The official graph written plainly on whole tensors (models.upsampler.whole_clip)."""
    with torch.no_grad():
        return whole_clip_forward(model, x)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_matches_the_plain_reference_at_any_chunk_size(kind):
    model = random_upsampler(**KINDS[kind])
    x = torch.randn(2, 6, 5, 4, 6) * 1.5 + 0.3
    want = reference_forward(model, x)
    assert tuple(want.shape[2:]) == model.config.output_size(5, 4, 6)
    for chunk in (1, 2, 5, 64):
        got = model(x, frames_per_chunk=chunk)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5, msg=f"{kind}, {chunk} frames per chunk")


def test_group_norm_spans_the_whole_clip():
    """Chunking must not turn the clip-wide GroupNorm into per-chunk statistics: a bright last frame changes
    the first frame's output (dims 3), and leaves it alone with dims 2 (per-frame statistics)."""
    for dims, changes in ((3, True), (2, False)):
        model = random_upsampler(dims=dims)
        x = torch.randn(1, 6, 6, 4, 4)
        y = x.clone()
        y[:, :, -1] += 20.0
        first = model(x, frames_per_chunk=1)[:, :, 0]
        moved = (first - model(y, frames_per_chunk=1)[:, :, 0]).abs().max().item()
        assert (moved > 1e-3) == changes, (dims, moved)


def _save(tmp_path, model: LatentUpsampler, config: dict | None, name="up.safetensors"):
    path = tmp_path / name
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, path, metadata={"config": json.dumps(config)} if config is not None else None)
    return path


@pytest.mark.parametrize("kind", ["spatial_x2", "rational_x1_5", "temporal_x2", "spatiotemporal",
                                  "spatial_x2_dims2"])
def test_loading_round_trip_and_config_from_weights(tmp_path, kind):
    model = random_upsampler(**KINDS[kind])
    x = torch.randn(1, 6, 3, 4, 4)
    full = load_latent_upsampler(_save(tmp_path, model, model.config.__dict__ | {}))
    assert full.config == model.config
    torch.testing.assert_close(full(x), model(x))
    if kind != "rational_x1_5":  # x1.5 and x0.75 have the same weights: their scale must be in the config
        bare = load_latent_upsampler(_save(tmp_path, model, None, "bare.safetensors"))
        assert bare.config == model.config


def test_rational_scale_is_ambiguous_without_config(tmp_path):
    model = random_upsampler(**KINDS["rational_x1_5"])
    with pytest.raises(UpsamplerConfigError, match="spatial_scale"):
        load_latent_upsampler(_save(tmp_path, model, {"rational_resampler": True}))


@pytest.mark.parametrize("config, words", [
    (dict(dims=2, spatial_upsample=False, temporal_upsample=True), "dims 2"),
    (dict(dims=2, rational_resampler=True, spatial_scale=1.5), "dims 2"),
    (dict(rational_resampler=True, spatial_scale=3.0), "spatial_scale 3"),
    (dict(mid_channels=48), "mid_channels 48"),
    (dict(spatial_upsample=False, temporal_upsample=False), "neither"),
    (dict(dims=1), "dims 1"),
])
def test_unsupported_configs_are_named(config, words):
    with pytest.raises(UpsamplerConfigError, match=words):
        UpsamplerConfig(**config)


def test_files_that_are_not_upsamplers(tmp_path):
    lora = tmp_path / "lora.safetensors"
    save_file({"transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(2, 4)}, lora)
    with pytest.raises(CheckpointError, match="not an LTX latent upsampler"):
        load_latent_upsampler(lora)
    model = random_upsampler()
    path = _save(tmp_path, model, model.config.__dict__ | {"mid_channels": 128})
    with pytest.raises(CheckpointError, match="initial_conv.weight has shape"):
        load_latent_upsampler(path)
    with pytest.raises(ValueError, match=r"takes \(B, 6, frames"):
        model(torch.zeros(1, 5, 2, 4, 4))
