"""AVGen Long Video: the chunk plan, the stitcher (seams without clicks, gaps or drift), the streaming mp4 writer,
the sync windows, and the node on the tiny golden checkpoint (pinned picture and kept sound between chunks, the dub
kept exactly, memory held to a chunk, named errors)."""
from __future__ import annotations

import math

import pytest
import torch
from latent_handles import (  # noqa: F401 (fixtures: one_torch_thread (autouse), ltx23)
    ltx23,
    one_torch_thread, random_conditioning,
)
from media_clips import flash_click_clip, probe

from comfyui_avgen.media.mp4_stream import Mp4Stream
from comfyui_avgen.media.stitch import ChunkStitcher
from comfyui_avgen.media.sync import measure_offset
from comfyui_avgen.media.sync_windows import SyncWindows
from comfyui_avgen.models.positions import AUDIO_LATENTS_PER_SECOND
from comfyui_avgen.models.sampling import LatentIndexConditioning
from comfyui_avgen.models.timeline import (
    CROSSFADE, FRESH, SOUND, TimelineError, grid_ceil, grid_floor, plan_chunks, shot_spans,
)
from comfyui_avgen.nodes import comfy_adapter, long_video
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.long_video import AVGenLongVideo, AVGenSamplerSettings, aligned_stride, prepare_job
from comfyui_avgen.nodes.shots import AVGenShot, ShotList

FPS = 24.0
SETTINGS = dict(seed=3, steps=2, schedule="dev", video_cfg=1.0, audio_cfg=1.0, video_stg=0.0, audio_stg=0.0,
                stg_blocks="none", video_modality=1.0, audio_modality=1.0, video_rescale=0.0, audio_rescale=0.0,
                batched_passes=False, sampler="euler")


# --- the plan ---------------------------------------------------------------------------------------------------


def spans(*shots):
    """shot_spans of (seconds, transition into the next) pairs at 24 fps."""
    return shot_spans([s for s, _ in shots], [t for _, t in shots], FPS)


def test_one_shot_is_covered_by_chunks_that_start_an_overlap_before_the_previous_end():
    plan = plan_chunks(spans((3.0, "smooth")), chunk_frames=33, overlap=9)
    assert [(c.start, c.frames, c.end, c.overlap, c.join) for c in plan] == [
        (0, 33, 33, 0, FRESH), (24, 33, 57, 9, CROSSFADE), (48, 25, 72, 9, CROSSFADE)]  # the last one cut to 72
    assert all(c.keep_sound for c in plan[1:]) and plan[0].first_of_shot and not plan[1].first_of_shot


@pytest.mark.parametrize("sound, transition, join, keep, start", [
    ("continuous", "cut", SOUND, True, 24 - 9),  # the sound over the overlap before the cut is carried
    ("per_shot", "cut", FRESH, False, 24),  # afresh at the boundary
    ("continuous", "smooth", CROSSFADE, True, 24 - 9),
    ("per_shot", "smooth", CROSSFADE, False, 24 - 9),  # the picture flows on, the sound is made anew
])
def test_a_shot_boundary_joins_as_its_transition_and_the_sound_mode_say(sound, transition, join, keep, start):
    plan = plan_chunks(spans((1.0, transition), (1.0, "smooth")), 33, 9, sound)
    first = next(c for c in plan if c.shot == 1)
    assert (first.join, first.keep_sound, first.start, first.first_of_shot) == (join, keep, start, True)
    assert first.pins_picture == (join == CROSSFADE)


def test_a_dub_keeps_no_generated_sound_and_cuts_start_afresh():
    plan = plan_chunks(spans((1.0, "cut"), (2.0, "smooth")), 33, 9, "continuous", given_sound=True)
    assert not any(c.keep_sound for c in plan)
    assert [c.join for c in plan] == [FRESH, FRESH, CROSSFADE]


def test_every_frame_is_shown_once_and_overlaps_lie_in_the_previous_chunk():
    shots = spans((0.5, "smooth"), (1.3, "cut"), (0.4, "smooth"), (2.0, "cut"), (0.7, "smooth"))
    for sound in ("continuous", "per_shot"):
        plan = plan_chunks(shots, 41, 25, sound)
        shown = [c.start + (c.overlap if c.join == SOUND else 0) for c in plan]
        assert shown[0] == 0 and plan[-1].end == shots[-1].end
        for previous, chunk in zip(plan, plan[1:]):
            assert chunk.start + chunk.overlap == previous.end  # no gap, no frame twice
            assert chunk.start >= previous.start and chunk.frames <= 41
            assert chunk.overlap == 0 or (chunk.overlap - 1) % 8 == 0
        assert all((c.frames - 1) % 8 == 0 and c.end <= c.start + c.frames for c in plan)
        # a short shot (12 frames) shortens the overlap after it to the longest 8k+1 count it holds
        after_short = next(c for c in plan if c.shot == 1 and c.first_of_shot)
        assert after_short.overlap in (0, 9)


def test_grid_rounding():
    assert [grid_ceil(n) for n in (1, 2, 9, 10, 24)] == [1, 9, 9, 17, 25]
    assert [grid_floor(n) for n in (1, 8, 9, 24, 25)] == [1, 1, 9, 17, 25]
    assert [aligned_stride(fps, 8) for fps in (24.0, 25.0, 30.0, 50.0)] == [24, 8, 24, 8]


@pytest.mark.parametrize("call, message", [
    (lambda: shot_spans([], [], FPS), "the shot list is empty"),
    (lambda: shot_spans([1.0, 0.3], ["cut", "cut"], FPS),
     "shot 2 lasts 0.3 s = 7 frames at 24 fps, shorter than one latent frame (8 frames"),
    (lambda: shot_spans([1.0], ["fade"], FPS), "transition must be one of smooth, cut, got 'fade'"),
    (lambda: plan_chunks(spans((2.0, "cut")), 17, 17), "overlap_frames 17 is not shorter than a chunk (17 frames"),
    (lambda: plan_chunks(spans((2.0, "cut")), 17, 33), "overlap_frames 33 is not shorter than a chunk"),
    (lambda: plan_chunks(spans((2.0, "cut")), 17, 4), "overlap_frames 4 is not 8k+1"),
    (lambda: plan_chunks(spans((2.0, "cut")), 17, 9, "stereo"), "sound must be one of continuous, per_shot"),
])
def test_plans_that_cannot_be_made_are_named(call, message):
    with pytest.raises(TimelineError, match=message.replace("(", r"\(").replace("+", r"\+")):
        call()


# --- the stitcher -------------------------------------------------------------------------------------------------


def tone(frames: int, fps: float, rate: int) -> torch.Tensor:
    """Stereo tone of exactly frames / fps seconds, at absolute sample positions."""
    t = torch.arange(round(frames / fps * rate), dtype=torch.float64) / rate
    return torch.stack([torch.sin(2 * math.pi * 440 * t), 0.5 * torch.sin(2 * math.pi * 330 * t)]).float()


def stitched(plan, frames_of, audio_of, fps, rate):
    stitcher, out = ChunkStitcher(plan, fps, rate), []
    for chunk in plan:
        out += stitcher.add(chunk, frames_of(chunk), audio_of(chunk))
        held = stitcher.held_frames.shape[0]
        following = plan[chunk.index + 1] if chunk.index + 1 < len(plan) else None
        assert held <= max(1, following.overlap if following else 1)  # only what the next chunk overlaps
    return out + stitcher.finish()


@pytest.mark.parametrize("fps, rate, overlap", [(24.0, 16000, 17), (25.0, 44100, 17), (30.0, 48000, 25)])
def test_chunks_cut_from_one_clip_stitch_back_to_it_without_drift(fps, rate, overlap):
    """16000 / 24 = 666.67 samples a frame: chunk starts fall between samples, yet the sound comes back exactly.
    An overlap of 25 in 41-frame chunks reaches into the previous chunk's own overlap."""
    plan = plan_chunks(shot_spans([6.0], ["smooth"], fps), 41, overlap)
    length = plan[-1].end
    truth_frames = torch.linspace(0, 1, length).view(-1, 1, 1, 1).expand(-1, 2, 3, 3).contiguous()
    truth_audio = tone(length + 41, fps, rate)

    def sample(frame):
        return round(frame * rate / fps)

    out = stitched(plan, lambda c: truth_frames[c.start:c.start + c.frames] if c.start + c.frames <= length else
                   torch.cat([truth_frames[c.start:], truth_frames[-1:].expand(c.start + c.frames - length, -1, -1,
                                                                                   -1)]),
                   lambda c: truth_audio[:, sample(c.start):sample(c.start) + round(c.frames / fps * rate)], fps, rate)
    assert [s.first_frame for s in out] == [sum(x.frames.shape[0] for x in out[:i]) for i in range(len(out))]
    frames, audio = torch.cat([s.frames for s in out]), torch.cat([s.audio for s in out], -1)
    assert frames.shape[0] == length and audio.shape[-1] == sample(length)  # exactly as long as the frames
    torch.testing.assert_close(frames, truth_frames, atol=1e-6, rtol=0)
    torch.testing.assert_close(audio, truth_audio[:, :sample(length)], atol=1e-5, rtol=0)


def test_overlaps_cross_fade_picture_and_sound_from_one_chunk_to_the_next():
    fps, rate = 24.0, 24000  # 1000 samples a frame
    plan = plan_chunks(shot_spans([1.0], ["smooth"], fps), 17, 9)  # [0, 17), [8, 24)
    out = stitched(plan, lambda c: torch.full((c.frames, 1, 1, 3), float(c.index)),
                   lambda c: torch.full((2, round(c.frames / fps * rate)), float(c.index)), fps, rate)
    frames, audio = torch.cat([s.frames for s in out]), torch.cat([s.audio for s in out], -1)
    ramp = torch.arange(1, 10) / 10
    torch.testing.assert_close(frames[8:17, 0, 0, 0], ramp)  # chunk 0 -> chunk 1 over frames 8..16
    assert torch.equal(frames[:8], torch.zeros(8, 1, 1, 3)) and torch.equal(frames[17:], torch.ones(7, 1, 1, 3))
    fade = audio[0, 8000:17000]
    assert fade[0] > 0 and fade[-1] < 1 and bool((fade[1:] >= fade[:-1]).all())  # one smooth ramp
    assert torch.equal(audio[:, :8000], torch.zeros(2, 8000)) and torch.equal(audio[:, 17000:], torch.ones(2, 7000))


def test_a_cut_keeps_the_old_picture_to_the_boundary_and_a_fresh_cut_fades_the_sound():
    fps, rate = 24.0, 24000
    for sound, join in (("continuous", SOUND), ("per_shot", FRESH)):
        plan = plan_chunks(shot_spans([1.0, 1.0], ["cut", "cut"], fps), 33, 9, sound)
        assert plan[1].join == join
        out = stitched(plan, lambda c: torch.full((c.frames, 1, 1, 3), float(c.index + 1)),
                       lambda c: torch.full((1, round(c.frames / fps * rate)), 0.5 * (c.index + 1)), fps, rate)
        frames, audio = torch.cat([s.frames for s in out]), torch.cat([s.audio for s in out], -1)[0]
        picture = frames[:, 0, 0, 0]
        assert torch.equal(picture[:24], torch.ones(24)) and torch.equal(picture[24:], 2 * torch.ones(24))
        jumps = (audio[1:] - audio[:-1]).abs()
        assert float(jumps.max()) < 0.01  # no click: cross-faded, or faded out and in over 5 ms
        if join == FRESH:
            assert float(audio[24000 - 1].abs()) < 0.01 and float(audio[24000].abs()) < 0.01


def test_the_stitcher_refuses_chunks_out_of_order():
    plan = plan_chunks(shot_spans([1.0], ["smooth"], FPS), 17, 9)
    stitcher = ChunkStitcher(plan, FPS, None)
    with pytest.raises(ValueError, match="chunk 1 added out of order: the stitcher expects chunk 0"):
        stitcher.add(plan[1], torch.zeros(plan[1].frames, 1, 1, 3))
    stitcher.add(plan[0], torch.zeros(plan[0].frames, 1, 1, 3))
    with pytest.raises(ValueError, match="1 chunk\\(s\\) of the plan were never added"):
        stitcher.finish()


# --- the writer and the sync windows ------------------------------------------------------------------------------


def test_the_stream_writes_blocks_into_one_mp4_with_sound_exactly_as_long_as_the_frames(tmp_path):
    frames, audio = flash_click_clip(0, FPS, 16000, frames=97, height=32, width=48)
    frames, audio = frames[:50], audio[:, :round(50 / FPS * 16000)]
    path = tmp_path / "stream.mp4"
    with Mp4Stream(path, 32, 48, FPS, 16000, 2, 19, {"prompt": "{}"}) as stream:
        for first, last in ((0, 7), (7, 30), (30, 50)):  # blocks of odd sizes, sound between samples
            stream.add_frames(frames[first:last])
            stream.add_audio(audio[:, round(first / FPS * 16000):round(last / FPS * 16000)])
    found = probe(path)
    assert (found.video_codecs, found.audio_codecs, found.frames, found.width, found.height) == (
        ["h264"], ["aac"], 50, 48, 32)
    assert found.sample_rate == 16000 and found.declared_audio_seconds == pytest.approx(50 / FPS, abs=1e-3)
    assert found.metadata.get("prompt") == "{}"


def test_the_stream_refuses_what_aac_cannot_store_and_leaves_no_half_file(tmp_path):
    with pytest.raises(ValueError, match="AAC cannot store 22222 Hz sound"):
        Mp4Stream(tmp_path / "a.mp4", 32, 32, FPS, 22222)
    path = tmp_path / "b.mp4"
    with pytest.raises(ValueError, match="frames are 16x16, the stream 32x32"):
        with Mp4Stream(path, 32, 32, FPS, 16000) as stream:
            stream.add_frames(torch.rand(3, 16, 16, 3))
    assert not path.exists()


def test_sync_windows_measure_the_first_and_last_seconds_as_the_whole_windows_would():
    frames, audio = flash_click_clip(2, FPS, 16000, frames=97)
    windows = SyncWindows(FPS, 16000, 2.0)  # 48 frames each
    for first, last in ((0, 20), (20, 61), (61, 97)):
        windows.add(frames[first:last], audio[:, round(first / FPS * 16000):round(last / FPS * 16000)])
    head, tail = windows.measure()
    expected_head = measure_offset(frames[:48], audio[:, :32000], 16000, FPS)
    expected_tail = measure_offset(frames[49:], audio[:, round(49 / FPS * 16000):], 16000, FPS)
    for found, expected in ((head, expected_head), (tail, expected_tail)):
        assert found.offset_ms == pytest.approx(expected.offset_ms, abs=1e-3)
        assert found.confidence == pytest.approx(expected.confidence, abs=1e-4)
    assert head.offset_frames == pytest.approx(2.0, abs=0.5)
    assert windows.tail_frames.shape == (48, 40, 56, 1)  # the luma only


# --- the node on the tiny golden checkpoint -------------------------------------------------------------------


def settings(**changes):
    return AVGenSamplerSettings().settings(**{**SETTINGS, **changes})[0]


def chunk_latent(handles, frames=17, width=64, height=64):
    return AVGenEmptyAVLatent().make(handles.model, width, height, frames, 0.0, FPS, 1)["result"][0]


class SamplerSpy:
    """Records every chunk latent the long video samples and what the sampler returned."""

    def __init__(self, monkeypatch):
        self.calls = []
        original = long_video.AVGenSampler.sample

        def sample(node, model, conditioning, latent, **values):
            result = original(node, model, conditioning, latent, **values)
            self.calls.append((latent, result["result"][0], values["seed"]))
            return result

        monkeypatch.setattr(long_video.AVGenSampler, "sample", sample)


def generate(handles, tmp_path, latent=None, seconds=1.0, overlap=9, sound="continuous", **optional):
    with comfy_adapter.configured(output_dir=tmp_path):
        return AVGenLongVideo().generate(handles.model, handles.video_vae, handles.audio_vae,
                                         random_conditioning(handles.model), latent or chunk_latent(handles),
                                         settings(), seconds, overlap, sound, "AVGen/long", 19, **optional)


def test_each_chunk_starts_from_the_previous_ones_picture_and_sound(ltx23, tmp_path, monkeypatch):
    spy = SamplerSpy(monkeypatch)
    result = generate(ltx23, tmp_path, seconds=1.5)  # 36 frames: chunks [0, 17), [8, 25), [16, 33), [24, 36)
    path, preview, fps, frames = result["result"]
    assert (fps, frames) == (FPS, 36) and preview.shape == (4, 64, 64, 3)
    assert [seed for *_, seed in spy.calls] == [3, 4, 5, 6]  # chunk k: seed + k
    found = probe(path)
    assert (found.frames, found.width, found.sample_rate) == (36, 64, 48000)  # the tiny LTX-2.3 vocoder: 48 kHz
    assert found.declared_audio_seconds == pytest.approx(36 / FPS, abs=1e-3)
    offset, kept = round(8 / FPS * AUDIO_LATENTS_PER_SECOND), round(9 / FPS * AUDIO_LATENTS_PER_SECOND)
    for (_, before, _), (latent, after, _) in zip(spy.calls, spy.calls[1:]):
        (pin,) = latent.conditionings
        assert isinstance(pin, LatentIndexConditioning) and pin.latent.shape[2] == 2  # 9 frames = 2 latent frames
        assert torch.equal(after.video[:, :, :2], pin.latent)  # the overlap's picture is pinned
        assert torch.equal(after.audio[:, :, :kept], before.audio[:, :, offset:offset + kept])  # its sound kept
    text = result["ui"]["text"]
    assert "chunks start 8 frames (0.333 s) apart, not a whole number of audio latent frames" in text[-1]
    assert "4 chunks, 1 shot(s) (0 cut(s))" in text[0]


def test_the_clip_is_streamed_a_chunk_at_a_time(ltx23, tmp_path):
    job = prepare_job(ltx23.model, ltx23.video_vae, ltx23.audio_vae, random_conditioning(ltx23.model),
                      chunk_latent(ltx23), settings(), 2.0, 9, "continuous")
    blocks = [segment.frames.shape[0] for segment in job.segments()]
    assert sum(blocks) == 48 and max(blocks) <= 17  # never more than a chunk of frames at once


def test_a_dub_keeps_the_given_sound_exactly_and_saves_it(ltx23, tmp_path, monkeypatch):
    spy = SamplerSpy(monkeypatch)
    rate = 16000
    wave = 0.3 * torch.sin(2 * math.pi * 200 * torch.arange(2 * rate) / rate).repeat(2, 1)
    result = generate(ltx23, tmp_path, seconds=0.0, audio={"waveform": wave[None], "sample_rate": rate})
    assert result["result"][3] == 48  # seconds 0: the audio's two seconds
    for latent, out, _ in spy.calls:
        assert latent.keep_audio and torch.equal(out.audio, latent.audio)  # each chunk's slice kept exactly
    found = probe(result["result"][0])
    assert found.sample_rate == rate and found.declared_audio_seconds == pytest.approx(2.0, abs=1e-3)
    assert "from the given audio" in result["ui"]["text"][0]


def test_a_shot_list_makes_cuts_and_smooth_transitions(ltx23, tmp_path, monkeypatch):
    spy = SamplerSpy(monkeypatch)
    first = AVGenShot().add_shot("", 0.5, "cut")["result"][0]
    second = AVGenShot().add_shot("", 0.5, "smooth", shots=first)["result"][0]
    shots = AVGenShot().add_shot("", 0.5, "smooth", shots=second)["result"][0]
    result = generate(ltx23, tmp_path, seconds=0.0, shots=shots)
    assert result["result"][3] == 36 and "3 shot(s) (1 cut(s))" in result["ui"]["text"][0]
    joins = [(latent.pixel_frames, bool(latent.conditionings), bool(latent.audio_conditionings))
             for latent, *_ in spy.calls]
    assert joins[1] == (17, False, True)  # after the cut: a fresh picture, the sound over the overlap kept


BAD_RUNS = [
    (dict(overlap=17), "overlap_frames 17 is not shorter than a chunk (17 frames, the latent's length)"),
    (dict(shots=ShotList(())), "the shot list is empty"),
    (dict(seconds=0.0, shots=ShotList((AVGenShot().add_shot("", 0.2, "cut")["result"][0].shots))),
     "shot 1 lasts 0.2 s = 5 frames at 24 fps, shorter than one latent frame"),
    (dict(seconds=2.0, audio={"waveform": torch.zeros(1, 2, 16000), "sample_rate": 16000}),
     "the audio lasts 1.000 s, shorter than the clip's 2.000 s (48 frames at 24 fps)"),
    (dict(seconds=3.0, shots=AVGenShot().add_shot("", 2.0, "cut")["result"][0]),
     "seconds 3 differs from the shots' total 2 s"),
    (dict(seconds=0.0, shots=AVGenShot().add_shot("a bell", 2.0, "cut")["result"][0]),
     "the shots have prompts: connect text_encoder"),
    (dict(seconds=0.0, audio={"waveform": torch.zeros(2, 2, 48000), "sample_rate": 16000}),
     "audio holds a batch of 2 sounds"),
]


@pytest.mark.parametrize("inputs, message", BAD_RUNS, ids=[m[:40] for _, m in BAD_RUNS])
def test_what_cannot_be_made_is_refused_by_name_before_sampling(ltx23, tmp_path, inputs, message, monkeypatch):
    monkeypatch.setattr(long_video.AVGenSampler, "sample", lambda *a, **k: pytest.fail("sampled"))
    with pytest.raises(NodeInputError) as caught:
        generate(ltx23, tmp_path, **inputs)
    assert str(caught.value).startswith("AVGenLongVideo: ") and message in str(caught.value)


def test_the_chunk_latent_and_the_settings_are_checked(ltx23, tmp_path):
    batch = AVGenEmptyAVLatent().make(ltx23.model, 64, 64, 17, 0.0, FPS, 2)["result"][0]
    with pytest.raises(NodeInputError, match="latent has a batch of 2"):
        generate(ltx23, tmp_path, latent=batch)
    with pytest.raises(NodeInputError, match="latent must be an empty chunk"):
        generate(ltx23, tmp_path, latent=chunk_latent(ltx23).replace(has_audio=True, keep_audio=True))
    with pytest.raises(NodeInputError, match="the distilled_stage2 schedule refines a latent with content"):
        with comfy_adapter.configured(output_dir=tmp_path):
            AVGenLongVideo().generate(ltx23.model, ltx23.video_vae, ltx23.audio_vae,
                                      random_conditioning(ltx23.model), chunk_latent(ltx23),
                                      settings(schedule="distilled_stage2"), 1.0, 9, "continuous", "x", 19)
    with pytest.raises(NodeInputError, match="AVGenSamplerSettings: steps must be in \\[2, 1000\\], got 1"):
        settings(steps=1)
    assert AVGenLongVideo.VALIDATE_INPUTS(overlap_frames=10).startswith(
        "AVGenLongVideo: overlap_frames 10 is not 8k+1")
    assert "would leave the output directory" in AVGenLongVideo.VALIDATE_INPUTS(filename_prefix="../x")
