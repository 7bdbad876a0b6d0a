"""AVGen Extend / AVGen Join on the tiny golden checkpoints: the next clip starts from the end of the previous one
(pinned picture, exactly kept sound), and the joined sound runs through the seam without a discontinuity."""
from __future__ import annotations

import math

import av
import pytest
import torch
from node_fixtures import run_builtin_workflow
from latent_handles import (  # noqa: F401 (fixtures: one_torch_thread (autouse), ltx23)
    ltx23,
    one_torch_thread, random_conditioning,
)

from comfyui_avgen.models.positions import AUDIO_LATENTS_PER_SECOND, audio_positions
from comfyui_avgen.models.sampling import KeyframeConditioning
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.extend import AVGenExtend, AVGenJoin
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.sampler import AVGenSampler
from comfyui_avgen.tiny import builtin

W, H, FRAMES, FPS = 64, 64, 17, 24.0
SAMPLER = dict(steps=3, schedule="dev", denoise=1.0, video_cfg=1.0, audio_cfg=1.0, video_stg=0.0, audio_stg=0.0,
               stg_blocks="none", video_modality=1.0, audio_modality=1.0, video_rescale=0.0, audio_rescale=0.0,
               batched_passes=False)


def sample(handles, latent, seed):
    return AVGenSampler().sample(handles.model, random_conditioning(handles.model), latent, seed=seed,
                                 **SAMPLER)["result"][0]


def test_the_next_clip_starts_from_the_end_of_the_previous_one(ltx23):
    clip = sample(ltx23, AVGenEmptyAVLatent().make(ltx23.model, W, H, FRAMES, 0.0, FPS, 1)["result"][0], seed=1)
    nxt = AVGenExtend().extend(clip, ltx23.video_vae, 0.5, 9)["result"][0]
    assert (nxt.pixel_frames, nxt.fps, nxt.width, nxt.height) == (9 + 16, FPS, W, H)  # 0.5 s = 12 -> 16 frames
    assert nxt.video.shape[2] == 4 and not nxt.has_video
    kept = round(9 / FPS * AUDIO_LATENTS_PER_SECOND)
    start = round((FRAMES - 9) / FPS * AUDIO_LATENTS_PER_SECOND)  # the overlap starts 8 frames = 8.33 latents in
    assert (kept, start) == (9, 8)
    assert torch.equal(nxt.audio[:, :, :kept], clip.audio[:, :, start:start + kept])
    (key,) = nxt.conditionings
    assert key.latent_idx == 0 and key.latent.shape[2] == 2 and key.source.frames.shape == (9, H, W, 3)
    out = sample(ltx23, nxt, seed=2)
    assert torch.equal(out.video[:, :, :2], key.latent)  # the overlap's picture is pinned
    assert torch.equal(out.audio[:, :, :kept], clip.audio[:, :, start:start + kept])  # its sound is kept exactly
    assert not torch.equal(out.audio[:, :, kept:], nxt.audio[:, :, kept:])


def test_backward_the_new_clip_ends_with_the_start_of_the_given_one(ltx23):
    clip = sample(ltx23, AVGenEmptyAVLatent().make(ltx23.model, W, H, FRAMES, 0.0, FPS, 1)["result"][0], seed=1)
    frames = torch.rand(FRAMES, H, W, 3)
    before = AVGenExtend().extend(clip, ltx23.video_vae, 0.5, 9, "backward", frames=frames)["result"][0]
    assert before.pixel_frames == 16 + 9 and before.audio.shape[2] == 26  # 25 frames = 1.04 s
    (key,) = before.conditionings
    assert isinstance(key, KeyframeConditioning) and (key.frame_idx, key.num_pixel_frames) == (16, 9)
    assert torch.equal(key.source.frames, frames[:9])  # the given clip's first 9 frames, at the new clip's end
    offset = round(16 / FPS * AUDIO_LATENTS_PER_SECOND)  # the given clip starts 16 frames = 16.67 latents in
    assert offset == 17 and torch.equal(before.audio[:, :, offset:], clip.audio[:, :, :26 - offset])
    (mask,) = before.audio_conditionings
    assert (mask.start, mask.end) == (0.0, float(audio_positions(1, offset + 1)[0, 0, -1, 0]))
    out = sample(ltx23, before, seed=2)
    assert torch.equal(out.audio[:, :, offset:], clip.audio[:, :, :26 - offset])  # the shared sound is kept
    assert not torch.equal(out.audio[:, :, :offset], before.audio[:, :, :offset])  # the rest is generated


def test_decoded_frames_given_are_not_decoded_again(ltx23):
    clip = sample(ltx23, AVGenEmptyAVLatent().make(ltx23.model, W, H, FRAMES, 0.0, FPS, 1)["result"][0], seed=1)
    frames = torch.rand(FRAMES, H, W, 3)
    (key,) = AVGenExtend().extend(clip, ltx23.video_vae, 0.5, 9, frames=frames)["result"][0].conditionings
    assert torch.equal(key.source.frames, frames[-9:])
    with pytest.raises(NodeInputError, match="connect the video decode of this latent"):
        AVGenExtend().extend(clip, ltx23.video_vae, 0.5, 9, frames=frames[:10])


def test_extend_refuses_what_it_cannot_continue(ltx23):
    empty = AVGenEmptyAVLatent().make(ltx23.model, W, H, FRAMES, 0.0, FPS, 1)["result"][0]
    with pytest.raises(NodeInputError, match="AVGenExtend: latent must be a sampled clip"):
        AVGenExtend().extend(empty, ltx23.video_vae, 1.0, 9)
    clip = sample(ltx23, empty, seed=1)
    with pytest.raises(NodeInputError, match="overlap_frames 25 is longer than the clip's 17 frames"):
        AVGenExtend().extend(clip, ltx23.video_vae, 1.0, 25)
    with pytest.raises(NodeInputError, match="overlap_frames 10 is not 8k\\+1"):
        AVGenExtend().extend(clip, ltx23.video_vae, 1.0, 10)
    with pytest.raises(NodeInputError, match="direction must be one of forward, backward, got 'up'"):
        AVGenExtend().extend(clip, ltx23.video_vae, 1.0, 9, "up")
    with pytest.raises(NodeInputError, match="overlap_frames 25 is longer than the clip's 17 frames"):
        AVGenExtend().extend(clip, ltx23.video_vae, 1.0, 25, "backward")


def _tone(start: float, seconds: float, rate: int) -> dict:
    t = start + torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    wave = torch.stack([torch.sin(2 * math.pi * 440 * t), torch.sin(2 * math.pi * 660 * t)]).float()
    return {"waveform": wave[None], "sample_rate": rate}


def test_join_continues_frames_and_sound_through_the_seam():
    rate, overlap = 24000, 9  # 1000 samples a frame: the clips start on whole samples
    first = torch.rand(17, 8, 8, 3)
    second = torch.cat([torch.rand(overlap, 8, 8, 3), torch.rand(16, 8, 8, 3)])
    a, b = _tone(0.0, 17 / FPS, rate), _tone((17 - overlap) / FPS, 25 / FPS, rate)
    frames, audio = AVGenJoin().join(first, a, second, b, FPS, overlap)
    assert frames.shape[0] == 17 + 25 - overlap
    assert torch.equal(frames[:17 - overlap], first[:-overlap]) and torch.equal(frames[17:], second[overlap:])
    w = torch.arange(1, overlap + 1).view(-1, 1, 1, 1) / (overlap + 1)  # the overlap cross-fades
    torch.testing.assert_close(frames[17 - overlap:17], first[-overlap:] * (1 - w) + second[:overlap] * w)
    whole = _tone(0.0, (17 + 25 - overlap) / FPS, rate)["waveform"]
    assert audio["waveform"].shape == whole.shape
    assert (audio["waveform"] - whole).abs().max() < 1e-3  # one continuous tone, no click at the seam
    with pytest.raises(NodeInputError, match="AVGenJoin: overlap_frames 25 must be shorter"):
        AVGenJoin().join(first, a, second, b, FPS, 25)
    with pytest.raises(NodeInputError, match="the sounds differ"):
        AVGenJoin().join(first, a, second, _tone(0.0, 1.0, 8000), FPS, overlap)


def test_join_backward_puts_the_new_clip_first():
    """AVGen Extend backward: the new clip (next_*) leads into the given one; Join lays them out in that order."""
    rate, overlap = 24000, 9
    given = torch.rand(17, 8, 8, 3)
    earlier = torch.cat([torch.rand(16, 8, 8, 3), torch.rand(overlap, 8, 8, 3)])
    a, b = _tone(0.0, 25 / FPS, rate), _tone(16 / FPS, 17 / FPS, rate)  # earlier clip from 0, the given one at 16
    frames, audio = AVGenJoin().join(given, b, earlier, a, FPS, overlap, "backward")
    forward = AVGenJoin().join(earlier, a, given, b, FPS, overlap, "forward")
    assert torch.equal(frames, forward[0]) and torch.equal(audio["waveform"], forward[1]["waveform"])
    assert frames.shape[0] == 25 + 17 - overlap and torch.equal(frames[:16], earlier[:16])
    assert (audio["waveform"] - _tone(0.0, 33 / FPS, rate)["waveform"]).abs().max() < 1e-3
    with pytest.raises(NodeInputError, match="direction must be one of forward, backward"):
        AVGenJoin().join(given, b, earlier, a, FPS, overlap, "sideways")


@pytest.mark.skipif(not builtin.available(), reason="AVGen-Tiny weights not exported yet")
def test_extend_workflow_on_avgen_tiny_makes_one_longer_clip(tmp_path, capsys):
    """17 frames, continued from their last 9 by 24 more: 41 frames with sound for all of them."""
    mp4 = run_builtin_workflow("avgen_extend", tmp_path, capsys, "Sampler.steps=6", "Next.steps=6")
    with av.open(str(mp4)) as container:
        video, sound = container.streams.video[0], container.streams.audio[0]
        assert sum(1 for _ in container.decode(video)) == 41
        container.seek(0)
        samples = sum(frame.samples for frame in container.decode(sound))
    assert abs(samples / sound.rate - 41 / FPS) < 0.05
