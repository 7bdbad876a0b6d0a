"""The benchmark's measures, validated on ground-truth rendered clips (train and held-out specs)."""
import json
import math

import numpy as np
import pytest

from comfyui_avgen.tiny import builtin
from comfyui_avgen.tiny.benchmark import format_table, main, parse_args, score_clip, summarize
from comfyui_avgen.tiny.camera_motion import camera_label, global_motion
from comfyui_avgen.tiny.dataset import render_clip, sample_spec
from comfyui_avgen.tiny.metrics import (audio_onsets, classify_colour, classify_shape, event_frames, keyframe_psnr,
                                        match_events, motion_direction, psnr, sync_offset_ms)

SPECS = [sample_spec(seed, split) for split in ("train", "heldout") for seed in range(20)]


@pytest.fixture(scope="module")
def clips():
    return [render_clip(spec, 64, 64) for spec in SPECS]


def _rate(pairs):
    return float(np.mean([found == wanted for found, wanted in pairs]))


def test_colour_and_shape_classifier(clips):
    assert _rate((classify_colour(c.frames)[0], c.spec.colour) for c in clips) >= 0.95
    assert _rate((classify_shape(c.frames)[0], c.spec.shape) for c in clips) >= 0.95


def _blur(frames, passes=3):
    """A soft, VAE-like blur: repeated [1, 2, 1] / 4 filtering in space."""
    for _ in range(passes):
        for axis in (1, 2):
            padded = np.concatenate([np.take(frames, [0], axis), frames, np.take(frames, [-1], axis)], axis)
            n = frames.shape[axis]
            frames = (np.take(padded, range(n), axis) + 2 * frames + np.take(padded, range(2, n + 2), axis)) / 4
    return frames


def test_classifier_tolerates_blur(clips):
    blurred = [(_blur(c.frames), c) for c in clips[::2]]
    assert _rate((classify_colour(f)[0], c.spec.colour) for f, c in blurred) >= 0.9
    assert _rate((motion_direction(f), c.spec.motion) for f, c in blurred) >= 0.9


def test_no_shape_means_none():
    clip = render_clip(sample_spec(0), 64, 64)
    background = clip.frames[~clip.visible]
    assert classify_colour(background) == ("none", 0.0) and classify_shape(background) == ("none", 0.0)
    assert motion_direction(background) == "none" and event_frames(background) == []


def test_motion_direction(clips):
    assert _rate((motion_direction(c.frames), c.spec.motion) for c in clips) >= 0.95


def test_video_events_match_the_rendered_events(clips):
    matched = 0
    for clip in clips:
        found = event_frames(clip.frames)
        last = len(clip.frames) - 1
        # Every event not in the last frame (a turn needs frames after it) is found within 0.1 frame.
        for index, kind, *_ in clip.events:
            if index < last:
                assert any(k == kind and abs(i - index) < 0.1 for i, k in found), (clip.caption, clip.events, found)
                matched += 1
        assert len(found) <= len(clip.events)
    assert matched >= len(clips)


def test_audio_onsets_match_the_events(clips):
    for clip in clips:
        onsets = audio_onsets(clip.audio, clip.sample_rate)
        wanted = [index / clip.fps for index, *_ in clip.events]
        assert len(onsets) == len(wanted), (clip.caption, onsets, wanted)
        assert max(abs(a - b) for a, b in zip(onsets, wanted)) < 0.005


def test_ground_truth_sync_offset_is_zero(clips):
    offsets = []
    for clip in clips:
        video = [index / clip.fps for index, _ in event_frames(clip.frames)]
        offset = sync_offset_ms(video, audio_onsets(clip.audio, clip.sample_rate))
        if not math.isnan(offset):
            offsets.append(abs(offset))
    assert len(offsets) >= 0.9 * len(clips) and np.median(offsets) < 10.0 and max(offsets) < 10.0


def test_sync_offset_measures_a_shift():
    clip = render_clip(sample_spec(4), 64, 64)
    shift = round(0.04 * clip.sample_rate)
    late = np.concatenate([np.zeros((2, shift), np.float32), clip.audio[:, :-shift]], axis=1)
    video = [index / clip.fps for index, _ in event_frames(clip.frames)]
    assert abs(sync_offset_ms(video, audio_onsets(late, clip.sample_rate)) - 40.0) < 5.0
    assert math.isnan(sync_offset_ms([0.1], [0.9])) and match_events([0.1, 0.5], [0.52]) == [(0.5, 0.52)]


def test_camera_motion():
    specs = [s for s in (sample_spec(seed) for seed in range(80)) if s.camera != "static"][:14]
    specs += [s for s in (sample_spec(seed) for seed in range(20)) if s.camera == "static"][:4]
    correct = 0
    for spec in specs:
        clip = render_clip(spec, 64, 64)
        correct += camera_label(global_motion(clip.frames), 64, 64) == spec.camera
    assert correct >= 0.95 * len(specs)


def test_global_motion_recovers_a_pan_speed():
    spec = next(s for s in map(sample_spec, range(100)) if s.camera == "pan_right")
    motion = global_motion(render_clip(spec, 64, 64).frames)
    # pan right: the content moves left by speed (canvas / s) * 64 px / 24 fps each frame.
    np.testing.assert_allclose(np.median(motion[:, 0]), -spec.camera_speed * 64 / 24, rtol=0.05)
    assert abs(np.median(motion[:, 1])) < 0.02 and abs(np.median(motion[:, 2]) - 1) < 1e-3


def test_psnr():
    image = np.random.default_rng(0).random((8, 8, 3))
    assert psnr(image, image) == math.inf
    assert abs(psnr(image, np.clip(image + 0.1, None, None)) - 20.0) < 1e-9
    frames = np.stack([image, image * 0])
    assert keyframe_psnr(frames, image, 0) == math.inf
    with pytest.raises(ValueError, match="outside"):
        keyframe_psnr(frames, image, 2)
    with pytest.raises(ValueError, match="shape"):
        keyframe_psnr(frames, image[:4], 0)


def test_benchmark_scoring_on_ground_truth(clips):
    scores = [score_clip(c.spec, c.frames, c.audio, c.sample_rate, c.fps) for c in clips[20:28]]  # held-out ones
    summary = summarize(scores, 24.0)
    assert summary["colour_adherence_pct"] == 100.0 and summary["shape_adherence_pct"] >= 95.0
    assert summary["motion_accuracy_pct"] >= 95.0 and summary["camera_adherence_pct"] >= 95.0
    assert summary["median_abs_sync_ms"] < 10.0
    table = format_table([("model", summary), ("ground truth", summary)])
    assert "colour adherence" in table and "sync offset" in table
    args = parse_args(["--prompts", "2", "--steps", "3", "--keyframe-prompts", "0"])
    assert (args.prompts, args.steps, args.keyframe_prompts) == (2, 3, 0)


def test_benchmark_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        main(["--checkpoint", str(tmp_path / "none.safetensors"), "--prompts", "1"])


@pytest.mark.skipif(not builtin.available(), reason="the AVGen-Tiny weights are not exported in this checkout")
def test_benchmark_runs_on_the_builtin_model(tmp_path, capsys):
    report = tmp_path / "report.json"
    assert main(["--prompts", "1", "--steps", "2", "--width", "64", "--height", "64", "--frames", "9",
                 "--keyframe-prompts", "1", "--no-round-trip", "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert "colour adherence" in out and "keyframe PSNR" in out
    result = json.loads(report.read_text())
    assert result["model"]["clips"] == 1 and len(result["clips"]) == 1 and "ground truth" in result


def test_onsets_survive_the_tiny_models_mel_and_griffin_lim():
    """The sync measure through AVGen-Tiny's audio path (log-mel front end -> Griffin-Lim) stays well under a frame."""
    import torch

    from comfyui_avgen.models.audio.audio_vae import build_audio_vae
    from comfyui_avgen.models.audio.preprocess import waveform_to_log_mel
    from comfyui_avgen.models.audio.vocoder import build_vocoder
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.tiny.config import checkpoint_config

    config = checkpoint_config()
    front_end = build_on_meta(lambda: build_audio_vae(config, parts=("decoder",))).cfg.front_end
    vocoder = build_vocoder(config)
    offsets = []
    for seed in range(6):
        clip = render_clip(sample_spec(seed, "heldout"))
        with torch.no_grad():
            audio = vocoder(waveform_to_log_mel(torch.from_numpy(clip.audio)[None], clip.sample_rate, front_end))[0]
        onsets = audio_onsets(audio.numpy(), vocoder.sample_rate)
        offsets.append(sync_offset_ms([index / clip.fps for index, *_ in clip.events], onsets))
    assert np.median(np.abs(offsets)) < 10.0 and np.max(np.abs(offsets)) < 20.0
