"""Unit tests of models/sampling: schedules, defaults, guidance math, state/conditioning, and the sampler loop
driven by a fake DiT that records its calls."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from golden import compare, discover_cases
from parity.sampling_cases import run_sampler, sampler_streams

from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.positions import guide_positions, video_positions
from comfyui_avgen.models.sampling.conditioning import KeyframeConditioning, LatentIndexConditioning, apply_conditionings
from comfyui_avgen.models.sampling.defaults import defaults_for_checkpoint_metadata, defaults_for_model_version
from comfyui_avgen.models.sampling.denoise import GuidedDenoiser, StreamGuidance
from comfyui_avgen.models.sampling.guidance import GuiderParams, combine_guidance
from comfyui_avgen.models.sampling.sampler import SamplerStream, check_sigmas, sample
from comfyui_avgen.models.sampling.schedules import (
    distilled_sigmas, ltx2_sigmas, shift_for_tokens, stage2_distilled_sigmas, video_token_count,
)
from comfyui_avgen.models.transformer.model import load_transformer
from comfyui_avgen.models.sampling.state import (
    AudioGrid, VideoGrid, add_noise, audio_state, draw_noise, frozen, patchify_audio, patchify_video,
    target_latent, unpatchify_audio, unpatchify_video, video_state,
)

# ---------------------------------------------------------------- schedules


def test_shift_line_through_anchors():
    assert shift_for_tokens(1024) == pytest.approx(0.95)
    assert shift_for_tokens(4096) == pytest.approx(2.05)


@pytest.mark.parametrize("steps,tokens", [(4, 4096), (30, 4096), (12, 24576), (8, 1024)])
def test_ltx2_sigmas_shape_order_and_terminal(steps, tokens):
    sigmas = ltx2_sigmas(steps, tokens)
    assert sigmas.dtype == torch.float32 and sigmas.shape == (steps + 1,)
    assert sigmas[-1] == 0 and sigmas[0] == pytest.approx(1.0, abs=1e-6)
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    assert sigmas[-2].item() == pytest.approx(0.1, abs=1e-6)  # stretched so the last non-zero sigma = terminal


def test_ltx2_sigmas_without_stretch_by_hand():
    sigmas = ltx2_sigmas(2, tokens=1024, stretch=False)  # grid [1, 0.5, 0], mu = 0.95
    e = math.exp(0.95)
    assert sigmas.tolist() == pytest.approx([1.0, e / (e + 1.0), 0.0], abs=1e-7)


def test_more_tokens_shift_sigmas_up():
    assert bool((ltx2_sigmas(10, 24576)[1:-2] > ltx2_sigmas(10, 1024)[1:-2]).all())


def test_ltx2_sigmas_rejects_bad_steps():
    with pytest.raises(ValueError, match="steps"):
        ltx2_sigmas(0)


def test_distilled_lists():
    assert distilled_sigmas().shape == (9,) and stage2_distilled_sigmas().shape == (4,)
    assert stage2_distilled_sigmas()[0].item() == pytest.approx(0.909375)
    assert distilled_sigmas()[-4:].tolist() == stage2_distilled_sigmas().tolist()
    assert video_token_count((1, 128, 16, 16, 24)) == 6144


# ---------------------------------------------------------------- defaults


def test_defaults_per_model_version():
    ltx2, ltx23 = defaults_for_model_version(None), defaults_for_checkpoint_metadata({"model_version": "2.3.0"})
    assert (ltx2.num_inference_steps, ltx2.video_guider.stg_blocks) == (40, (29,))
    assert (ltx23.num_inference_steps, ltx23.audio_guider.stg_blocks) == (30, (28,))
    assert (ltx23.video_guider.cfg_scale, ltx23.audio_guider.cfg_scale) == (3.0, 7.0)
    assert ltx23.sigmas().shape == (31,) and (ltx23.stage_2_height, ltx23.stage_2_width) == (1024, 1536)
    assert defaults_for_model_version((2, 3)) is ltx23
    with pytest.raises(ValueError, match="not supported"):
        defaults_for_model_version("2.6.0")


# ---------------------------------------------------------------- guidance


def test_guider_params_flags_and_skips():
    p = GuiderParams(cfg_scale=3.0, stg_scale=0.0, modality_scale=1.0, skip_step=1)
    assert (p.uses_negative, p.uses_perturbed, p.uses_isolated) == (True, False, False)
    assert [p.skips(i) for i in range(5)] == [False, True, False, True, False]
    assert not any(GuiderParams(skip_step=0).skips(i) for i in range(4))
    assert GuiderParams.from_dict({"stg_blocks": [3]}).stg_blocks == (3,)
    with pytest.raises(ValueError, match="unknown guider"):
        GuiderParams.from_dict({"cfg": 2.0})
    with pytest.raises(ValueError, match="skip_step"):
        GuiderParams(skip_step=-1)


def test_combine_guidance_by_hand():
    g = torch.Generator().manual_seed(0)
    c, u, p, m = (torch.randn(2, 5, 3, generator=g) for _ in range(4))
    params = GuiderParams(cfg_scale=3.0, stg_scale=0.5, modality_scale=2.0)
    want = c + 2.0 * (c - u) + 0.5 * (c - p) + 1.0 * (c - m)
    torch.testing.assert_close(combine_guidance(params, c, u, p, m), want)

    rescaled = combine_guidance(GuiderParams(cfg_scale=3.0, rescale_scale=0.7), c, u)
    plain = c.double() + 2.0 * (c.double() - u.double())
    n = plain.numel()
    std = lambda x: math.sqrt(((x - x.mean()) ** 2).sum().item() / (n - 1))  # noqa: E731  unbiased
    factor = 0.7 * std(c.double()) / std(plain) + 0.3
    torch.testing.assert_close(rescaled.double(), plain * factor, rtol=1e-5, atol=1e-6)


def test_combine_guidance_positive_only_is_identity_and_missing_pass_raises():
    c = torch.randn(1, 4, 2)
    assert torch.equal(combine_guidance(GuiderParams(), c), c)
    with pytest.raises(ValueError, match="cfg guidance is on"):
        combine_guidance(GuiderParams(cfg_scale=2.0), c)


# ---------------------------------------------------------------- state and conditioning

GRID = VideoGrid(batch=1, channels=4, frames=3, height=2, width=3, fps=24.0)


def test_patchify_roundtrip_and_token_order():
    x = torch.randn(2, 4, 3, 2, 3)
    tokens = patchify_video(x)
    assert tokens.shape == (2, 18, 4)
    torch.testing.assert_close(tokens[:, 1 * 6 + 1 * 3 + 2], x[:, :, 1, 1, 2])  # frame-major, row, column
    grid = VideoGrid(2, 4, 3, 2, 3, 24.0)
    assert torch.equal(unpatchify_video(tokens, grid), x)
    a = torch.randn(2, 8, 5, 16)
    at = patchify_audio(a)
    torch.testing.assert_close(at[:, 3, 2 * 16 + 7], a[:, 2, 3, 7])  # feature index c * 16 + f
    assert torch.equal(unpatchify_audio(at, AudioGrid(2, 8, 5)), a)


def test_initial_state_and_lerp_noising():
    state = video_state(GRID, torch.randn(GRID.shape))
    assert torch.equal(state.positions, video_positions(1, 3, 2, 3, 24.0))
    noise = torch.randn(state.latent.shape)
    assert torch.equal(add_noise(state, noise, 1.0).latent, noise)  # mask 1, scale 1: pure noise
    assert torch.equal(add_noise(frozen(state), noise, 1.0).latent, state.clean)  # mask 0 keeps clean exactly
    half = add_noise(state, noise, 0.25).latent
    torch.testing.assert_close(half, state.latent + 0.25 * (noise - state.latent))
    with pytest.raises(ValueError, match="token layout"):
        add_noise(state, torch.randn(1, 5, 4), 1.0)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(draw_noise(state, g1), draw_noise(state, g2))


def test_latent_index_conditioning_mask():
    image = torch.randn(1, 4, 1, 2, 3)
    state = LatentIndexConditioning(image, strength=0.8, latent_idx=1).apply_to(video_state(GRID))
    mask = state.denoise_mask.flatten()
    assert torch.allclose(mask[6:12], torch.full((6,), 0.2)) and bool((mask[:6] == 1).all())
    assert bool((mask[12:] == 1).all())
    assert torch.equal(state.clean[:, 6:12], patchify_video(image)) and torch.equal(state.latent[:, 6:12],
                                                                                    patchify_video(image))
    with pytest.raises(ValueError, match="do not fit"):
        LatentIndexConditioning(image, latent_idx=3).apply_to(video_state(GRID))
    with pytest.raises(ValueError, match="expected"):
        LatentIndexConditioning(torch.randn(1, 4, 1, 4, 3)).apply_to(video_state(GRID))


def test_keyframe_conditioning_appends_guide_tokens():
    key = torch.randn(1, 4, 1, 2, 3)
    state = KeyframeConditioning(key, frame_idx=16, strength=0.9).apply_to(video_state(GRID))
    assert state.num_tokens == 24 and state.num_target_tokens == 18
    assert torch.equal(state.latent[:, 18:], torch.zeros(1, 6, 4))
    assert torch.equal(state.clean[:, 18:], patchify_video(key))
    assert torch.allclose(state.denoise_mask[:, 18:], torch.full((1, 6, 1), 0.1))
    assert torch.equal(state.positions[:, :, 18:], guide_positions(1, 1, 2, 3, 24.0, 16))
    assert state.attention_mask is None
    assert target_latent(state).shape == GRID.shape


def test_keyframe_attention_strength_mask_blocks():
    key = torch.randn(1, 4, 1, 2, 3)
    state = apply_conditionings(video_state(GRID), [
        KeyframeConditioning(key, 8, attention_strength=0.5),
        KeyframeConditioning(key, 16),
    ])
    m = state.attention_mask[0]
    assert m.shape == (30, 30)
    assert bool((m[:18, :18] == 1).all()) and bool((m[18:24, 18:24] == 1).all()) and bool((m[24:, 24:] == 1).all())
    assert bool((m[:18, 18:24] == 0.5).all()) and bool((m[18:24, :18] == 0.5).all())
    assert bool((m[:18, 24:] == 1).all())  # second guide: no strength given -> full attention to the target
    assert bool((m[18:24, 24:] == 0).all()) and bool((m[24:, 18:24] == 0).all())  # guides never see each other


# ---------------------------------------------------------------- sampler with a fake DiT


class FakeDiT:
    """Velocity = 0.5 * latent + mean(context) + 0.1 * (number of perturbation entries), per sample."""

    def __init__(self, num_layers: int = 2):
        self.config = SimpleNamespace(num_layers=num_layers)
        self.calls = []

    def _velocity(self, stream, perturbations):
        if not stream.enabled:
            return None
        batch = stream.latent.shape[0]
        extra = torch.tensor([0.1 * len(p) for p in perturbations] if perturbations else [0.0] * batch)
        return 0.5 * stream.latent + stream.context.mean(dim=(1, 2)).view(-1, 1, 1) + extra.view(-1, 1, 1)

    def __call__(self, video, audio, perturbations=None):
        self.calls.append(SimpleNamespace(video=video, audio=audio, perturbations=perturbations))
        return self._velocity(video, perturbations), self._velocity(audio, perturbations)


def _streams(video_guider=GuiderParams(), audio_guider=GuiderParams(), audio_frozen=False):
    g = torch.Generator().manual_seed(3)
    v_state = video_state(GRID)
    a_state = audio_state(AudioGrid(1, 1, 5), torch.randn(1, 1, 5, 16, generator=g))
    ctx = lambda: torch.randn(1, 7, 6, generator=g)  # noqa: E731
    return (
        SamplerStream(v_state, StreamGuidance(ctx(), ctx(), video_guider)),
        SamplerStream(a_state, StreamGuidance(ctx(), ctx(), audio_guider, frozen=audio_frozen),
                      noise_scale=0.0 if audio_frozen else 1.0),
    )


FULL = GuiderParams(cfg_scale=3.0, stg_scale=1.0, stg_blocks=(1,), rescale_scale=0.7, modality_scale=3.0)


def test_passes_contexts_and_perturbations():
    video, audio = _streams(FULL, GuiderParams(cfg_scale=2.0))
    model = FakeDiT()
    sample(model, video, audio, torch.tensor([1.0, 0.0]), generator=torch.Generator().manual_seed(0))
    assert len(model.calls) == 4  # cond, uncond, ptb, mod
    cond, uncond, ptb, mod = model.calls
    assert cond.perturbations is None and uncond.perturbations is None
    assert torch.equal(uncond.video.context, video.guidance.negative_context)
    assert torch.equal(uncond.audio.context, audio.guidance.negative_context)  # negatives of BOTH streams
    assert torch.equal(ptb.audio.context, audio.guidance.context)
    assert ptb.perturbations == [[{"type": "skip_video_self_attn", "blocks": [1]}]]
    assert {e["type"] for e in mod.perturbations[0]} == {"skip_a2v_cross_attn", "skip_v2a_cross_attn"}


def test_batched_passes_match_sequential():
    video, audio = _streams(FULL, FULL)
    runs = [sample(FakeDiT(), video, audio, ltx2_sigmas(3), generator=torch.Generator().manual_seed(1),
                   batched_passes=batched) for batched in (False, True)]
    torch.testing.assert_close(runs[0].video_latent, runs[1].video_latent)
    torch.testing.assert_close(runs[0].audio_latent, runs[1].audio_latent)


def test_skip_step_disables_one_stream_and_frozen_stream_sigma_zero():
    video, audio = _streams(GuiderParams(cfg_scale=3.0, skip_step=1), GuiderParams(), audio_frozen=True)
    model, seen = FakeDiT(), []
    result = sample(model, video, audio, ltx2_sigmas(3), generator=torch.Generator().manual_seed(0),
                    callback=seen.append)
    assert [c.video.enabled for c in model.calls] == [True, True, False, False, True, True]
    assert all(c.audio.enabled for c in model.calls)
    assert all(bool((c.audio.sigma == 0).all()) and bool((c.audio.timesteps == 0).all()) for c in model.calls)
    assert torch.equal(seen[1].video_x0, seen[0].video_x0)  # skipped step reuses x0 (mask 1: blend is a no-op)
    assert not torch.equal(seen[2].video_x0, seen[1].video_x0)
    assert [s.step for s in seen] == [0, 1, 2] and seen[0].total == 3
    assert torch.equal(result.audio_latent, audio.state.clean.view(1, 5, 1, 16).permute(0, 2, 1, 3))


def test_last_step_lands_on_blended_x0_and_callback_can_abort():
    video, audio = _streams()
    key = torch.randn(1, 4, 1, 2, 3)
    video.state = LatentIndexConditioning(key, 1.0, 0).apply_to(video.state)
    seen = []
    result = sample(FakeDiT(), video, audio, torch.tensor([0.6, 0.0]), generator=torch.Generator().manual_seed(2),
                    callback=seen.append)
    torch.testing.assert_close(result.video_state.latent, seen[0].video_x0)  # sigma_next = 0 -> x = x0
    torch.testing.assert_close(result.video_latent[:, :, :1], key)  # strength-1 frame stays clean

    def abort(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sample(FakeDiT(), video, audio, ltx2_sigmas(4), generator=torch.Generator(), callback=abort)


def test_bad_settings_are_named():
    video, audio = _streams()
    with pytest.raises(ValueError, match="no negative context"):
        GuidedDenoiser(FakeDiT(), StreamGuidance(video.guidance.context, None, GuiderParams(cfg_scale=2.0)),
                       audio.guidance)
    with pytest.raises(ValueError, match="STG blocks"):
        GuidedDenoiser(FakeDiT(num_layers=2), StreamGuidance(video.guidance.context, None,
                                                             GuiderParams(stg_scale=1.0, stg_blocks=(5,))),
                       audio.guidance)
    with pytest.raises(ValueError, match="> 0"):
        check_sigmas(torch.tensor([1.0, 0.0, 0.0]))


# ---------------------------------------------------------------- batched passes on the golden sampler cases

SAMPLER_CASES = [c for c in discover_cases() if c.component == "sampler" and c.args["denoiser"] == "guided"]


@pytest.mark.parametrize("case", SAMPLER_CASES, ids=[c.name for c in SAMPLER_CASES])
def test_batched_passes_stay_within_golden_tolerance(case):
    results = compare(case, run_sampler(case, batched_passes=True))
    assert all(r.ok for r in results), "; ".join(r.message for r in results)


@pytest.mark.parametrize("batched", [False, True])
def test_text_context_is_projected_once_per_run(batched):
    """The caption projection runs once per distinct context tensor during a run, not once per step and pass,
    with results equal to projecting at every call; the memo is gone after the run."""
    case = next(c for c in SAMPLER_CASES if c.name.endswith("t2av_cfg_4steps"))
    model = load_transformer(CheckpointFile(str(case.checkpoint)))
    calls = []
    hooks = [getattr(model, name).register_forward_hook(lambda *_: calls.append(1))
             for name in ("caption_projection", "audio_caption_projection")]
    video, audio = sampler_streams(case)
    reused = sample(model, video, audio, case.inputs()["sigmas"], batched_passes=batched)
    assert len(calls) == (2 if batched else 4)  # per stream: stacked cond+uncond, or cond and uncond
    assert model._projected_contexts is None
    for hook in hooks:
        hook.remove()
    steps = case.inputs()["sigmas"].numel() - 1
    every_call = sample(_NoReuse(model), video, audio, case.inputs()["sigmas"], batched_passes=batched)
    assert steps > 1
    assert torch.equal(reused.video_latent, every_call.video_latent)
    assert torch.equal(reused.audio_latent, every_call.audio_latent)


class _NoReuse:
    """The DiT without `reusing_text_context`: the sampler projects the context at every call."""

    def __init__(self, model):
        self.model, self.config = model, model.config

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)
