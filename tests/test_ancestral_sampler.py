"""LTX-2.5 sampling: the ancestral (SDE) Euler step of the distilled stage 1 and its use in the sampler, and the
2.5 pipeline defaults."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from comfyui_avgen.models.sampling import (
    AncestralEuler, AudioGrid, LatentIndexConditioning, SamplerStream, StreamGuidance, VideoGrid, ancestral_euler_step,
    ancestral_stage_1, audio_state, defaults_for_model_version, distilled_sigmas, sample, video_state,
)
from comfyui_avgen.models.sampling.ancestral import ANCESTRAL_NOISE_SEED_OFFSET
from comfyui_avgen.models.sampling.sampler import euler_step


def test_one_step_worked_by_hand():
    """sigma 0.5 -> 0.25, eta 1: sigma_down = 0.125, x_down = 0.25 x + 0.75 x0, signal x 0.75 / 0.875,
    renoise sqrt(0.0625 - 0.125^2 * 0.75^2 / 0.875^2) = sqrt(0.05102...) = 0.225877."""
    x, x0, noise = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0]), torch.tensor([0.0, 1.0])
    got = ancestral_euler_step(x, x0, 0.5, 0.25, noise)
    want = torch.tensor([0.25 * 0.75 / 0.875, 1.5 * 0.75 / 0.875 + 0.2258769757])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_eta_zero_is_the_euler_step_and_draws_no_noise():
    g = torch.Generator().manual_seed(0)
    x, x0 = torch.randn(2, 6, 3, generator=g), torch.randn(2, 6, 3, generator=g)
    state = SimpleNamespace(latent=x, with_latent=lambda latent: latent)
    want = euler_step(state, x0, torch.tensor(0.7), torch.tensor(0.4))
    torch.testing.assert_close(ancestral_euler_step(x, x0, 0.7, 0.4, None, eta=0.0), want)
    assert not AncestralEuler(seed=1, eta=0.0).draws_noise


def test_a_step_to_zero_returns_the_prediction():
    x0 = torch.randn(1, 4, 2)
    assert torch.equal(ancestral_euler_step(torch.randn(1, 4, 2), x0, 0.42, 0.0), x0)


@pytest.mark.parametrize("eta", [0.3, 1.0])
def test_the_step_keeps_the_rectified_flow_marginal(eta):
    """From x_t = (1 - sigma) x0 + sigma e, the result is distributed as (1 - sigma_next) x0 + sigma_next e'."""
    g = torch.Generator().manual_seed(5)
    sigma, sigma_next, n = 0.8, 0.45, 400_000
    x0 = torch.full((n,), 1.5)
    x = (1 - sigma) * x0 + sigma * torch.randn(n, generator=g)
    out = ancestral_euler_step(x, x0, sigma, sigma_next, torch.randn(n, generator=g), eta=eta)
    assert abs(out.mean().item() - (1 - sigma_next) * 1.5) < 3e-3
    assert abs(out.std().item() - sigma_next) < 3e-3


def test_s_noise_scales_only_the_added_noise():
    x, x0, noise = torch.ones(3), torch.zeros(3), torch.ones(3)
    base = ancestral_euler_step(x, x0, 0.6, 0.3, noise * 0, s_noise=1.0)
    one = ancestral_euler_step(x, x0, 0.6, 0.3, noise, s_noise=1.0)
    two = ancestral_euler_step(x, x0, 0.6, 0.3, noise, s_noise=2.0)
    torch.testing.assert_close(two - base, 2 * (one - base))


def test_bad_arguments_are_named():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="needs noise of shape"):
        ancestral_euler_step(x, x, 0.5, 0.25)
    with pytest.raises(ValueError, match="needs noise of shape"):
        ancestral_euler_step(x, x, 0.5, 0.25, torch.zeros(3))
    with pytest.raises(ValueError, match="sigma_next < 1"):
        ancestral_euler_step(x, x, 1.0, 1.0, x)
    with pytest.raises(ValueError, match="sample .* and denoised .* differ"):
        ancestral_euler_step(x, torch.zeros(3), 0.5, 0.25, x)
    for kwargs, message in (({"eta": 1.5}, "eta must be in"), ({"s_noise": -1.0}, "s_noise"),
                            ({"seed": 1.5}, "seed must be an integer")):
        with pytest.raises(ValueError, match=message):
            AncestralEuler(**{"seed": 3, **kwargs})


# ---------------------------------------------------------------- in the sampler


class LinearDiT:
    """Velocity = 0.5 * latent + 0.1 (x0 = x - v * t)."""

    config = SimpleNamespace(num_layers=1)

    def __call__(self, video, audio, perturbations=None):
        return 0.5 * video.latent + 0.1, 0.5 * audio.latent + 0.1


GRID = VideoGrid(1, 4, 3, 2, 3, fps=24.0)


def _streams():
    g = torch.Generator().manual_seed(2)
    first_frame = LatentIndexConditioning(torch.randn(1, 4, 1, 2, 3, generator=g))  # kept clean: mask 0
    v = first_frame.apply_to(video_state(GRID))
    a = audio_state(AudioGrid(1, 2, 5))
    context = torch.randn(1, 3, 5, generator=g)
    return SamplerStream(v, StreamGuidance(context)), SamplerStream(a, StreamGuidance(context))


def _manual(video, audio, sigmas, seed, eta):
    """The loop written out: initial noise from the seed (video, audio), then per step x0, blend, step, and
    (before a non-zero sigma) one noise draw per stream from the seed + 10000 generator, video first."""
    start, steps = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 10000)
    states = []
    for stream in (video, audio):
        s = stream.state
        noise = torch.randn(s.latent.shape, generator=start)
        states.append((s.clean + (noise - s.clean) * s.denoise_mask, s.clean, s.denoise_mask))
    xs = [x for x, _, _ in states]
    for i in range(sigmas.numel() - 1):
        sigma, nxt = sigmas[i], sigmas[i + 1]
        new = []
        for x, (_, clean, mask) in zip(xs, states):
            x0 = x - (0.5 * x + 0.1) * (sigma * mask)
            x0 = x0 * mask + clean * (1 - mask)
            if nxt == 0:
                new.append(x0)
                continue
            step = ancestral_euler_step(x, x0, sigma, nxt, torch.randn(x.shape, generator=steps), eta=eta)
            new.append(step * mask + clean * (1 - mask))
        xs = new
    return xs


@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_sampler_option_matches_the_loop_written_out(eta):
    video, audio = _streams()
    sigmas = distilled_sigmas()
    result = sample(LinearDiT(), video, audio, sigmas, generator=torch.Generator().manual_seed(11),
                    ancestral=AncestralEuler(seed=11, eta=eta))
    want_video, want_audio = _manual(video, audio, sigmas, 11, eta)
    torch.testing.assert_close(result.video_state.latent, want_video)
    torch.testing.assert_close(result.audio_state.latent, want_audio)
    clean = video.state.clean[:, :6]
    assert torch.equal(result.video_state.latent[:, :6], clean)  # conditioned tokens stay exactly clean


def test_default_stays_deterministic_euler_and_ancestral_noise_depends_on_its_seed():
    video, audio = _streams()
    sigmas = torch.tensor([1.0, 0.7, 0.3, 0.0])

    def run(ancestral):
        return sample(LinearDiT(), video, audio, sigmas, generator=torch.Generator().manual_seed(4),
                      ancestral=ancestral).video_latent

    euler, euler_again = run(None), run(None)
    assert torch.equal(euler, euler_again)
    assert torch.allclose(run(AncestralEuler(seed=4, eta=0.0)), euler, atol=1e-6)
    first, same, other = run(AncestralEuler(seed=4)), run(AncestralEuler(seed=4)), run(AncestralEuler(seed=5))
    assert torch.equal(first, same) and not torch.allclose(first, other) and not torch.allclose(first, euler)
    assert ANCESTRAL_NOISE_SEED_OFFSET == 10000


# ---------------------------------------------------------------- 2.5 defaults


@pytest.mark.parametrize("version,ancestral", [
    (None, False), ("2.3.0", False), ("2.4.0", False), ("2.4-rc2", False), ("2.5.0", True), ("2.5-rc1", True),
    ((2, 5), True), ("junk", False),
])
def test_stage_1_is_ancestral_from_model_version_2_5(version, ancestral):
    assert ancestral_stage_1(version) is ancestral


def test_2_4_and_2_5_keep_the_2_3_settings_with_image_crf_18():
    ltx23 = defaults_for_model_version("2.3.0")
    for version in ("2.4.0", "2.5.0", "2.5-rc1", (2, 5, 1)):
        defaults = defaults_for_model_version(version)
        assert defaults.default_image_crf == 18 and ltx23.default_image_crf == 33
        assert (defaults.num_inference_steps, defaults.video_guider, defaults.audio_guider) == (
            ltx23.num_inference_steps, ltx23.video_guider, ltx23.audio_guider)
    with pytest.raises(ValueError, match="not supported"):
        defaults_for_model_version("2.6.0")
