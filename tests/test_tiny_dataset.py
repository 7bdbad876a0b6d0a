"""The "shapes & sounds" dataset: determinism, layout, captions, the held-out split, events and their sounds."""
import time
from itertools import combinations

import numpy as np
import pytest

from comfyui_avgen.tiny.dataset import (CAMERAS, COLOURS, HELDOUT_COMBINATIONS, MOTIONS, NOMINAL_FPS, SHAPES,
                                        TRAIN_COMBINATIONS, VOCABULARY, caption_words, render_clip, sample_spec)
from comfyui_avgen.tiny.metrics import foreground_masks


def test_same_seed_same_clip_and_different_seeds_differ():
    a, b = render_clip(sample_spec(7)), render_clip(sample_spec(7))
    assert a.spec == b.spec and a.caption == b.caption and a.events == b.events
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.audio, b.audio)
    c = render_clip(sample_spec(8))
    assert c.spec != a.spec and not np.array_equal(c.frames, a.frames)


@pytest.mark.parametrize("width,height,frames,fps,rate", [(128, 128, 17, 24.0, 16000), (96, 64, 25, 30.0, 24000)])
def test_layout(width, height, frames, fps, rate):
    clip = render_clip(sample_spec(3, "heldout"), width, height, frames, fps, rate)
    assert clip.frames.shape == (frames, height, width, 3) and clip.frames.dtype == np.float32
    assert 0.0 <= clip.frames.min() and clip.frames.max() <= 1.0
    assert clip.audio.shape == (2, round(frames / fps * rate)) and clip.audio.dtype == np.float32
    assert np.abs(clip.audio).max() <= 1.0
    assert clip.centres.shape == (frames, 2) and clip.visible.shape == (frames,)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        sample_spec(0, "test")
    with pytest.raises(ValueError, match="width"):
        render_clip(sample_spec(0), width=8)


def test_fast_enough():
    specs = [sample_spec(s) for s in range(10)]
    render_clip(specs[0])
    started = time.perf_counter()
    for spec in specs:
        render_clip(spec)
    assert (time.perf_counter() - started) / len(specs) < 0.15  # ~20 ms alone; leaves room for a busy machine


def test_captions_use_the_vocabulary_and_name_the_parameters():
    specs = [sample_spec(s, split) for s in range(300) for split in ("train", "heldout")]
    assert {s.camera for s in specs} == set(CAMERAS)
    for spec in specs:
        words = caption_words(spec.caption)
        assert set(words) <= set(VOCABULARY), spec.caption
        assert spec.colour in words and spec.shape in words
        assert ("bounces" in words) if spec.motion == "bounce" else (spec.motion in words)
        assert ("camera" in words) == (spec.camera != "static")


def test_heldout_split():
    assert 0.15 <= len(HELDOUT_COMBINATIONS) / (len(SHAPES) * len(COLOURS) * len(MOTIONS)) <= 0.2
    assert not set(HELDOUT_COMBINATIONS) & set(TRAIN_COMBINATIONS)
    train = {(s.shape, s.colour, s.motion) for s in map(sample_spec, range(2000))}
    heldout = {(s.shape, s.colour, s.motion) for s in (sample_spec(i, "heldout") for i in range(300))}
    assert train == set(TRAIN_COMBINATIONS) and heldout == set(HELDOUT_COMBINATIONS)
    # Every pair of attribute values of a held-out combination was seen in training.
    for combo in HELDOUT_COMBINATIONS:
        for i, j in combinations(range(3), 2):
            assert any(t[i] == combo[i] and t[j] == combo[j] for t in TRAIN_COMBINATIONS), combo


def test_events_appearances_and_wall_hits():
    kinds = set()
    for seed in range(60):
        clip = render_clip(sample_spec(seed), 64, 64)
        spec = clip.spec
        assert clip.events, spec.caption  # every clip has something to hear
        for index, kind, shape, colour in clip.events:
            kinds.add(kind)
            assert (shape, colour) == (spec.shape, spec.colour)
            assert index == round(index)  # at 24 fps every event is on a frame
            if kind == "appear":
                assert spec.motion != "bounce" and not clip.visible[int(index) - 1] and clip.visible[int(index)]
            else:
                # A wall hit: the centre turns around on one axis at that frame.
                k = int(index)
                if 0 < k < len(clip.centres) - 1:
                    step_in, step_out = clip.centres[k] - clip.centres[k - 1], clip.centres[k + 1] - clip.centres[k]
                    assert np.any(step_in * step_out < 0)
    assert kinds == {"appear", "bounce"}


def test_sounds_start_at_the_events_and_pan_with_the_shape():
    for seed in range(20):
        clip = render_clip(sample_spec(seed))
        for index, *_ in clip.events:
            start = round(index / clip.fps * clip.sample_rate)
            before = np.abs(clip.audio[:, max(start - 80, 0):start]).max()
            after = np.abs(clip.audio[:, start:start + 80]).max()
            assert after > 20 * before or before > 0.05, (seed, index)  # silent just before unless still ringing
        x = clip.centres[int(clip.events[0][0]), 0] / 128
        start = round(clip.events[0][0] / clip.fps * clip.sample_rate)
        left, right = np.abs(clip.audio[:, start:start + 800]).max(1)
        if abs(x - 0.5) > 0.15:
            assert (left > right) == (x < 0.5)


def test_backgrounds_never_look_like_a_shape():
    """Frames without the shape have no foreground pixels, whatever the texture and camera."""
    checked = 0
    for seed in range(80):
        clip = render_clip(sample_spec(seed), 64, 64)
        hidden = ~clip.visible
        if hidden.any():
            assert not foreground_masks(clip.frames[hidden]).any(), clip.caption
            checked += 1
    assert checked > 40


def test_shapes_stay_inside_the_canvas():
    for seed in range(40):
        spec = sample_spec(seed)
        clip = render_clip(spec, 64, 64, frames=25)
        reach = 1.15 * spec.radius * 64
        assert (clip.centres >= reach - 1e-6).all() and (clip.centres <= 64 - reach + 1e-6).all()
    assert NOMINAL_FPS == 24.0
