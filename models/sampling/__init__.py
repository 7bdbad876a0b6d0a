"""Sampling for LTX-2 / LTX-2.3: sigma schedules, dev defaults, multi-guidance, latent states with
conditionings, and the Euler loop over both streams of the audio-video DiT."""
from .conditioning import (
    KeyframeConditioning, LatentIndexConditioning, ReferenceConditioning, TemporalRegionMask, apply_conditionings,
)
from .defaults import PipelineDefaults, defaults_for_checkpoint_metadata, defaults_for_model_version
from .denoise import GuidedDenoiser, StreamGuidance
from .guidance import GuiderParams, combine_guidance
from .sampler import SamplerResult, SamplerStream, StepProgress, denoise, sample
from .schedules import distilled_sigmas, ltx2_sigmas, stage2_distilled_sigmas
from .state import AudioGrid, LatentState, VideoGrid, audio_state, target_latent, video_state

__all__ = [
    "AudioGrid", "GuidedDenoiser", "GuiderParams", "KeyframeConditioning", "LatentIndexConditioning", "LatentState",
    "PipelineDefaults", "ReferenceConditioning", "SamplerResult", "SamplerStream", "StepProgress", "StreamGuidance",
    "TemporalRegionMask", "VideoGrid",
    "apply_conditionings", "audio_state", "combine_guidance", "defaults_for_checkpoint_metadata",
    "defaults_for_model_version", "denoise", "distilled_sigmas", "ltx2_sigmas", "sample", "stage2_distilled_sigmas",
    "target_latent", "video_state",
]
