"""AVGenAudioSyncSave: the mp4 it writes, what it passes on, the offset it reports, and bad inputs."""
from __future__ import annotations

import json

import pytest
import torch
from media_clips import flash_click_clip, probe

from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.output import AVGenAudioSyncSave

AAC_FRAME = 1024


def _audio(waveform: torch.Tensor, rate: int) -> dict:
    return {"waveform": waveform[None] if waveform.ndim == 2 else waveform, "sample_rate": rate}


def _save(tmp_path, images, audio, fps, prefix="AVGen/clip", crf=19, **hidden):
    with comfy_adapter.configured(output_dir=tmp_path):
        return AVGenAudioSyncSave().save(images, audio, fps, prefix, crf, **hidden)


@pytest.mark.parametrize("fps, rate, audio_seconds", [(24.0, 24000, 2.0), (25.0, 48000, 0.3)])
def test_saves_h264_aac_mp4_of_the_requested_length_and_passes_everything_on(tmp_path, fps, rate, audio_seconds):
    images = torch.rand(17, 64, 96, 3, generator=torch.Generator().manual_seed(0))
    waveform = 0.1 * torch.randn(2, round(audio_seconds * rate))
    result = _save(tmp_path, images, _audio(waveform, rate), fps)

    ui, (out_images, out_audio, out_fps, offset_ms) = result["ui"], result["result"]
    assert ui["images"] == [{"filename": "clip_00001_.mp4", "subfolder": "AVGen", "type": "output"}]
    assert ui["animated"] == [True] and "saved clip_00001_.mp4: 17 frames 96x64" in ui["text"][0]
    assert out_images is images and out_fps == fps and isinstance(offset_ms, float)
    samples = round(17 / fps * rate)
    assert out_audio["sample_rate"] == rate and out_audio["waveform"].shape == (1, 2, samples)
    kept = min(samples, waveform.shape[1])
    torch.testing.assert_close(out_audio["waveform"][0, :, :kept], waveform[:, :kept])
    assert not out_audio["waveform"][0, :, kept:].any()  # padding is silence

    found = probe(tmp_path / "AVGen" / "clip_00001_.mp4")
    assert found.video_codecs == ["h264"] and found.audio_codecs == ["aac"]
    assert (found.frames, found.height, found.width) == (17, 64, 96)
    assert found.sample_rate == rate and abs(found.audio_samples - 17 / fps * rate) < AAC_FRAME


def test_next_save_counts_up_and_unsafe_prefixes_are_cleaned(tmp_path):
    images, audio = torch.zeros(9, 32, 32, 3), _audio(torch.zeros(2, 9000), 24000)
    first = _save(tmp_path, images, audio, 24.0, prefix="runs/a:b*c")
    second = _save(tmp_path, images, audio, 24.0, prefix="runs/a:b*c")
    names = [r["ui"]["images"][0]["filename"] for r in (first, second)]
    assert names == ["a_b_c_00001_.mp4", "a_b_c_00002_.mp4"]
    assert (tmp_path / "runs" / names[1]).is_file()
    with pytest.raises(NodeInputError, match="AVGenAudioSyncSave: filename_prefix: .* would leave the output"):
        _save(tmp_path, images, audio, 24.0, prefix="../outside")


@pytest.mark.parametrize("shift", [-3, 0, 4])
def test_reports_the_offset_of_a_shifted_flash_click_clip(tmp_path, shift):
    frames, waveform = flash_click_clip(shift, 24.0, 24000)
    result = _save(tmp_path, frames, _audio(waveform, 24000), 24.0)
    offset_ms = result["result"][3]
    assert abs(offset_ms - shift * 1000 / 24) < 500 / 24
    assert f"{offset_ms:+.1f} ms" in result["ui"]["text"][0]


def test_workflow_and_prompt_go_into_the_file_metadata(tmp_path):
    workflow = {"nodes": [], "links": [], "version": 0.4}
    prompt = {"1": {"class_type": "AVGenAudioSyncSave", "inputs": {}}}
    _save(tmp_path, torch.zeros(9, 32, 32, 3), _audio(torch.zeros(1, 9000), 24000), 24.0,
          prompt=prompt, extra_pnginfo={"workflow": workflow})
    metadata = probe(tmp_path / "AVGen" / "clip_00001_.mp4").metadata
    assert json.loads(metadata["workflow"]) == workflow and json.loads(metadata["prompt"]) == prompt


def test_an_audio_batch_plays_one_after_the_other(tmp_path):
    waveform = torch.stack([torch.full((2, 9000), 0.1), torch.full((2, 9000), -0.1)])
    result = _save(tmp_path, torch.zeros(18, 32, 32, 3), {"waveform": waveform, "sample_rate": 24000}, 24.0)
    out = result["result"][1]["waveform"]
    assert out.shape == (1, 2, 18000)
    assert torch.all(out[..., :9000] == 0.1) and torch.all(out[..., 9000:] == -0.1)


@pytest.mark.parametrize("images, audio, fps, message", [
    (torch.zeros(9, 32, 32), None, 24.0,
     r"images must be an IMAGE tensor \(frames, height, width, 3\).* got \(9, 32, 32\)"),
    (torch.zeros(9, 32, 32, 4), None, 24.0, r"images must be .* got \(9, 32, 32, 4\)"),
    (torch.zeros(0, 32, 32, 3), None, 24.0, r"images must be .* at least one frame, got \(0, 32, 32, 3\)"),
    (None, None, 0.0, r"fps must be in \[1, 240\], got 0"),
    (None, None, -24.0, r"fps must be in \[1, 240\], got -24"),
    (None, {"waveform": torch.zeros(1, 2, 0), "sample_rate": 24000}, 24.0, r"audio is empty: waveform \(1, 2, 0\)"),
    (None, {"waveform": torch.zeros(2, 100), "sample_rate": 24000}, 24.0,
     r"audio waveform must be \(batch, channels, samples\), got \(2, 100\)"),
    (None, {"waveform": torch.zeros(1, 2, 100), "sample_rate": 0}, 24.0,
     "audio sample_rate must be a positive whole number of Hz, got 0"),
    (None, torch.zeros(1, 2, 100), 24.0, "audio must be an AUDIO dict"),
])
def test_bad_inputs_are_named_errors(tmp_path, images, audio, fps, message):
    images = torch.zeros(9, 32, 32, 3) if images is None else images
    audio = _audio(torch.zeros(2, 9000), 24000) if audio is None else audio
    with pytest.raises(NodeInputError, match="AVGenAudioSyncSave: " + message):
        _save(tmp_path, images, audio, fps)
    assert not (tmp_path / "AVGen").exists() or not any((tmp_path / "AVGen").iterdir())
