"""AVGen Retake on the tiny golden checkpoints: outside the span the sampled latents equal the input exactly (video
and audio), inside they are new; one stream can be kept whole; soft edges ramp the mask inside the span only;
bad spans are named errors."""
from __future__ import annotations

import pytest
import torch
from latent_handles import (  # noqa: F401 (fixtures: one_torch_thread (autouse), ltx23)
    ltx23,
    one_torch_thread, random_conditioning,
)

from comfyui_avgen.models.sampling import AudioGrid, TemporalRegionMask, VideoGrid, audio_state, video_state
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent
from comfyui_avgen.nodes.retake import AVGenRetake
from comfyui_avgen.nodes.sampler import AVGenSampler

W, H, FRAMES, FPS = 64, 64, 33, 24.0  # 5 latent frames: 1 + 4 x 8 pixel frames, 1.375 s
SAMPLER = dict(steps=3, schedule="dev", denoise=1.0, video_cfg=1.0, audio_cfg=1.0, video_stg=0.0, audio_stg=0.0,
               stg_blocks="none", video_modality=1.0, audio_modality=1.0, video_rescale=0.0, audio_rescale=0.0,
               batched_passes=False)


def sampled(handles, seed=1):
    latent = AVGenEmptyAVLatent().make(handles.model, W, H, FRAMES, 0.0, FPS, 1)["result"][0]
    return AVGenSampler().sample(handles.model, random_conditioning(handles.model), latent, seed=seed,
                                 **SAMPLER)["result"][0]


def retake(latent, start=0.4, end=0.8, unit="seconds", regenerate="video and audio", soft_edge=0.0):
    return AVGenRetake().retake(latent, start, end, unit, regenerate, soft_edge)["result"][0]


def resample(handles, latent, seed=2):
    return AVGenSampler().sample(handles.model, random_conditioning(handles.model, seed=5), latent, seed=seed,
                                 **SAMPLER)["result"][0]


def inside_frames(latent_frames: int, start: float, end: float, fps: float) -> torch.Tensor:
    """Which latent frames' time bounds overlap [start, end) (frame 0 covers pixel frame 0, frame k 8k-7..8k)."""
    first = torch.tensor([0.0] + [8 * k - 7 for k in range(1, latent_frames)]) / fps
    last = torch.tensor([1.0] + [8 * k + 1 for k in range(1, latent_frames)]) / fps
    return (last > start) & (first < end)


def test_outside_the_span_everything_is_kept_exactly(ltx23):
    clip = sampled(ltx23)
    out = resample(ltx23, retake(clip))
    inside = inside_frames(clip.video.shape[2], 0.4, 0.8, FPS)
    assert inside.any() and not inside.all()
    assert torch.equal(out.video[:, :, ~inside], clip.video[:, :, ~inside])
    assert not torch.allclose(out.video[:, :, inside], clip.video[:, :, inside])
    state = audio_state(AudioGrid(1, *clip.audio.shape[1:]), clip.audio)
    bounds = state.positions[0, 0]
    audio_inside = (bounds[:, 1] > 0.4) & (bounds[:, 0] < 0.8)
    assert torch.equal(out.audio[:, :, ~audio_inside], clip.audio[:, :, ~audio_inside])
    assert not torch.allclose(out.audio[:, :, audio_inside], clip.audio[:, :, audio_inside])


def test_one_stream_is_kept_whole(ltx23):
    clip = sampled(ltx23)
    video_only = resample(ltx23, retake(clip, 8, 24, unit="frames", regenerate="video"))
    assert torch.equal(video_only.audio, clip.audio) and not torch.equal(video_only.video, clip.video)
    audio_only = resample(ltx23, retake(clip, regenerate="audio"))
    assert torch.equal(audio_only.video, clip.video) and not torch.equal(audio_only.audio, clip.audio)


def test_soft_edge_ramps_inside_the_span_only():
    grid = VideoGrid(1, 4, 9, 1, 1, fps=8.0)  # latent frame k >= 1 covers [8k-7, 8k+1) / 8 s
    state = video_state(grid)
    hard = TemporalRegionMask(2.0, 7.0).apply_to(state).denoise_mask[0, :, 0]
    soft = TemporalRegionMask(2.0, 7.0, ramp=2.0).apply_to(state).denoise_mask[0, :, 0]
    assert torch.equal(hard == 0, soft == 0)  # the same tokens are kept exactly
    assert hard[hard > 0].eq(1).all() and 0 < soft[soft > 0].min() < 1 and soft.max() == 1
    centres = state.positions[0, 0].mean(-1)
    ramped = (soft > 0) & (soft < 1)
    assert (torch.minimum(centres[ramped] - 2.0, 7.0 - centres[ramped]) < 2.0).all()


@pytest.mark.parametrize("changes, words", [
    (dict(start=1.0, end=0.5), "end 0.5 must be after start 1"),
    (dict(start=0.5, end=3.0), "runs past the clip's end: it has 1.375 s"),
    (dict(start=0, end=40, unit="frames"), "it has 33 frames"),
    (dict(start=0.5, end=1.5, unit="frames"), "whole frame numbers"),
    (dict(regenerate="both"), "regenerate"),
])
def test_bad_spans_are_named(ltx23, changes, words):
    with pytest.raises(NodeInputError, match="AVGenRetake.*" + words):
        retake(sampled(ltx23), **changes)


def test_an_empty_or_kept_stream_cannot_be_retaken(ltx23):
    empty = AVGenEmptyAVLatent().make(ltx23.model, W, H, FRAMES, 0.0, FPS, 1)["result"][0]
    with pytest.raises(NodeInputError, match="video is empty"):
        retake(empty)
    with pytest.raises(NodeInputError, match="keeps its audio exactly"):
        retake(retake(sampled(ltx23), regenerate="video"), regenerate="audio")
