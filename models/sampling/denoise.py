"""Guided x0 prediction of one sampling step for both streams (the DiT passes and their combination).

Passes, each a full DiT call on both streams (official order):
  cond   positive contexts;
  uncond negative contexts of BOTH streams (a stream without one uses its positive context), if any cfg != 1;
  ptb    STG: self-attention of each stream with stg != 0 perturbed in its `stg_blocks`, if any stg != 0;
  mod    audio<->video cross-attention skipped in every block, if any modality scale != 1.
Each pass gives x0 = x - v * timesteps (float32); `combine_guidance` mixes them per stream. A stream whose
guider skips the step keeps its previous x0; when only one stream skips, the DiT still runs with that stream
disabled (projected, usable as AV cross-attention keys/values, not updated, no output).
With `batched_passes` all passes go through one DiT call on a batch of (passes x B) samples.
A DiT with the LTX-2.5 keyframe embedding also gets the video keyframe marker (`state.keyframes_mask`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..transformer.inputs import StreamInput, to_denoised
from .guidance import GuiderParams, combine_guidance
from .state import LatentState, keyframes_mask


@dataclass
class StreamGuidance:
    """Text contexts and guidance of one stream. `frozen`: the stream is only a condition (its sigma is fed
    to the DiT as 0; give it a state with denoise mask 0, see `state.frozen`)."""

    context: torch.Tensor  # (B, L, ctx) positive prompt
    negative_context: torch.Tensor | None = None  # (B, L, ctx), needed when cfg != 1
    guider: GuiderParams = field(default_factory=GuiderParams)
    frozen: bool = False


def _passes(video: GuiderParams, audio: GuiderParams) -> list[tuple[str, list[dict]]]:
    """(pass name, perturbation entries applied to every sample of that pass)."""
    passes = [("cond", [])]
    if video.uses_negative or audio.uses_negative:
        passes.append(("uncond", []))
    stg = [
        {"type": kind, "blocks": list(params.stg_blocks)}
        for kind, params in (("skip_video_self_attn", video), ("skip_audio_self_attn", audio))
        if params.uses_perturbed
    ]
    if stg:
        passes.append(("ptb", stg))
    if video.uses_isolated or audio.uses_isolated:
        passes.append(("mod", [{"type": "skip_a2v_cross_attn", "blocks": None},
                               {"type": "skip_v2a_cross_attn", "blocks": None}]))
    return passes


class GuidedDenoiser:
    """Callable `(video_state, audio_state, step, sigma) -> (video_x0, audio_x0)`, float32 token layout, before
    blending with the clean state. Remembers the last x0 of each stream for `skip_step`."""

    def __init__(self, model, video: StreamGuidance, audio: StreamGuidance, batched_passes: bool = False):
        num_layers = model.config.num_layers
        for name, stream in (("video", video), ("audio", audio)):
            if stream.guider.uses_negative and stream.negative_context is None:
                raise ValueError(f"{name} guider has cfg_scale {stream.guider.cfg_scale} but no negative context")
            bad = [b for b in stream.guider.stg_blocks if b >= num_layers] if stream.guider.uses_perturbed else []
            if bad:
                raise ValueError(f"{name} guider: STG blocks {bad} do not exist in a DiT of {num_layers} blocks")
        self.model = model
        self.marks_keyframes = bool(getattr(model.config, "keyframe_embedding", False))
        self.video, self.audio = video, audio
        self.batched_passes = batched_passes
        self.passes = _passes(video.guider, audio.guider)
        self._last: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)
        self._stacked_contexts: dict = {}

    def __call__(self, video_state: LatentState, audio_state: LatentState, step: int, sigma: torch.Tensor):
        skip_video, skip_audio = self.video.guider.skips(step), self.audio.guider.skips(step)
        if skip_video and skip_audio:
            return self._last
        inputs = (
            self._stream_inputs(video_state, self.video, sigma, enabled=not skip_video),
            self._stream_inputs(audio_state, self.audio, sigma, enabled=not skip_audio),
        )
        run = self._run_batched if self.batched_passes else self._run_sequential
        results = run(*inputs)  # pass name -> (video x0 | None, audio x0 | None)
        video_x0 = self._last[0] if skip_video else self._combine(0, self.video.guider, results)
        audio_x0 = self._last[1] if skip_audio else self._combine(1, self.audio.guider, results)
        self._last = (video_x0, audio_x0)
        return self._last

    @staticmethod
    def _combine(index: int, guider: GuiderParams, results: dict) -> torch.Tensor:
        get = lambda name: results[name][index] if name in results else None  # noqa: E731
        return combine_guidance(guider, get("cond"), get("uncond"), get("ptb"), get("mod"))

    def _stream_inputs(self, state: LatentState, stream: StreamGuidance, sigma: torch.Tensor, enabled: bool) -> dict:
        """One stream's DiT input pieces shared by all passes (only the context differs, in the uncond pass)."""
        batch = state.latent.shape[0]
        step_sigma = torch.zeros(batch, device=state.latent.device) if stream.frozen else sigma.expand(batch)
        return {
            "latent": state.latent, "timesteps": state.denoise_mask * step_sigma.view(-1, 1, 1),
            "sigma": step_sigma, "positions": state.positions, "attention_mask": state.attention_mask,
            "enabled": enabled, "context": stream.context,
            "keyframes_mask": keyframes_mask(state) if self.marks_keyframes else None,
            "negative": stream.negative_context if stream.negative_context is not None else stream.context,
        }

    def _stacked_context(self, contexts: list[torch.Tensor]) -> torch.Tensor:
        """`torch.cat(contexts)`, the same tensor at every step (so the DiT can reuse its projection)."""
        key = tuple(id(c) for c in contexts)
        kept = self._stacked_contexts.get(key)
        if kept is None or any(a is not b for a, b in zip(kept[0], contexts)):
            kept = self._stacked_contexts[key] = (contexts, torch.cat(contexts, dim=0))
        return kept[1]

    def _model_input(self, parts: dict, names: list[str]) -> StreamInput:
        """StreamInput of the given passes stacked along the batch (one pass = the plain batch)."""
        contexts = [parts["negative"] if name == "uncond" else parts["context"] for name in names]
        if len(names) == 1:
            repeat, context = (lambda t: t), contexts[0]
        else:
            repeat = lambda t: None if t is None else t.repeat(len(names), *[1] * (t.ndim - 1))  # noqa: E731
            context = self._stacked_context(contexts)
        return StreamInput(
            latent=repeat(parts["latent"]), timesteps=repeat(parts["timesteps"]), sigma=repeat(parts["sigma"]),
            positions=repeat(parts["positions"]), attention_mask=repeat(parts["attention_mask"]),
            context=context, enabled=parts["enabled"], keyframes_mask=repeat(parts["keyframes_mask"]),
        )

    @staticmethod
    def _x0(model_input: StreamInput, velocity: torch.Tensor | None) -> torch.Tensor | None:
        return None if velocity is None else to_denoised(model_input.latent, velocity, model_input.timesteps)

    def _run_sequential(self, video: dict, audio: dict) -> dict:
        results = {}
        batch = video["latent"].shape[0]
        for name, perturbations in self.passes:
            v_in, a_in = self._model_input(video, [name]), self._model_input(audio, [name])
            v_vel, a_vel = self.model(v_in, a_in, perturbations=[perturbations] * batch if perturbations else None)
            results[name] = (self._x0(v_in, v_vel), self._x0(a_in, a_vel))
        return results

    def _run_batched(self, video: dict, audio: dict) -> dict:
        names = [name for name, _ in self.passes]
        batch = video["latent"].shape[0]
        v_in, a_in = self._model_input(video, names), self._model_input(audio, names)
        perturbations = [entries for _, entries in self.passes for _ in range(batch)]
        v_vel, a_vel = self.model(v_in, a_in, perturbations=perturbations if any(perturbations) else None)
        v_x0, a_x0 = self._x0(v_in, v_vel), self._x0(a_in, a_vel)
        split = lambda x: [None] * len(names) if x is None else list(x.chunk(len(names)))  # noqa: E731
        return dict(zip(names, zip(split(v_x0), split(a_x0))))
