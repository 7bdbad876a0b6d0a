"""Empty AV Latent and the encode nodes (image, video, audio) on the tiny golden checkpoints: shapes, documented
fixes with exact shapes, and a named error for every bad input."""
from __future__ import annotations

import pytest
import torch
from latent_handles import (  # noqa: F401 (fixtures: one_torch_thread (autouse), handles, ltx23)
    handles,
    ltx23,
    FAMILIES, make_audio, make_image, one_torch_thread, tiny_handles,
)

from comfyui_avgen.media.frame_prep import h264_roundtrip, resize_frames, to_uint8
from comfyui_avgen.models.audio.preprocess import prepare_audio
from comfyui_avgen.models.sampling import LatentIndexConditioning
from comfyui_avgen.nodes.encode import AVGenAudioEncode, AVGenImageEncode, AVGenVideoEncode
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent, frames_for_seconds

W, H, FRAMES, FPS = 96, 64, 17, 24.0


def empty(handles, width=W, height=H, frames=FRAMES, seconds=0.0, fps=FPS, batch=1, **optional):
    out = AVGenEmptyAVLatent().make(handles.model, width, height, frames, seconds, fps, batch, **optional)
    return out["result"][0], out["ui"]["text"]


def result_and_notes(returned):
    """(AV latent, ui notes) of a node that returns a tuple or {"ui", "result"}."""
    if isinstance(returned, dict):
        return returned["result"][0], returned["ui"]["text"]
    return returned[0], []


# ---------------------------------------------------------------- Empty AV Latent


def test_empty_latent_shapes_follow_model_config_and_duration(handles):
    latent, notes = empty(handles, batch=2)
    assert latent.video.shape == (2, handles.model.config.video_in_channels, 3, 2, 3)
    assert latent.audio.shape == (2, 1, round(FRAMES / FPS * 25), 16)  # 18 audio latent frames, z 1, 16 mel bins
    assert latent.audio.shape[1] * latent.audio.shape[3] == handles.model.config.audio_in_channels
    assert not latent.video.any() and not latent.audio.any()
    assert (latent.pixel_frames, latent.height, latent.width, latent.fps) == (FRAMES, H, W, FPS)
    assert not (latent.has_video or latent.has_audio or latent.keep_video or latent.keep_audio)
    assert latent.conditionings == ()
    assert "17 frames" in notes[0]


def test_seconds_round_to_nearest_8k_plus_1_with_a_note(ltx23):
    latent, notes = empty(ltx23, frames=9, seconds=1.0, fps=24.0)  # 24 frames -> 25 (frames widget ignored)
    assert latent.pixel_frames == 25 and latent.video.shape[2] == 4
    assert latent.audio.shape[2] == 26  # round(25 / 24 * 25)
    assert "1 s at 24 fps -> 25 frames" in notes[0]
    assert [frames_for_seconds(s, 24.0) for s in (0.01, 4.0, 5.0, 5.1, 5.4)] == [1, 97, 121, 121, 129]


@pytest.mark.parametrize("width,height,match", [
    (100, 64, r"AVGenEmptyAVLatent: width 100 must be a multiple of 32 .*use 96 or 128"),
    (96, 32, r"AVGenEmptyAVLatent: height 32 must be a multiple of 32 and at least 64.*use 64"),
])
def test_empty_latent_refuses_bad_sizes(ltx23, width, height, match):
    with pytest.raises(NodeInputError, match=match):
        empty(ltx23, width=width, height=height)


@pytest.mark.parametrize("frames,match", [(20, r"frames 20 is not 8k\+1.*use 17 or 25"), (0, r"frames 0 is not 8k\+1")])
def test_empty_latent_refuses_frames_not_8k_plus_1(ltx23, frames, match):
    with pytest.raises(NodeInputError, match="AVGenEmptyAVLatent: " + match):
        empty(ltx23, frames=frames)


def test_first_frame_becomes_a_latent_index_conditioning(ltx23):
    image = AVGenImageEncode().encode(ltx23.video_vae, make_image(H, W), W, H, "crop", 0)[0]
    latent, notes = empty(ltx23, batch=2, first_frame=image, first_frame_strength=0.8)
    (item,) = latent.conditionings
    assert isinstance(item, LatentIndexConditioning) and (item.latent_idx, item.strength) == (0, 0.8)
    assert item.latent.shape == (2, 4, 1, 2, 3) and torch.equal(item.latent[1:], image.latent)
    assert "first frame at strength 0.8" in notes[-1]


def test_first_frame_of_another_size_is_refused(ltx23):
    image = AVGenImageEncode().encode(ltx23.video_vae, make_image(H, W), 128, 64, "crop", 0)[0]
    with pytest.raises(NodeInputError, match=r"AVGenEmptyAVLatent: first_frame was encoded at 128x64 but the "
                                             r"latent is 96x64"):
        empty(ltx23, first_frame=image)


# ---------------------------------------------------------------- Image Encode


@pytest.mark.parametrize("mode", ["crop", "pad", "stretch"])
def test_image_encode_gives_one_latent_frame_at_the_target_size(handles, mode):
    image = AVGenImageEncode().encode(handles.video_vae, make_image(90, 200), W, H, mode, 33)[0]
    assert image.latent.shape == (1, 4, 1, H // 32, W // 32) and image.latent.dtype == torch.float32
    assert (image.pixel_frames, image.height, image.width) == (1, H, W)
    assert torch.isfinite(image.latent).all()


def test_image_encode_refuses_a_batch(ltx23):
    with pytest.raises(NodeInputError, match="AVGenImageEncode: image holds a batch of 2 images, one is expected"):
        AVGenImageEncode().encode(ltx23.video_vae, make_image(H, W, frames=2), W, H, "crop", 33)


def test_image_encode_refuses_bad_target_size(ltx23):
    with pytest.raises(NodeInputError, match="AVGenImageEncode: height 70 must be a multiple of 32"):
        AVGenImageEncode().encode(ltx23.video_vae, make_image(H, W), W, 70, "crop", 33)


def test_crf_round_trip_changes_the_image_slightly_and_crf_0_is_off(ltx23):
    image = make_image(67, 101)
    trip = h264_roundtrip(to_uint8(image[0]), 33)
    assert trip.shape == (66, 100, 3)  # 4:2:0 needs even sizes: the last row and column are dropped
    difference = (torch.from_numpy(trip).float() - torch.from_numpy(to_uint8(image[0]))[:66, :100].float()).abs()
    assert 0 < difference.mean() < 8
    encode = AVGenImageEncode().encode
    off = encode(ltx23.video_vae, image, W, H, "crop", 0)[0].latent
    on = encode(ltx23.video_vae, image, W, H, "crop", 33)[0].latent
    assert not torch.equal(off, on)


def test_resize_modes_exactly():
    image = torch.rand(1, 40, 100, 3)  # 2.5:1 into 64x96 (1.5:1)
    crop = resize_frames(image, 64, 96, "crop")  # cover: 64 x 160, center 96 columns
    assert crop.shape == (1, 3, 64, 96)
    full = torch.nn.functional.interpolate(image.permute(0, 3, 1, 2), size=(64, 160), mode="bilinear",
                                           align_corners=False)
    assert torch.equal(crop, full[..., 32:128])
    pad = resize_frames(image, 64, 96, "pad")  # fit: 38 x 96, centered rows 13..50, black elsewhere
    assert pad.shape == (1, 3, 64, 96) and not pad[..., :13, :].any() and not pad[..., 51:, :].any()
    assert torch.equal(pad[..., 13:51, :], torch.nn.functional.interpolate(
        image.permute(0, 3, 1, 2), size=(38, 96), mode="bilinear", align_corners=False))
    stretch = resize_frames(image, 64, 96, "stretch")
    assert torch.equal(stretch, torch.nn.functional.interpolate(
        image.permute(0, 3, 1, 2), size=(64, 96), mode="bilinear", align_corners=False))
    assert torch.equal(resize_frames(image, 40, 100, "crop"), image.permute(0, 3, 1, 2))


# ---------------------------------------------------------------- Video Encode


def test_video_encode_sets_and_freezes_the_video(handles):
    latent, _ = empty(handles, batch=2)
    out, notes = result_and_notes(AVGenVideoEncode().encode(handles.video_vae, make_image(80, 120, 20), latent,
                                                            "crop", True))
    assert out.video.shape == latent.video.shape and out.video.any()
    assert torch.equal(out.video[0], out.video[1])
    assert (out.has_video, out.keep_video, out.has_audio, out.keep_audio) == (True, True, False, False)
    assert notes == ["used the first 17 of 20 frames"]
    kept_off, _ = result_and_notes(AVGenVideoEncode().encode(handles.video_vae, make_image(H, W, 17), latent,
                                                             "crop", False))
    assert kept_off.has_video and not kept_off.keep_video


def test_video_encode_refuses_too_few_frames(ltx23):
    latent, _ = empty(ltx23)
    with pytest.raises(NodeInputError, match=r"AVGenVideoEncode: images hold 12 frames but the latent needs 17: set "
                                             r"the empty latent's frames to 9"):
        AVGenVideoEncode().encode(ltx23.video_vae, make_image(H, W, 12), latent, "crop", True)


def test_video_encode_with_keep_drops_the_first_frame_conditioning(ltx23):
    image = AVGenImageEncode().encode(ltx23.video_vae, make_image(H, W), W, H, "crop", 0)[0]
    latent, _ = empty(ltx23, first_frame=image)
    kept, notes = result_and_notes(AVGenVideoEncode().encode(ltx23.video_vae, make_image(H, W, 17), latent, "crop",
                                                             True))
    assert kept.conditionings == () and "dropped" in notes[-1]
    reworked, _ = result_and_notes(AVGenVideoEncode().encode(ltx23.video_vae, make_image(H, W, 17), latent, "crop",
                                                             False))
    assert reworked.conditionings == latent.conditionings


# ---------------------------------------------------------------- Audio Encode


@pytest.mark.parametrize("channels,rate,expected_notes", [
    (1, 8000, ["mono duplicated to stereo", "resampled from 8000 Hz to 16000 Hz"]),
    (6, 48000, ["6 channels (5.1: FL FR FC LFE BL BR) mixed down to stereo", "resampled from 48000 Hz to 16000 Hz"]),
    (2, 16000, []),
    (8, 44100, ["8 channels (7.1: FL FR FC LFE BL BR SL SR) mixed down to stereo",
                "resampled from 44100 Hz to 16000 Hz"]),
])
def test_audio_encode_fixes_channels_and_rate_with_exact_shapes(handles, channels, rate, expected_notes):
    latent, _ = empty(handles, batch=2)
    seconds = FRAMES / FPS
    out, notes = result_and_notes(AVGenAudioEncode().encode(handles.audio_vae, make_audio(seconds, rate, channels),
                                                            latent, True))
    assert out.audio.shape == latent.audio.shape == (2, 1, 18, 16)
    assert torch.equal(out.audio[0], out.audio[1]) and out.audio.any()
    assert (out.has_audio, out.keep_audio, out.has_video) == (True, True, False)
    assert notes == expected_notes


def test_audio_encode_mono_equals_duplicated_stereo_and_matches_the_model_calls(ltx23):
    latent, _ = empty(ltx23, frames=25)  # 1.042 s: 26 audio latent frames
    mono = make_audio(2.0, 22050, 1)
    stereo = {"waveform": mono["waveform"].repeat(1, 2, 1), "sample_rate": 22050}
    encode = AVGenAudioEncode().encode
    from_mono, notes = result_and_notes(encode(ltx23.audio_vae, mono, latent, True))
    from_stereo, _ = result_and_notes(encode(ltx23.audio_vae, stereo, latent, False))
    assert torch.equal(from_mono.audio, from_stereo.audio) and not from_stereo.keep_audio
    assert "2.000 s trimmed to the clip's 1.042 s" in notes
    prepared = prepare_audio(stereo["waveform"], 22050, seconds=25 / FPS)
    direct = ltx23.audio_vae.vae.encode_waveform(prepared, 22050)
    assert direct.shape[2] == 27  # 105 mel frames -> ceil(105 / 4): one more than round(25 / 24 * 25) = 26
    assert torch.equal(from_mono.audio, direct[:, :, :26])


def test_audio_encode_pads_short_audio_with_silence(ltx23):
    latent, _ = empty(ltx23)
    out, notes = result_and_notes(AVGenAudioEncode().encode(ltx23.audio_vae, make_audio(0.25, 16000, 2), latent,
                                                            True))
    assert out.audio.shape == latent.audio.shape
    assert notes == ["0.250 s padded with silence to the clip's 0.708 s"]


@pytest.mark.parametrize("audio,match", [
    ({"waveform": torch.zeros(1, 2, 100)}, "must be an AUDIO dict"),
    ({"waveform": torch.zeros(2, 100), "sample_rate": 16000}, r"waveform must be \(batch, channels, samples\)"),
    ({"waveform": torch.zeros(1, 2, 100), "sample_rate": 0}, "sample_rate must be a positive whole number"),
])
def test_audio_encode_refuses_malformed_audio(ltx23, audio, match):
    latent, _ = empty(ltx23)
    with pytest.raises(NodeInputError, match="AVGenAudioEncode: .*" + match):
        AVGenAudioEncode().encode(ltx23.audio_vae, audio, latent, True)
