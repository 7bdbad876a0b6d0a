"""Sampling for LTX-2 / LTX-2.3 / LTX-2.5: sigma schedules, dev defaults, multi-guidance, latent states with
conditionings, and the (deterministic or ancestral) Euler loop over both streams of the audio-video DiT."""
from .ancestral import AncestralEuler, ancestral_euler_step, ancestral_stage_1
from .conditioning import (
    GeneratedKeyframeSlots, KeyframeConditioning, LatentIndexConditioning, ReferenceConditioning, TemporalRegionMask,
    apply_conditionings,
)
from .defaults import PipelineDefaults, defaults_for_checkpoint_metadata, defaults_for_model_version
from .denoise import GuidedDenoiser, StreamGuidance
from .guidance import GuiderParams, combine_guidance
from .sampler import SamplerResult, SamplerStream, StepProgress, denoise, sample
from .schedules import distilled_sigmas, ltx2_sigmas, stage2_distilled_sigmas
from .state import (
    AudioGrid, LatentState, VideoGrid, audio_state, generated_keyframe_latents, keyframes_mask, target_latent,
    video_state,
)

__all__ = [
    "AncestralEuler", "AudioGrid", "GeneratedKeyframeSlots", "GuidedDenoiser", "GuiderParams",
    "KeyframeConditioning", "LatentIndexConditioning", "LatentState", "PipelineDefaults", "ReferenceConditioning",
    "SamplerResult", "SamplerStream", "StepProgress", "StreamGuidance", "TemporalRegionMask", "VideoGrid",
    "ancestral_euler_step", "ancestral_stage_1", "apply_conditionings", "audio_state", "combine_guidance",
    "defaults_for_checkpoint_metadata", "defaults_for_model_version", "denoise", "distilled_sigmas",
    "generated_keyframe_latents", "keyframes_mask", "ltx2_sigmas", "sample", "stage2_distilled_sigmas",
    "target_latent", "video_state",
]
