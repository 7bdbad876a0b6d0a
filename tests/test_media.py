"""media/: mp4 writing and reading (PyAV), audio and image reading, audio-video offset measurement."""
from __future__ import annotations

import wave
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from media_clips import flash_click_clip, probe
from PIL import Image

from comfyui_avgen.media.audio_io import read_audio
from comfyui_avgen.media.errors import MediaReadError
from comfyui_avgen.media.image_io import load_image
from comfyui_avgen.media.sync import measure_offset
from comfyui_avgen.media.video_io import frame_rate_fraction, read_video, write_mp4

AAC_FRAME = 1024


def _gradient_frames(count: int, height: int, width: int) -> torch.Tensor:
    """Smooth moving colour ramps (compress well, so decoded pixels stay close)."""
    t = torch.arange(count, dtype=torch.float32)[:, None, None]
    y = torch.linspace(0, 1, height)[None, :, None]
    x = torch.linspace(0, 1, width)[None, None, :]
    channels = [(x + 0.02 * t) % 1.0, y.expand(count, height, width), 0.5 + 0.3 * torch.sin(x * 3 + y + 0.1 * t)]
    return torch.stack([c.expand(count, height, width) for c in channels], dim=-1).clamp(0, 1)


@pytest.mark.parametrize("frames, height, width, fps, rate, channels, audio_seconds", [
    (17, 64, 96, 24.0, 24000, 2, 3.0),      # LTX-2 vocoder rate, audio longer than the video: trimmed
    (25, 45, 63, 25.0, 48000, 1, 0.4),      # odd size: padded to even; mono, shorter audio: padded
    (9, 32, 32, 30000 / 1001, 22000, 6, 0.3),  # NTSC rate; 5.1 mixed to stereo; 22 kHz resampled to 48 kHz
])
def test_mp4_has_one_h264_and_one_aac_stream_of_the_clip_length(tmp_path, frames, height, width, fps, rate,
                                                                 channels, audio_seconds):
    images = _gradient_frames(frames, height, width)
    audio = 0.1 * torch.randn(channels, round(audio_seconds * rate), generator=torch.Generator().manual_seed(1))
    info = write_mp4(tmp_path / "clip.mp4", images, fps, audio, rate, crf=18)
    found = probe(tmp_path / "clip.mp4")
    assert found.video_codecs == ["h264"] and found.audio_codecs == ["aac"]
    assert found.frames == frames
    assert (found.height, found.width) == (height + height % 2, width + width % 2) == (info.height, info.width)
    assert found.fps == pytest.approx(fps, rel=1e-6)
    expected = frames / fps * found.sample_rate
    assert info.audio_samples == round(expected)
    assert found.sample_rate == (rate if rate != 22000 else 48000) and found.channels == min(channels, 2)
    assert abs(found.audio_samples - expected) < AAC_FRAME
    assert abs(found.declared_audio_seconds - frames / fps) < AAC_FRAME / found.sample_rate


def test_frame_rate_fraction_keeps_ntsc_rates_exact():
    assert frame_rate_fraction(24.0) == 24
    assert frame_rate_fraction(24000 / 1001) == Fraction(24000, 1001)
    assert frame_rate_fraction(12.5) == Fraction(25, 2)
    for bad in (0, -24.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="fps must be a positive number"):
            frame_rate_fraction(bad)


def test_read_video_round_trip_and_frame_selection(tmp_path):
    images = _gradient_frames(33, 64, 64)
    audio = torch.sin(torch.arange(33 * 1000) / 24000 * 2 * torch.pi * 440)[None].repeat(2, 1) * 0.3
    write_mp4(tmp_path / "clip.mp4", images, 24.0, audio, 24000, crf=10)

    clip = read_video(tmp_path / "clip.mp4")
    assert clip.frames.shape == (33, 64, 64, 3) and clip.frames.dtype == torch.float32
    assert (clip.frames - images).abs().mean() < 0.02
    assert clip.fps == 24.0 and clip.sample_rate == 24000
    assert clip.audio.shape == (2, 33000)  # exactly the frames' duration

    part = read_video(tmp_path / "clip.mp4", frame_limit=4, skip_first_frames=5, select_every_nth=3)
    assert part.frames.shape[0] == 4 and part.fps == 8.0
    torch.testing.assert_close(part.frames, clip.frames[5:17:3])
    assert part.audio.shape == (2, 4 * 3 * 1000)
    torch.testing.assert_close(part.audio, clip.audio[:, 5000:17000])

    with pytest.raises(MediaReadError, match="no frames left"):
        read_video(tmp_path / "clip.mp4", skip_first_frames=40)
    with pytest.raises(ValueError, match="select_every_nth >= 1"):
        read_video(tmp_path / "clip.mp4", select_every_nth=0)


def test_video_without_audio_reads_as_no_audio(tmp_path):
    write_mp4(tmp_path / "silent.mp4", _gradient_frames(5, 32, 32), 12.0)
    assert probe(tmp_path / "silent.mp4").audio_codecs == []
    clip = read_video(tmp_path / "silent.mp4")
    assert clip.audio is None and clip.sample_rate is None and clip.frames.shape[0] == 5


def _write_wav(path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.T.astype("<i2").tobytes())


def _write_with_pyav(path, fmt: str, codec: str, audio: np.ndarray, rate: int) -> None:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        sample_format = stream.codec_context.codec.audio_formats[0].name
        frame = av.AudioFrame.from_ndarray(audio.astype(np.float32), format="fltp", layout="stereo")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format=sample_format, layout="stereo", rate=rate,
                                      frame_size=stream.codec_context.frame_size or None)
        for chunk in resampler.resample(frame) + resampler.resample(None):
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_read_audio_wav_flac_mp3(tmp_path):
    rate = 22050
    pcm = (np.random.default_rng(0).uniform(-0.5, 0.5, (2, 5000)) * 32768).astype(np.int16)
    _write_wav(tmp_path / "a.wav", pcm, rate)
    decoded = read_audio(tmp_path / "a.wav")
    assert decoded.sample_rate == rate and decoded.waveform.dtype == torch.float32
    torch.testing.assert_close(decoded.waveform, torch.from_numpy(pcm.astype(np.float32) / 32768), atol=1e-6, rtol=0)

    tone = 0.3 * np.sin(np.arange(rate) / rate * 2 * np.pi * 330)[None].repeat(2, 0)
    _write_with_pyav(tmp_path / "a.flac", "flac", "flac", tone, rate)
    flac = read_audio(tmp_path / "a.flac")
    assert flac.waveform.shape == (2, rate)
    torch.testing.assert_close(flac.waveform, torch.from_numpy(tone).float(), atol=1e-4, rtol=0)

    _write_with_pyav(tmp_path / "a.mp3", "mp3", "libmp3lame", tone, 44100)
    mp3 = read_audio(tmp_path / "a.mp3")
    assert mp3.sample_rate == 44100 and mp3.waveform.shape[0] == 2
    assert abs(mp3.waveform.shape[1] - rate) < 2 * 1152  # mp3 frames hold 1152 samples


def test_read_errors_are_named(tmp_path):
    (tmp_path / "noise.mp4").write_bytes(b"this is not a video" * 10)
    _write_wav(tmp_path / "a.wav", np.zeros((1, 100), np.int16), 8000)
    write_mp4(tmp_path / "silent.mp4", _gradient_frames(3, 32, 32), 12.0)
    with pytest.raises(MediaReadError, match="does not exist"):
        read_video(tmp_path / "missing.mp4")
    with pytest.raises(MediaReadError, match="cannot read .*noise.mp4"):
        read_video(tmp_path / "noise.mp4")
    with pytest.raises(MediaReadError, match="has no video stream"):
        read_video(tmp_path / "a.wav")
    with pytest.raises(MediaReadError, match="has no audio stream"):
        read_audio(tmp_path / "silent.mp4")
    with pytest.raises(MediaReadError, match="cannot read"):
        read_audio(tmp_path / "noise.mp4")


def test_write_refuses_bad_inputs(tmp_path):
    frames = _gradient_frames(3, 32, 32)
    with pytest.raises(ValueError, match=r"IMAGE tensor .* got \(3, 32, 32\)"):
        write_mp4(tmp_path / "x.mp4", frames[..., 0], 24.0)
    with pytest.raises(ValueError, match=r"got \(0, 32, 32, 3\)"):
        write_mp4(tmp_path / "x.mp4", frames[:0], 24.0)
    with pytest.raises(ValueError, match="fps must be a positive number"):
        write_mp4(tmp_path / "x.mp4", frames, 0.0)
    with pytest.raises(ValueError, match="non-empty waveform"):
        write_mp4(tmp_path / "x.mp4", frames, 24.0, torch.zeros(2, 0), 24000)
    with pytest.raises(ValueError, match="positive sample rate"):
        write_mp4(tmp_path / "x.mp4", frames, 24.0, torch.zeros(2, 10), 0)
    with pytest.raises(ValueError, match="crf must be in 0..51"):
        write_mp4(tmp_path / "x.mp4", frames, 24.0, crf=60)


def test_load_image_rgba_rgb_and_animated(tmp_path):
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, np.arange(8, dtype=np.uint8)[None] * 30
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image, mask = load_image(tmp_path / "a.png")
    assert image.shape == (1, 6, 8, 3) and mask.shape == (1, 6, 8)
    torch.testing.assert_close(image[0, :, :, 0], torch.full((6, 8), 200 / 255))
    torch.testing.assert_close(mask[0], 1 - torch.from_numpy(rgba[..., 3] / 255).float())

    Image.new("RGB", (5, 4), (10, 20, 30)).save(tmp_path / "b.jpg")
    image, mask = load_image(tmp_path / "b.jpg")
    assert image.shape == (1, 4, 5, 3) and torch.equal(mask, torch.zeros(1, 4, 5))

    frames = [Image.new("RGB", (4, 4), (c, c, c)) for c in (0, 128, 255)]
    frames[0].save(tmp_path / "c.gif", save_all=True, append_images=frames[1:])
    image, _ = load_image(tmp_path / "c.gif")
    assert image.shape == (3, 4, 4, 3)

    (tmp_path / "d.png").write_bytes(b"not a png")
    with pytest.raises(MediaReadError, match="cannot read .* as an image"):
        load_image(tmp_path / "d.png")
    with pytest.raises(MediaReadError, match="does not exist"):
        load_image(tmp_path / "missing.png")


@pytest.mark.parametrize("fps, rate", [(24.0, 24000), (25.0, 44100)])
@pytest.mark.parametrize("shift", [-4, -1, 0, 2, 5])
def test_sync_reports_a_known_shift_within_half_a_frame(fps, rate, shift):
    frames, audio = flash_click_clip(shift, fps, rate)
    result = measure_offset(frames, audio, rate, fps)
    assert abs(result.offset_ms - shift * 1000 / fps) < 500 / fps
    assert result.confidence > 0.5  # a one-frame flash changes two frame differences, a click one window
    assert ("audio late" in result.describe()) == (result.offset_ms > 0)


def test_sync_picks_the_period_nearest_zero_for_periodic_events():
    """Flashes every 12 frames with the clicks 2 frames late also line up at −10 and +14 frames."""
    frames = torch.full((73, 16, 16, 3), 0.1)
    audio = torch.zeros(2, round(73 / 24 * 24000))
    for k in range(6, 73, 12):
        frames[k] = 0.9
        start = (k + 2) * 1000
        if start < audio.shape[1]:
            audio[:, start:start + 50] = 0.5
    result = measure_offset(frames, audio, 24000, 24.0)
    assert abs(result.offset_frames - 2) < 0.5 and result.max_lag_frames == 24


def test_sync_survives_the_mp4_round_trip(tmp_path):
    """AAC priming and H.264 must not move the measured offset."""
    frames, audio = flash_click_clip(3, 24.0, 48000)
    write_mp4(tmp_path / "clip.mp4", frames, 24.0, audio, 48000, crf=18)
    clip = read_video(tmp_path / "clip.mp4")
    result = measure_offset(clip.frames, clip.audio, clip.sample_rate, clip.fps)
    assert abs(result.offset_ms - 125.0) < 500 / 24


def test_sync_without_events_is_not_measurable():
    frames = torch.full((24, 16, 16, 3), 0.5)
    result = measure_offset(frames, torch.zeros(2, 24000), 24000, 24.0)
    assert result.confidence == 0.0 and result.offset_ms == 0.0
    assert "not measurable" in result.describe()
    with pytest.raises(ValueError, match="fps and sample_rate must be positive"):
        measure_offset(frames, torch.zeros(2, 10), 24000, 0.0)
