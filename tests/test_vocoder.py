"""Vocoder unit tests: full-size layouts against the release manifests, lengths, range, buffers, errors."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from comfyui_avgen.models.audio.bwe import BweVocoder, hann_sinc_filter
from comfyui_avgen.models.audio.hifigan import HifiGanVocoder
from comfyui_avgen.models.audio.vocoder import build_vocoder, load_vocoder
from comfyui_avgen.models.audio.vocoder_config import VocoderConfig
from comfyui_avgen.models.checkpoint import CheckpointFile, build_on_meta
from reference import manifest

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
CONFIGS = SHARED / "reference" / "configs"
MANIFESTS = SHARED / "reference" / "manifests"
GOLDEN = SHARED / "golden"

RELEASES = {"ltx2_19b": (HifiGanVocoder, 24000, 240), "ltx23_22b": (BweVocoder, 48000, 480)}
FAMILIES = {"ltx2": (24000, 240), "ltx23": (48000, 480)}


def _release_config(variant: str) -> dict:
    meta = json.loads((CONFIGS / f"{variant}_metadata.json").read_text())
    config = meta["config"]
    return json.loads(config) if isinstance(config, str) else config


@lru_cache(maxsize=None)
def _tiny(family: str):
    return load_vocoder(GOLDEN / family / "checkpoint.safetensors")


@pytest.mark.parametrize("variant", sorted(RELEASES))
def test_full_size_meta_build_matches_release_manifest(variant):
    cls, sample_rate, per_frame = RELEASES[variant]
    model = build_on_meta(lambda: build_vocoder(_release_config(variant)))
    assert isinstance(model, cls)
    assert (model.sample_rate, model.samples_per_frame) == (sample_rate, per_frame)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = manifest(variant, "vocoder", strip="vocoder.")
    assert sorted(set(got) ^ set(want)) == []
    assert {k for k in got if got[k] != want[k]} == set()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_output_length_rate_and_range(family):
    sample_rate, per_frame = FAMILIES[family]
    vocoder = _tiny(family)
    assert (vocoder.sample_rate, vocoder.samples_per_frame) == (sample_rate, per_frame)
    torch.manual_seed(0)
    loud = torch.randn(2, 2, 3, 64) * 4 + 3
    with torch.inference_mode():
        wave = vocoder(loud)
    assert wave.shape == (2, 2, 3 * per_frame)
    assert wave.dtype == torch.float32
    assert wave.abs().max() <= 1.0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_forward_ignores_autocast_and_input_dtype(family):
    vocoder = _tiny(family)
    mel = torch.randn(1, 2, 3, 64)
    with torch.inference_mode():
        want = vocoder(mel)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = vocoder(mel.to(torch.float64))
    assert got.dtype == torch.float32
    assert torch.equal(got, want)


def test_kaiser_filters_built_in_code_equal_the_stored_ones():
    ckpt = CheckpointFile(GOLDEN / "ltx23" / "checkpoint.safetensors")
    model = build_vocoder(ckpt.config)  # real CPU build: filters computed by the module
    filters = {k: v for k, v in model.state_dict().items() if k.endswith(".filter")}
    assert len(filters) > 0
    for key, value in filters.items():
        assert torch.equal(value, ckpt.get("vocoder." + key)), key


def test_resampler_filter_is_computed_after_meta_load_and_matches_torchaudio():
    torchaudio = pytest.importorskip("torchaudio")
    resampler = _tiny("ltx23").resampler
    assert "resampler.filter" not in _tiny("ltx23").state_dict()
    assert not resampler.filter.is_meta
    assert torch.equal(resampler.filter, hann_sinc_filter(3))
    torch.manual_seed(0)
    x = torch.randn(1, 2, 400)
    ours = resampler(x)
    theirs = torchaudio.functional.resample(x, 16000, 48000)
    assert ours.shape == theirs.shape == (1, 2, 1200)
    interior = slice(3 * 8, -3 * 8)  # away from the edges, where our replicate padding differs
    torch.testing.assert_close(ours[..., interior], theirs[..., interior], rtol=0, atol=1e-5)


def test_bad_input_shape_is_rejected():
    vocoder = _tiny("ltx2")
    for shape in ((1, 3, 4, 64), (1, 2, 4, 80), (2, 4, 64)):
        with pytest.raises(ValueError, match=r"\(B, 2, T, 64\)"):
            vocoder(torch.zeros(shape))


def test_config_errors_name_the_problem():
    release = _release_config("ltx23_22b")["vocoder"]
    with pytest.raises(ValueError, match="no 'vocoder'"):
        VocoderConfig.from_checkpoint_config({"transformer": {}})
    with pytest.raises(ValueError, match="resblock"):
        stage1 = {**release["vocoder"], "resblock": "1"}
        VocoderConfig.from_checkpoint_config({"vocoder": {**release, "vocoder": stage1}})
    with pytest.raises(ValueError, match="activation"):
        VocoderConfig.from_checkpoint_config({"vocoder": {**release, "bwe": {**release["bwe"], "activation": "relu"}}})
    with pytest.raises(ValueError, match="resblock"):
        VocoderConfig.from_checkpoint_config({"vocoder": {"resblock": "2"}})
    with pytest.raises(ValueError, match="n_fft"):
        bwe = {k: v for k, v in release["bwe"].items() if k != "n_fft"}
        VocoderConfig.from_checkpoint_config({"vocoder": {**release, "bwe": bwe}})
