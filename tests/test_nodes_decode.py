"""AVGenVideoDecode / AVGenAudioDecode on the tiny golden checkpoints: shapes, tiling, progress, bad inputs."""
from __future__ import annotations

import pytest
import torch
from golden import SHARED_GOLDEN

from comfyui_avgen.models.ltx import open_ltx
from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.media.audio_io import read_audio
from comfyui_avgen.nodes.decode import AVGenAudioDecode, AVGenVideoDecode, tiling_for
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.types import AudioVAEHandle, AVLatent, VideoVAEHandle

FAMILIES = ("ltx2", "ltx23")
DEFAULT_TILES = dict(spatial_tile=768, spatial_overlap=64, temporal_tile=80, temporal_overlap=24)


@pytest.fixture(scope="module", params=FAMILIES)
def handles(request):
    path = SHARED_GOLDEN / request.param / "checkpoint.safetensors"
    if not path.exists():
        pytest.skip(f"tiny golden checkpoint missing: {path}")
    checkpoint = open_ltx(path)
    video = VideoVAEHandle(f"test-video-vae:{path}", lambda: checkpoint.load_video_vae(parts=("decoder",)))
    audio = AudioVAEHandle(f"test-audio-vae:{path}", lambda: (checkpoint.load_audio_vae(parts=("decoder",)),
                                                              checkpoint.load_vocoder()))
    return request.param, video, audio


def _latent(audio_handle, video_shape, pixel_frames, fps=25.0, seed=0) -> AVLatent:
    g = torch.Generator().manual_seed(seed)
    cfg = audio_handle.vae.cfg
    batch, _, _, h, w = video_shape
    audio_frames = round(pixel_frames / fps * 25)
    return AVLatent(video=torch.randn(*video_shape, generator=g),
                    audio=torch.randn(batch, cfg.z_channels, audio_frames, cfg.latent_mel_bins, generator=g),
                    fps=fps, pixel_frames=pixel_frames, height=32 * h, width=32 * w)


def _count_decoder_calls(vae):
    calls = []
    hook = vae.decoder.register_forward_pre_hook(lambda module, args: calls.append(tuple(args[0].shape)))
    return calls, hook


def test_video_decode_shapes_and_fps(handles):
    _, video, audio = handles
    latent = _latent(audio, (1, 4, 3, 2, 3), 17, fps=24.0)
    frames, fps = AVGenVideoDecode().decode(video, latent, "auto", **DEFAULT_TILES)
    assert frames.shape == (17, 64, 96, 3) and frames.dtype == torch.float32
    assert 0.0 <= float(frames.min()) and float(frames.max()) <= 1.0 and frames.std() > 0
    assert fps == 24.0
    expected = ((video.vae.decode(latent.video) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 3, 0)
    torch.testing.assert_close(frames, expected)


def test_a_batch_of_videos_comes_one_after_the_other(handles):
    _, video, audio = handles
    latent = _latent(audio, (2, 4, 2, 2, 2), 9)
    frames, _ = AVGenVideoDecode().decode(video, latent, "off", **DEFAULT_TILES)
    assert frames.shape == (18, 64, 64, 3)
    second = AVGenVideoDecode().decode(video, latent.replace(video=latent.video[1:]), "off", **DEFAULT_TILES)[0]
    torch.testing.assert_close(frames[9:], second)


@pytest.mark.parametrize("shape, tiles, axis, latent_axis, blend", [
    # spatial: latent width 30 in tiles of 20 overlapping 8 -> spans (0, 20) (12, 30); blend in pixels 384..640
    ((1, 4, 2, 2, 30), dict(spatial_tile=640, spatial_overlap=256, temporal_tile=80, temporal_overlap=24), 2, 4,
     (32 * 12, 32 * 20)),
    # temporal: 22 latent frames in tiles of 15 overlapping 7 -> spans (0, 15) (8, 22); the second tile decodes
    # from latent 7 on, so the blend covers frames 56..112
    ((1, 4, 22, 2, 2), dict(spatial_tile=768, spatial_overlap=64, temporal_tile=120, temporal_overlap=56), 0, 2,
     (8 * 7, 1 + 8 * 14)),
])
def test_tiled_decode_matches_untiled_away_from_the_blend_zone(handles, shape, tiles, axis, latent_axis, blend):
    """Outside the overlaps every pixel comes from one tile alone and equals the untiled decode; inside them the
    tiny random decoder's wide receptive field (~7 latent units) makes the tiles differ, so there only the mean
    error is bounded."""
    _, video, audio = handles
    frames_count = 1 + 8 * (shape[2] - 1)
    latent = _latent(audio, shape, frames_count, seed=3)
    full, _ = AVGenVideoDecode().decode(video, latent, "off", **tiles)
    calls, hook = _count_decoder_calls(video.vae)
    try:
        tiled, _ = AVGenVideoDecode().decode(video, latent, "on", **tiles)
    finally:
        hook.remove()
    assert tiled.shape == full.shape
    assert len(calls) == 2 and all(call[latent_axis] < shape[latent_axis] for call in calls)  # never the whole
    err = (tiled - full).abs()
    start, end = blend
    outside = torch.cat([err.narrow(axis, 0, start), err.narrow(axis, end, err.shape[axis] - end)], dim=axis)
    assert outside.max() < 1e-4
    assert err.mean() < 0.05 * full.mean()


def test_auto_tiles_only_videos_larger_than_one_tile(handles):
    _, video, audio = handles
    tiles = dict(spatial_tile=96, spatial_overlap=32, temporal_tile=16, temporal_overlap=0)  # one tile: 96x96x16
    small = _latent(audio, (1, 4, 2, 2, 4), 9)  # 9 x 64 x 128 pixels fit in one tile
    assert tiling_for("auto", small.video, (8, 32, 32), **tiles).spatial_tile is None
    calls, hook = _count_decoder_calls(video.vae)
    try:
        auto, _ = AVGenVideoDecode().decode(video, small, "auto", **tiles)
        assert len(calls) == 1
        on, _ = AVGenVideoDecode().decode(video, small, "on", **tiles)
        assert len(calls) == 1 + 2  # width 4 latent in tiles of 3 overlapping 1 -> (0, 3) (2, 4)
        large = _latent(audio, (1, 4, 3, 3, 4), 17)  # 17 x 96 x 128 > one tile
        AVGenVideoDecode().decode(video, large, "auto", **tiles)
        assert len(calls) == 3 + 2 * 2  # time (0, 2) (2, 3) x width (0, 3) (2, 4)
    finally:
        hook.remove()
    torch.testing.assert_close(auto, AVGenVideoDecode().decode(video, small, "off", **tiles)[0])
    assert on.shape == auto.shape


def test_tiled_decode_reports_progress_and_stops_on_interrupt(handles, monkeypatch):
    _, video, audio = handles
    latent = _latent(audio, (1, 4, 3, 3, 4), 17)
    tiles = dict(spatial_tile=96, spatial_overlap=32, temporal_tile=16, temporal_overlap=0)
    updates = []
    original = comfy_adapter.ProgressReporter.update_absolute
    monkeypatch.setattr(comfy_adapter.ProgressReporter, "update_absolute",
                        lambda self, value, total=None, preview=None: (updates.append((value, self.total)),
                                                                       original(self, value, total, preview)))
    with comfy_adapter.configured():
        AVGenVideoDecode().decode(video, latent, "on", **tiles)
        assert updates == [(i, 4) for i in range(1, 5)]  # 2 temporal x 2 spatial tiles
        comfy_adapter.request_interrupt()
        with pytest.raises(comfy_adapter.Interrupted):
            AVGenVideoDecode().decode(video, latent, "on", **tiles)


def test_video_decode_bad_inputs_are_named(handles):
    _, video, audio = handles
    latent = _latent(audio, (1, 4, 2, 2, 2), 9)
    node = AVGenVideoDecode()
    with pytest.raises(NodeInputError, match="AVGenVideoDecode: latent must be an AV latent"):
        node.decode(video, latent.video, "auto", **DEFAULT_TILES)
    with pytest.raises(NodeInputError, match="AVGenVideoDecode: spatial_overlap 384 must be less than half the "
                                             "spatial_tile 768"):
        node.decode(video, latent, "on", 768, 384, 80, 24)
    with pytest.raises(NodeInputError, match="AVGenVideoDecode: spatial_tile 100 must be a multiple of 32 .*use 96 "
                                             "or 128"):
        node.decode(video, latent, "on", 100, 0, 80, 24)
    with pytest.raises(NodeInputError, match="AVGenVideoDecode: spatial_overlap 48 must be a multiple of 32 .*use 32 "
                                             "or 64"):
        node.decode(video, latent, "on", 768, 48, 80, 24)  # on the finest grid, not on this VAE's
    with pytest.raises(NodeInputError, match="AVGenVideoDecode: tiling must be one of"):
        node.decode(video, latent, "sometimes", **DEFAULT_TILES)
    with pytest.raises(NodeInputError, match=r"AVGenVideoDecode: video VAE decode expects a latent \(B, 4"):
        node.decode(video, latent.replace(video=torch.zeros(1, 3, 2, 2, 2)), "auto", **DEFAULT_TILES)


def test_audio_decode_is_exactly_the_clip_long_with_a_preview_player(handles, tmp_path):
    family, _, audio = handles
    pixel_frames, fps = 17, 30.0
    latent = _latent(audio, (1, 4, 1 + (pixel_frames - 1) // 8, 2, 2), pixel_frames, fps=fps)
    with comfy_adapter.configured(temp_dir=tmp_path):
        returned = AVGenAudioDecode().decode(audio, latent)
    (decoded,), (player,) = returned["result"], returned["ui"]["audio"]
    assert player["type"] == "temp"
    preview = read_audio(tmp_path / player["subfolder"] / player["filename"])
    assert preview.sample_rate == decoded["sample_rate"] and preview.waveform.shape == decoded["waveform"][0].shape
    assert (preview.waveform - decoded["waveform"][0]).abs().max() <= 1.5 / 32767  # 16-bit FLAC
    rate = {"ltx2": 24000, "ltx23": 48000}[family]
    assert decoded["sample_rate"] == rate
    assert decoded["waveform"].shape == (1, 2, round(pixel_frames / fps * rate))
    assert decoded["waveform"].dtype == torch.float32 and decoded["waveform"].abs().max() <= 1.0
    mel = audio.vae.decode(latent.audio)
    reference = audio.vocoder(mel)
    length = min(reference.shape[-1], decoded["waveform"].shape[-1])
    torch.testing.assert_close(decoded["waveform"][..., :length], reference[..., :length])


def test_audio_decode_bad_inputs_are_named(handles):
    _, _, audio = handles
    latent = _latent(audio, (1, 4, 2, 2, 2), 9)
    with pytest.raises(NodeInputError, match="AVGenAudioDecode: latent must be an AV latent"):
        AVGenAudioDecode().decode(audio, {"samples": latent.audio})
    with pytest.raises(NodeInputError, match="AVGenAudioDecode: audio VAE decode expects a latent"):
        AVGenAudioDecode().decode(audio, latent.replace(audio=torch.zeros(1, 3, 4, 5)))
