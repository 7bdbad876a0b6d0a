"""The Griffin-Lim vocoder option (`config["vocoder"]["type"] == "griffin_lim"`, used by AVGen-Tiny)."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from comfyui_avgen.models.audio.griffin_lim import GriffinLimVocoder, inverse_mel_basis
from comfyui_avgen.models.audio.preprocess import log_mel_spectrogram
from comfyui_avgen.models.audio.vocoder import build_vocoder, load_vocoder
from comfyui_avgen.models.audio.vocoder_config import GriffinLimConfig, VocoderConfig
from comfyui_avgen.models.checkpoint import build_on_meta

CONFIG = {"vocoder": {"type": "griffin_lim", "sampling_rate": 16000, "n_fft": 1024, "win_length": 1024,
                      "hop_length": 160, "n_mels": 64, "mel_fmin": 0.0, "mel_fmax": 8000.0, "n_iter": 16,
                      "momentum": 0.99, "stereo": True}}


def _tones() -> torch.Tensor:
    """(1, 2, 16000): 440 Hz for 0.4 s, silence, 1200 Hz from 0.6 s (right channel quieter)."""
    t = torch.arange(16000) / 16000
    wave = 0.5 * torch.sin(2 * torch.pi * 440 * t) * (t < 0.4) + 0.3 * torch.sin(2 * torch.pi * 1200 * t) * (t > 0.6)
    return torch.stack([wave, 0.5 * wave])[None]


def test_config_is_read_from_the_checkpoint_config():
    config = GriffinLimConfig.from_checkpoint_config(CONFIG)
    assert (config.sample_rate, config.samples_per_frame, config.n_iter) == (16000, 160, 16)
    vocoder = build_vocoder(CONFIG)
    assert isinstance(vocoder, GriffinLimVocoder)
    assert (vocoder.sample_rate, vocoder.samples_per_frame) == (16000, 160)


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="n_mels"):
        GriffinLimConfig.from_checkpoint_config({"vocoder": {**CONFIG["vocoder"], "n_mels": 80}})
    with pytest.raises(ValueError, match="momentum"):
        GriffinLimConfig.from_checkpoint_config({"vocoder": {**CONFIG["vocoder"], "momentum": 1.5}})
    with pytest.raises(ValueError, match="griffin_lim"):
        GriffinLimConfig.from_checkpoint_config({"vocoder": {"resblock": "1"}})
    with pytest.raises(ValueError, match="no generator"):
        VocoderConfig.from_checkpoint_config(CONFIG)


def test_meta_build_loads_the_stored_filterbank(tmp_path):
    model = build_on_meta(lambda: build_vocoder(CONFIG))
    assert model.inverse_mel_basis.is_meta
    expected = inverse_mel_basis(GriffinLimConfig.from_checkpoint_config(CONFIG))
    path = tmp_path / "vocoder.safetensors"
    save_file({"vocoder.inverse_mel_basis": expected}, path, metadata={"config": json.dumps(CONFIG)})
    loaded = load_vocoder(path)
    assert torch.equal(loaded.inverse_mel_basis, expected)
    assert list(loaded.state_dict()) == ["inverse_mel_basis"]


def test_waveform_reproduces_the_log_mel_and_is_deterministic():
    vocoder = build_vocoder(CONFIG)
    mel = log_mel_spectrogram(_tones())
    with torch.inference_mode():
        wave = vocoder(mel)
        again = vocoder(mel.to(torch.float64))
    assert wave.shape == (1, 2, mel.shape[2] * 160) and wave.dtype == torch.float32
    assert torch.equal(wave, again)
    assert wave.abs().max() <= 1.0
    remade = log_mel_spectrogram(wave[..., :16000])
    relative = (remade.exp() - mel.exp()).abs().mean() / mel.exp().mean()
    assert relative < 0.35
    quiet, loud = wave[..., 7200:9000].abs().max(), wave[..., 1000:6000].abs().max()
    assert quiet < 0.05 * loud  # the silence stays silent: onsets survive vocoding


def test_bad_input_shape_is_rejected():
    with pytest.raises(ValueError, match=r"\(B, 2, T, 64\)"):
        build_vocoder(CONFIG)(torch.zeros(1, 1, 4, 64))
