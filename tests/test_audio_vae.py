"""Unit tests of the audio front end, input preparation, audio VAE structure and latent helpers."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from comfyui_avgen.models.audio.audio_latents import (
    audio_latent_frames, audio_latent_frames_for_seconds, latent_frames_for_mel_frames,
    mel_frames_for_latent_frames, patchify_audio_latent, seconds_per_latent_frame, unpatchify_audio_latent,
)
from comfyui_avgen.models.audio.audio_vae import AudioVAEConfig, build_audio_vae, load_audio_vae
from comfyui_avgen.models.audio.preprocess import (
    MelFrontEndConfig, fit_duration, prepare_audio, resample, stereo_downmix_matrix, to_stereo, waveform_to_log_mel,
)
from comfyui_avgen.models.checkpoint import CheckpointFile, build_on_meta
from reference import manifest, reference_config

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
REFERENCE = SHARED / "reference"
GOLDEN = SHARED / "golden"
VARIANTS = {"ltx2_19b": "ltx2_19b_metadata.json", "ltx23_22b": "ltx23_22b_metadata.json"}
TINY = GOLDEN / "ltx2" / "checkpoint.safetensors"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="shared reference files not present")
needs_tiny = pytest.mark.skipif(not TINY.is_file(), reason="tiny golden checkpoint not present")


@needs_reference
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("part", ["encoder", "decoder"])
def test_full_size_build_matches_manifest(variant, part):
    config = reference_config(variant)
    model = build_on_meta(lambda: build_audio_vae(config, parts=(part,)))
    got = {"audio_vae." + k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == manifest(variant, f"audio_vae_{part}")


@pytest.fixture(scope="module")
def tiny_vae():
    if not TINY.is_file():
        pytest.skip("tiny golden checkpoint not present")
    return load_audio_vae(CheckpointFile(TINY))


def test_config_reads_front_end_and_rejects_unsupported_flags():
    dd = {"ch": 16, "ch_mult": [1, 2, 4], "num_res_blocks": 1, "z_channels": 1, "double_z": True,
          "in_channels": 2, "out_ch": 2, "mel_bins": 64, "norm_type": "pixel", "causality_axis": "height"}
    cfg = {"model": {"params": {"ddconfig": dd, "sampling_rate": 16000}},
           "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160, "win_length": 1024},
                             "mel": {"n_mel_channels": 64, "mel_fmin": 0, "mel_fmax": 8000}}}
    parsed = AudioVAEConfig.from_config(cfg)
    assert parsed.front_end == MelFrontEndConfig()
    assert (parsed.downsample_factor, parsed.latent_mel_bins, parsed.latent_features) == (4, 16, 16)
    assert (parsed.attn_resolutions, parsed.mid_attention) == ({8, 16, 32}, True)  # the official defaults
    for bad in ({"norm_type": "group"}, {"causality_axis": "width"}):
        with pytest.raises(ValueError, match="not supported"):
            AudioVAEConfig.from_config({"model": {"params": {"ddconfig": {**dd, **bad}}}})
    with pytest.raises(ValueError, match="ddconfig"):
        AudioVAEConfig.from_config({"model": {}})


@needs_tiny
def test_partial_load_and_missing_part_error():
    encoder_only = load_audio_vae(str(TINY), parts=("encoder",))
    assert not hasattr(encoder_only, "decoder")
    with pytest.raises(ValueError, match="without its decoder"):
        encoder_only.decode(torch.zeros(1, 1, 3, 16))
    with pytest.raises(ValueError, match="parts"):
        load_audio_vae(str(TINY), parts=("vocoder",))


def test_bad_shapes_raise_named_errors(tiny_vae):
    with pytest.raises(ValueError, match=r"log-mel \(batch, 2, frames, 64\)"):
        tiny_vae.encode(torch.zeros(2, 21, 64))
    with pytest.raises(ValueError, match=r"log-mel \(batch, 2, frames, 64\)"):
        tiny_vae.encode(torch.zeros(1, 2, 21, 32))
    with pytest.raises(ValueError, match="prepare_audio"):
        tiny_vae.encode_waveform(torch.zeros(1, 1, 1600), 16000)
    with pytest.raises(ValueError, match=r"latent \(batch, 1, frames, 16\)"):
        tiny_vae.decode(torch.zeros(1, 2, 5, 16))
    with pytest.raises(ValueError, match="batch, channels, samples"):
        waveform_to_log_mel(torch.zeros(1600), 16000)
    with pytest.raises(ValueError, match="whole number"):
        resample(torch.zeros(1, 1, 100), 22050.5, 16000)
    with pytest.raises(ValueError, match="samples"):
        prepare_audio(torch.zeros(1, 1, 2, 100), 16000)
    with pytest.raises(ValueError, match="positive number of seconds"):
        fit_duration(torch.zeros(1, 2, 100), 16000, -1.0)
    with pytest.raises(ValueError, match=r"\(batch, frames, 1\*16=16\)"):
        unpatchify_audio_latent(torch.zeros(1, 5, 32), 1, 16)


def test_shapes_and_time_causality(tiny_vae):
    mel = torch.randn(1, 2, 33, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        latent = tiny_vae.encode(mel)
        assert latent.shape == (1, 1, 9, 16)
        later = mel.clone()
        later[:, :, 20:] += 1.0  # mel frames >= 20 only reach latent frames >= 20 // 4
        assert torch.equal(tiny_vae.encode(later)[:, :, :5], latent[:, :, :5])
        decoded = tiny_vae.decode(latent)
        assert decoded.shape == (1, 2, 33, 64)
        changed = latent.clone()
        changed[:, :, 6:] += 1.0  # latent frame k first reaches mel frame 4k - 3
        assert torch.equal(tiny_vae.decode(changed)[:, :, :21], decoded[:, :, :21])
        assert tiny_vae.decode(latent[:, :, :1]).shape == (1, 2, 1, 64)


def test_mono_input_is_duplicated_to_stereo():
    mono = torch.linspace(-1, 1, 480)
    stereo = prepare_audio(mono, 48000)
    assert stereo.shape == (1, 2, 480) and stereo.dtype == torch.float32
    assert torch.equal(stereo[0, 0], mono) and torch.equal(stereo[0, 1], mono)
    assert torch.equal(prepare_audio(mono[None], 48000, channels=1), mono[None, None])


def test_surround_downmix_coefficients():
    total = 1 + 2 / math.sqrt(2)  # 1 + 2 * 0.7071 = 2.4142 per side
    expected_left = [1 / total, 0, (1 / math.sqrt(2)) / total, 0, (1 / math.sqrt(2)) / total, 0]
    matrix = stereo_downmix_matrix(6)
    assert torch.allclose(matrix[:, 0], torch.tensor(expected_left), atol=1e-7)
    assert torch.allclose(matrix[:, 1], torch.tensor([0, 1 / total, (1 / math.sqrt(2)) / total, 0, 0,
                                                      (1 / math.sqrt(2)) / total]), atol=1e-7)
    channels = torch.zeros(6, 4)
    channels[0], channels[2], channels[3] = 1.0, 0.5, 0.9  # FL, FC, LFE (dropped)
    out = prepare_audio(channels, 44100)
    assert out.shape == (1, 2, 4)
    assert torch.allclose(out[0, 0], torch.full((4,), 0.41421356 + 0.5 * 0.29289322), atol=1e-6)
    assert torch.allclose(out[0, 1], torch.full((4,), 0.5 * 0.29289322), atol=1e-6)
    assert torch.allclose(stereo_downmix_matrix(7), torch.full((7, 2), 1 / 7))
    assert torch.allclose(stereo_downmix_matrix(8).sum(dim=0), torch.ones(2))
    assert torch.equal(to_stereo(torch.ones(1, 2, 3)), torch.ones(1, 2, 3))


def test_integer_pcm_and_duration_fit():
    pcm = torch.tensor([[-32768, 0, 16384]], dtype=torch.int16)
    assert torch.equal(prepare_audio(pcm, 8000)[0, 0], torch.tensor([-1.0, 0.0, 0.5]))
    audio = torch.ones(2, 8000)
    assert prepare_audio(audio, 8000, seconds=0.5).shape == (1, 2, 4000)
    padded = prepare_audio(audio, 8000, seconds=1.25)
    assert padded.shape == (1, 2, 10000) and padded[..., 8000:].abs().sum() == 0


def test_8khz_mono_to_latent_shape(tiny_vae):
    mono = torch.sin(torch.arange(4000) * 0.3) * 0.5  # 0.5 s at 8 kHz
    stereo = prepare_audio(mono, 8000)
    mel = waveform_to_log_mel(stereo, 8000)
    assert mel.shape == (1, 2, 51, 64)  # 8000 samples at 16 kHz -> 1 + 8000 // 160
    assert torch.equal(mel[:, 0], mel[:, 1])
    with torch.no_grad():
        assert tiny_vae.encode_waveform(stereo, 8000).shape == (1, 1, 13, 16)


def test_latent_layout_and_durations():
    latent = torch.arange(2 * 3 * 5 * 16, dtype=torch.float32).reshape(2, 3, 5, 16)
    tokens = patchify_audio_latent(latent)
    assert tokens.shape == (2, 5, 48)
    assert tokens[1, 4, 2 * 16 + 7] == latent[1, 2, 4, 7]
    assert torch.equal(unpatchify_audio_latent(tokens, 3, 16), latent)
    assert audio_latent_frames(121, 24.0) == 126
    assert audio_latent_frames(97, 30000 / 1001) == 81
    assert audio_latent_frames(1, 10.0) == 2  # 2.5 rounds half to even
    assert audio_latent_frames_for_seconds(5.0) == 125
    assert seconds_per_latent_frame() == 0.04
    assert (mel_frames_for_latent_frames(9), latent_frames_for_mel_frames(33)) == (33, 9)
    assert MelFrontEndConfig().mel_frames(8000) == 51
