"""Generated keyframes and the DFR pipeline of LTX-2.5 (the official `DFRPipeline`) as nodes.

AVGen Generated Keyframes adds generated keyframe slots to an AV latent: extra single frames the model generates
with the clip (DFR's segment grid, evenly spaced frames, or given frames). The DFR graph:

    Empty AV Latent (half size) -> Generated Keyframes (dfr_segments: pads the clip to the grid)
      -> DFR Sampler (stage 1, distilled) -> DFR Spatial Upsample (video + keyframes x2, stage-1 reference)
      -> DFR Sampler (stage 2, distilled_stage2) -> DFR Temporal Round (x2 fps; chain a second for x4)
      -> DFR Trim (back to the asked length) -> Video Decode;  stage 1's latent -> Audio Decode.

DFR Sampler is the DiT sampler without guidance (the distilled LoRA's passes) that keeps what the slots became:
its output carries them as seeded slots, which the next node re-attaches (stage 2) or uses as seams (rounds).
"""
from __future__ import annotations

import logging
from dataclasses import replace

import torch

from ..models.positions import audio_latent_frames
from ..models.sampling import (
    AncestralEuler, AudioGrid, GeneratedKeyframeSlots, GuiderParams, KeyframeConditioning, LatentIndexConditioning,
    ReferenceConditioning, SamplerStream, StreamGuidance, VideoGrid, apply_conditionings, audio_state,
    generated_keyframe_latents, sample, video_state,
)
from ..models.sampling.dfr import (
    MAX_TEMPORAL_ROUNDS, DFRLayoutError, TemporalRound, check_keyframe_frames, check_round_images, dfr_canvas,
    evenly_spaced_keyframes, temporal_round,
)
from ..models.sampling.schedules import video_token_count
from . import comfy_adapter
from .encode import _check_latent
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .sampler import MAX_SEED, SCHEDULES, _step_callback, _transformer, schedule_sigmas
from .types import (
    AV_LATENT, CONDITIONING, LATENT_UPSAMPLER, MODEL, VIDEO_VAE, AVLatent, ModelHandle, UpsamplerHandle,
)
from .upsample import _Resizer, upsampled_video

log = logging.getLogger(__name__)

KEYS = "AVGenGeneratedKeyframes"
SAMPLER = "AVGenDFRSampler"
SPATIAL = "AVGenDFRSpatialUpsample"
TEMPORAL = "AVGenDFRTemporalRound"
TRIM = "AVGenDFRTrim"
PLACEMENTS = ("dfr_segments", "evenly_spaced", "frames")
DFR_SAMPLERS = ("euler", "euler_ancestral")
AUDIO_CHOICES = ("refine", "keep")
MAX_KEYFRAMES = 64
CHUNK = 8  # latent frames upsampled at a time (memory bound only: the result is the same)


def slots_of(latent: AVLatent) -> GeneratedKeyframeSlots | None:
    """The latent's generated keyframe slots item, None without one."""
    return next((c for c in latent.conditionings if isinstance(c, GeneratedKeyframeSlots)), None)


def _with_slots(conditionings, slots: GeneratedKeyframeSlots | None) -> tuple:
    """`conditionings` with the slots item replaced by `slots` (dropped for None, appended when it had none)."""
    kept = tuple(c for c in conditionings if not isinstance(c, GeneratedKeyframeSlots))
    return kept if slots is None else (*kept, slots)


def _generated_slots(node: str, latent: AVLatent, what: str) -> GeneratedKeyframeSlots:
    slots = slots_of(latent)
    if slots is None or slots.initial_latent is None:
        missing = "has no generated keyframes" if slots is None else "has keyframe slots that were not sampled yet"
        raise NodeInputError(node, f"the latent {missing}: {what} needs the keyframes a DFR pass generated (AVGen "
                                   "Generated Keyframes, then AVGen DFR Sampler)")
    return slots


def _note(node: str, notes: list[str]) -> list[str]:
    for note in notes:
        log.info("%s: %s", node, note)
    return notes


# --- generated keyframes ---------------------------------------------------------------------------------------


def parse_frames(text: str) -> tuple[int, ...]:
    """The frames widget: whole frame numbers separated by commas or spaces."""
    words = text.replace(",", " ").split()
    if not words or not all(w.isascii() and w.isdigit() for w in words):
        raise NodeInputError(KEYS, f"frames {text!r} must be frame numbers like '24, 48, 72' (placement frames)")
    return tuple(int(w) for w in words)


def check_keys_values(placement=None, count=None, frames=None) -> None:
    within_widgets(KEYS, AVGenGeneratedKeyframes, placement=placement, count=count)
    if placement == "frames" and frames is not None:
        parse_frames(frames)


def _padded(latent: AVLatent, frames: int) -> AVLatent:
    """An empty latent lengthened (zeros) to `frames` pixel frames; audio to the matching length."""
    if latent.has_video or latent.has_audio or latent.keep_video or latent.keep_audio:
        raise NodeInputError(KEYS, f"placement dfr_segments pads the clip from {latent.pixel_frames} to {frames} "
                                   "frames, which needs an empty latent (AVGen Empty AV Latent) without encoded video "
                                   f"or audio: use {frames} frames, or a length whose frames - 1 is a multiple of 24 "
                                   "or 32")
    video, audio = latent.video, latent.audio
    step = latent.scale_factors[0]
    video = torch.zeros(*video.shape[:2], (frames - 1) // step + 1, *video.shape[3:], dtype=video.dtype)
    audio = torch.zeros(*audio.shape[:2], audio_latent_frames(frames, latent.fps), audio.shape[3], dtype=audio.dtype)
    return latent.replace(video=video, audio=audio, pixel_frames=frames)


class AVGenGeneratedKeyframes:
    DESCRIPTION = (
        "Adds generated keyframes (LTX-2.5): extra single frames the model generates together with the clip, each "
        "costing one latent frame of tokens, which sharpen fast motion around them. dfr_segments: the DFR "
        "pipeline's grid (every 24 or 32 frames up to the last frame; the clip is padded to the grid, AVGen DFR "
        "Trim cuts it back); evenly_spaced: count frames between the first and the last; frames: the given frame "
        "numbers. Needs a transformer with the keyframe embedding (LTX-2.5)."
    )
    CATEGORY = "AVGen/conditioning"
    FUNCTION = "add"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = (("The AV latent with the keyframe slots attached (AVGen DFR Sampler keeps what they become; "
                        "AVGen DiT Sampler generates them and drops them)."),)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The transformer (its keyframe embedding is checked)."}),
                "latent": (AV_LATENT, {"tooltip": "The clip's AV latent (AVGen Empty AV Latent)."}),
                "placement": (list(PLACEMENTS), {"default": "dfr_segments", "tooltip": (
                    "dfr_segments: DFR's segment grid (24 or 32 frames apart, whichever pads the clip less; the "
                    "last frame included); evenly_spaced: count frames, first and last excluded; frames: the frame "
                    "numbers in frames.")}),
                "count": ("INT", {"default": 3, "min": 1, "max": MAX_KEYFRAMES,
                                  "tooltip": "How many keyframes (placement evenly_spaced)."}),
                "frames": ("STRING", {"default": "24, 48, 72", "tooltip": (
                    "Frame numbers, strictly increasing, inside the clip (placement frames).")}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, placement=None, count=None, frames=None):
        return validation_result(check_keys_values, placement=placement, count=count, frames=frames)

    def add(self, model: ModelHandle, latent: AVLatent, placement: str, count: int, frames: str):
        check_keys_values(placement, count, frames)
        latent = _check_latent(KEYS, latent)
        if not getattr(model.config, "keyframe_embedding", False):
            raise NodeInputError(KEYS, "this transformer has no keyframe embedding (use_keyframes_abs_pos_embedding): "
                                       "generated keyframes need an LTX-2.5 transformer")
        if latent.keep_video:
            raise NodeInputError(KEYS, "the latent keeps its whole video (keep on): there is nothing to generate")
        if slots_of(latent) is not None:
            raise NodeInputError(KEYS, "the latent has generated keyframes already: use one AVGen Generated "
                                       "Keyframes node per clip")
        notes = []
        try:
            if placement == "dfr_segments":
                canvas = dfr_canvas(latent.pixel_frames, latent.scale_factors[0])
                if canvas.frames != latent.pixel_frames:
                    notes.append(f"clip padded from {latent.pixel_frames} to {canvas.frames} frames for the "
                                 f"{canvas.segment}-frame segments (AVGen DFR Trim cuts it back)")
                    latent = _padded(latent, canvas.frames)
                positions = canvas.keyframes
            elif placement == "evenly_spaced":
                positions = evenly_spaced_keyframes(count, latent.pixel_frames)
            else:
                positions = check_keyframe_frames(parse_frames(frames), latent.pixel_frames)
        except DFRLayoutError as exc:
            raise NodeInputError(KEYS, str(exc)) from exc
        notes.append(f"{len(positions)} generated keyframe(s) at frames {list(positions)} of {latent.pixel_frames}")
        out = latent.replace(conditionings=(*latent.conditionings, GeneratedKeyframeSlots(positions)))
        return {"ui": {"text": _note(KEYS, notes)}, "result": (out,)}


# --- DFR sampler -----------------------------------------------------------------------------------------------


def check_sampler_values(seed=None, steps=None, schedule=None, denoise=None, sampler=None) -> None:
    within_widgets(SAMPLER, AVGenDFRSampler, seed=seed, steps=steps, schedule=schedule, denoise=denoise,
                   sampler=sampler)


def _check_for_model(latent: AVLatent, model: ModelHandle, partial: bool) -> None:
    config = latent.video.shape[1], latent.audio.shape[1] * latent.audio.shape[3]
    if config != (model.config.video_in_channels, model.config.audio_in_channels):
        raise NodeInputError(SAMPLER, f"the latent has {config[0]} video channels and {config[1]} audio features, the "
                                      f"model {model.config.video_in_channels} and {model.config.audio_in_channels}: "
                                      "make the latent with this model")
    if latent.keep_video and latent.keep_audio:
        raise NodeInputError(SAMPLER, "the latent keeps both its video and its audio: nothing to generate")
    if partial and not ((latent.has_video or latent.keep_video) and (latent.has_audio or latent.keep_audio)):
        raise NodeInputError(SAMPLER, "denoise < 1 and the distilled_stage2 schedule rework the latent's content, "
                                      "but it is empty: sample stage 1 first (then AVGen DFR Spatial Upsample)")


def _contexts(conditioning, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    contexts = []
    for tensor in (conditioning.video, conditioning.audio):
        if tensor.shape[0] not in (1, batch):
            raise NodeInputError(SAMPLER, f"the conditioning has a batch of {tensor.shape[0]}, the latent {batch}")
        contexts.append(tensor.expand(batch, *tensor.shape[1:]).to(device))
    return contexts[0], contexts[1]


class AVGenDFRSampler:
    DESCRIPTION = (
        "One pass of the DFR pipeline (LTX-2.5): denoises video, audio and the generated keyframes without guidance "
        "(the positive prompt only, as the distilled LoRA is run) and keeps what the keyframe slots became, so AVGen "
        "DFR Spatial Upsample and AVGen DFR Temporal Round can carry them on. Stage 1: schedule distilled on the "
        "half-size latent; stage 2: distilled_stage2 after the spatial upsample. The official DFR passes use "
        "deterministic Euler steps. The noise comes from the seed on the CPU."
    )
    CATEGORY = "AVGen/sampling"
    FUNCTION = "sample"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The denoised latent; its generated keyframes stay attached with their content.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The transformer with the distilled LoRA (or a distilled transformer)."}),
                "conditioning": (CONDITIONING, {"tooltip": "Encoded prompt (only the positive one is used)."}),
                "latent": (AV_LATENT, {"tooltip": "Stage 1: the latent with generated keyframes; stage 2: AVGen DFR "
                                                  "Spatial Upsample's output."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True,
                                 "tooltip": "Seed of the starting noise (drawn on the CPU)."}),
                "steps": ("INT", {"default": 8, "min": 2, "max": 1000,
                                  "tooltip": "Steps of the dev schedules; the distilled schedules have their own."}),
                "schedule": (list(SCHEDULES), {"default": "distilled", "tooltip": (
                    "distilled: the 8 distilled steps (stage 1); distilled_stage2: the 3 refinement steps from sigma "
                    "0.909 (stage 2, on a latent with content); dev / dev_token_shift: the LTX2 scheduler.")}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01,
                                      "tooltip": "1 = the whole schedule; lower = only its end, reworking the "
                                                 "latent's content."}),
                "sampler": (list(DFR_SAMPLERS), {"default": "euler", "tooltip": (
                    "euler: deterministic steps (the official DFR stages); euler_ancestral: fresh noise every step "
                    "(from seed + 10000).")}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, seed=None, steps=None, schedule=None, denoise=None, sampler=None):
        return validation_result(check_sampler_values, seed=seed, steps=steps, schedule=schedule, denoise=denoise,
                                 sampler=sampler)

    def sample(self, model: ModelHandle, conditioning, latent: AVLatent, seed: int, steps: int, schedule: str,
               denoise: float, sampler: str):
        check_sampler_values(seed, steps, schedule, denoise, sampler)
        latent = _check_latent(SAMPLER, latent)
        sigmas = schedule_sigmas(schedule, steps, denoise, video_token_count(tuple(latent.video.shape)))
        partial = denoise < 1 or schedule == "distilled_stage2"
        _check_for_model(latent, model, partial)
        noise_scale = float(sigmas[0]) if partial else 1.0
        device, batch = model.device, latent.video.shape[0]
        video_context, audio_context = _contexts(conditioning, batch, device)
        grid = VideoGrid(batch, *latent.video.shape[1:], fps=latent.fps, scale_factors=latent.scale_factors)
        try:
            v_state = apply_conditionings(video_state(grid, latent.video, device), latent.conditionings)
            a_state = apply_conditionings(audio_state(AudioGrid(batch, *latent.audio.shape[1:]), latent.audio, device),
                                          latent.audio_conditionings)
        except ValueError as exc:
            raise NodeInputError(SAMPLER, f"the latent's conditionings do not fit it: {exc}") from exc
        streams = [SamplerStream(state, StreamGuidance(context, context, GuiderParams(), frozen), noise_scale)
                   for state, context, frozen in ((v_state, video_context, latent.keep_video),
                                                  (a_state, audio_context, latent.keep_audio))]
        ancestral = AncestralEuler(int(seed), noise_device="cpu") if sampler == "euler_ancestral" else None
        generator = torch.Generator("cpu").manual_seed(int(seed))
        try:
            with _transformer(model) as transformer, \
                    comfy_adapter.ProgressReporter(sigmas.numel() - 1, "AVGen DFR sampling") as reporter:
                result = sample(transformer, *streams, sigmas, generator=generator,
                                callback=_step_callback(reporter, None), ancestral=ancestral)
        except ValueError as exc:
            if isinstance(exc, NodeInputError):
                raise
            raise NodeInputError(SAMPLER, str(exc)) from exc
        keyframes = generated_keyframe_latents(result.video_state)
        slots = slots_of(latent)
        conditionings = latent.conditionings if keyframes is None else _with_slots(
            latent.conditionings, GeneratedKeyframeSlots(slots.pixel_frames, keyframes.to("cpu")))
        notes = _note(SAMPLER, [f"{schedule}: {sigmas.numel() - 1} {sampler} steps from sigma {float(sigmas[0]):.4f}, "
                                f"seed {seed}, no guidance"
                                + (f"; {keyframes.shape[2]} generated keyframe(s) kept" if keyframes is not None
                                   else "")])
        out = latent.replace(video=result.video_latent.to("cpu"), audio=result.audio_latent.to("cpu"),
                             has_video=True, has_audio=True, conditionings=conditionings)
        return {"ui": {"text": notes}, "result": (out,)}


# --- spatial upsample ------------------------------------------------------------------------------------------


def _check_upsampler(node: str, handle, latent: AVLatent, kind: str) -> None:
    """A loaded upsampler of `kind` ("spatial": x2 frames, "temporal": x2 frame rate) for the latent's channels."""
    if not isinstance(handle, UpsamplerHandle):
        raise NodeInputError(node, f"upscale_model must come from AVGen Latent Upsampler Loader, got "
                                   f"{type(handle).__name__}")
    config = handle.upsampler.config
    if config.kind != kind:
        raise NodeInputError(node, f"upscale_model {handle.name!r} is {config.describe()}: this node takes the "
                                   f"{kind} x2 upscaler")
    if config.in_channels != latent.video.shape[1]:
        raise NodeInputError(node, f"upscale_model {handle.name!r} takes {config.in_channels}-channel latents, the "
                                   f"latent has {latent.video.shape[1]}: it belongs to another model")


class AVGenDFRSpatialUpsample:
    DESCRIPTION = (
        "DFR stage 2 setup (LTX-2.5): upsamples the stage-1 video and its generated keyframes x2 with the spatial "
        "latent upscaler and re-attaches the keyframes as seeded slots at the new size; images are encoded again at "
        "the new size. With detailing_reference the half-size stage-1 video is attached as the reference of a x2 "
        "detailing IC-LoRA. Then AVGen DFR Sampler with schedule distilled_stage2. As the official pipeline, "
        "stage 2 re-noises the audio (the video needs it in cross-attention) but ships stage 1's audio: decode the "
        "audio from the stage-1 latent."
    )
    CATEGORY = "AVGen/latent"
    FUNCTION = "upsample"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The latent at twice the size with its keyframes, ready for the stage-2 DFR Sampler.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": (AV_LATENT, {"tooltip": "The stage-1 DFR Sampler's output."}),
                "upscale_model": (LATENT_UPSAMPLER, {"tooltip": "The spatial x2 upscaler (AVGen Latent Upsampler "
                                                                "Loader)."}),
                "video_vae": (VIDEO_VAE, {"tooltip": "The model's video VAE: its statistics frame the upscaler, its "
                                                     "encoder re-encodes images."}),
                "audio": (list(AUDIO_CHOICES), {"default": "refine", "tooltip": (
                    "refine: stage 2 re-noises the audio with the video (official); keep: stage 1's audio stays "
                    "exact as a condition.")}),
                "detailing_reference": ("BOOLEAN", {"default": False, "tooltip": (
                    "Attach the half-size stage-1 video as reference for a x2 detailing IC-LoRA on the stage-2 "
                    "model (official with --detailing-lora); off without one.")}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, audio=None):
        return validation_result(lambda **v: within_widgets(SPATIAL, cls, **v), audio=audio)

    def upsample(self, latent: AVLatent, upscale_model: UpsamplerHandle, video_vae, audio: str,
                 detailing_reference: bool):
        within_widgets(SPATIAL, AVGenDFRSpatialUpsample, audio=audio)
        latent = _check_latent(SPATIAL, latent)
        _check_upsampler(SPATIAL, upscale_model, latent, "spatial")
        slots = _generated_slots(SPATIAL, latent, "the detail pass")
        upsampler = upscale_model.upsampler
        video = upsampled_video(video_vae, upsampler, latent.video, CHUNK)
        steps = latent.scale_factors
        out = latent.replace(video=video, height=video.shape[3] * steps[1], width=video.shape[4] * steps[2],
                             keep_audio=latent.keep_audio or audio == "keep")
        resizer = _Resizer(video_vae, upsampler, latent, out, CHUNK, "keep")
        with torch.no_grad():
            carried = [resizer.carry(c) for c in latent.conditionings if not isinstance(c, GeneratedKeyframeSlots)]
        carried.append(GeneratedKeyframeSlots(slots.pixel_frames,
                                              upsampled_video(video_vae, upsampler, slots.initial_latent, CHUNK)))
        if detailing_reference:
            carried.append(ReferenceConditioning(latent.video, 1.0, upsampler.config.spatial_factor))
        out = out.replace(conditionings=tuple(carried))
        notes = _note(SPATIAL, [f"{latent.width}x{latent.height} -> {out.width}x{out.height}, "
                                f"{len(slots.pixel_frames)} keyframe(s) upsampled and re-attached"
                                + ("; stage-1 video as detailing reference" if detailing_reference else "")
                                + f"; audio {'kept' if out.keep_audio else 're-noised in stage 2'}"])
        return {"ui": {"text": notes}, "result": (out,)}


# --- temporal round ---------------------------------------------------------------------------------------------


def _round_images(conditionings) -> tuple[list, int]:
    """The image conditionings on the round's (doubled) frames, and how many references were dropped."""
    images, dropped = [], 0
    for item in conditionings:
        if isinstance(item, ReferenceConditioning):  # the stage-2 detailing reference: not used by the rounds
            dropped += 1
        elif isinstance(item, KeyframeConditioning):
            images.append(replace(item, frame_idx=2 * item.frame_idx))
        elif isinstance(item, LatentIndexConditioning):
            images.append(item)
        elif not isinstance(item, GeneratedKeyframeSlots):
            raise NodeInputError(TEMPORAL, f"the latent carries a {type(item).__name__} conditioning, which a "
                                           "temporal round cannot place (it takes images and generated keyframes)")
    try:
        check_round_images(images)
    except DFRLayoutError as exc:
        raise NodeInputError(TEMPORAL, str(exc)) from exc
    return images, dropped


class AVGenDFRTemporalRound:
    DESCRIPTION = (
        "A DFR temporal round (LTX-2.5): doubles the frame rate. The video is upsampled x2 in time, split into "
        "2^round tiles that meet at the generated keyframes (each tile guided by them at strength 0.95 and given "
        "fresh keyframes in the middle of its segments), each tile densified with 4 ancestral Euler steps (eta "
        "0.5, video only) and the tiles stitched. The keyframes of this round go on to the next: chain round 1 "
        "and round 2 for x4. The audio is untouched."
    )
    CATEGORY = "AVGen/sampling"
    FUNCTION = "densify"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The latent at twice the frame rate ((frames - 1) x 2 + 1 frames) with its keyframes.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The transformer with the distilled LoRA."}),
                "conditioning": (CONDITIONING, {"tooltip": "Encoded prompt (only the positive video context is "
                                                           "used)."}),
                "latent": (AV_LATENT, {"tooltip": "The stage-2 DFR Sampler's output (or the previous round's)."}),
                "upscale_model": (LATENT_UPSAMPLER, {"tooltip": "The temporal x2 upscaler (AVGen Latent Upsampler "
                                                                "Loader)."}),
                "video_vae": (VIDEO_VAE, {"tooltip": "The model's video VAE (its statistics frame the upscaler)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True,
                                 "tooltip": "Seed of the tiles' noise (step noise: seed + 1000 x round + tile)."}),
                "round": ("INT", {"default": 1, "min": 1, "max": MAX_TEMPORAL_ROUNDS,
                                  "tooltip": "Which round this is: 2^round tiles (1 after stage 2, 2 after round 1)."}),
            }
        }

    @classmethod
    def VALIDATE_INPUTS(cls, seed=None, round=None):
        return validation_result(lambda **v: within_widgets(TEMPORAL, cls, **v), seed=seed, round=round)

    def densify(self, model: ModelHandle, conditioning, latent: AVLatent, upscale_model: UpsamplerHandle, video_vae,
                seed: int, round: int):
        within_widgets(TEMPORAL, AVGenDFRTemporalRound, seed=seed, round=round)
        latent = _check_latent(TEMPORAL, latent)
        if not latent.has_video:
            raise NodeInputError(TEMPORAL, "the latent's video is still empty: densify a sampled latent")
        _check_upsampler(TEMPORAL, upscale_model, latent, "temporal")
        keyframes = _generated_slots(TEMPORAL, latent, "a temporal round")
        images, dropped = _round_images(latent.conditionings)
        video = upsampled_video(video_vae, upscale_model.upsampler, latent.video, CHUNK)
        context, _ = _contexts(conditioning, latent.video.shape[0], model.device)
        plan = TemporalRound(int(round), 2 * latent.fps, int(seed))
        try:
            with _transformer(model) as transformer, \
                    comfy_adapter.ProgressReporter(1, "AVGen DFR temporal round") as reporter:
                stitched, carried = temporal_round(
                    transformer, video, keyframes, images, context, plan, device=model.device,
                    scale_factors=latent.scale_factors,
                    on_step=lambda done, total: reporter.update_absolute(done, total))
        except DFRLayoutError as exc:
            raise NodeInputError(TEMPORAL, f"{exc}; place the keyframes with AVGen Generated Keyframes "
                                           "(placement dfr_segments)") from exc
        frames = 2 * (latent.pixel_frames - 1) + 1
        out = latent.replace(video=stitched.to("cpu"), pixel_frames=frames, fps=2 * latent.fps,
                             conditionings=(*images, carried))
        notes = _note(TEMPORAL, [f"round {round}: {latent.pixel_frames} frames at {latent.fps:g} fps -> {frames} at "
                                 f"{out.fps:g} fps; {len(carried.pixel_frames)} keyframe(s) carried on"
                                 + (f"; {dropped} reference(s) dropped" if dropped else "")])
        return {"ui": {"text": notes}, "result": (out,)}


# --- trim ------------------------------------------------------------------------------------------------------


def trimmed_frames(latent: AVLatent, clip: AVLatent) -> int:
    """Pixel frames of `clip`'s length at `latent`'s frame rate: (clip frames - 1) x fps ratio + 1."""
    ratio = latent.fps / clip.fps
    if ratio < 1 or ratio != int(ratio) or int(ratio) & (int(ratio) - 1):
        raise NodeInputError(TRIM, f"the latent runs at {latent.fps:g} fps, the clip at {clip.fps:g}: the DFR "
                                   "rounds double the frame rate, so the ratio must be 1, 2 or 4")
    frames = (clip.pixel_frames - 1) * int(ratio) + 1
    if frames > latent.pixel_frames:
        raise NodeInputError(TRIM, f"the clip's {clip.pixel_frames} frames are {frames} at {latent.fps:g} fps, more "
                                   f"than the latent's {latent.pixel_frames}: connect the clip from before AVGen "
                                   "Generated Keyframes padded it")
    return frames


class AVGenDFRTrim:
    DESCRIPTION = (
        "Cuts a DFR result back to the length asked for: AVGen Generated Keyframes pads the clip to its segment "
        "grid, so this keeps (clip frames - 1) x 2^rounds + 1 frames (the official DFR output length). The audio "
        "is cut to the video when it is decoded and saved."
    )
    CATEGORY = "AVGen/latent"
    FUNCTION = "trim"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The latent with the asked length (decode it with AVGen Video Decode).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "latent": (AV_LATENT, {"tooltip": "The last DFR pass's output (stage 2 or a temporal round)."}),
                "clip": (AV_LATENT, {"tooltip": "The clip as asked for: AVGen Empty AV Latent's output, before the "
                                                "keyframe grid padded it (its frames and fps)."}),
            }
        }

    def trim(self, latent: AVLatent, clip: AVLatent):
        latent, clip = _check_latent(TRIM, latent), _check_latent(TRIM, clip)
        frames = trimmed_frames(latent, clip)
        step = latent.scale_factors[0]
        slots = slots_of(latent)
        if slots is not None:
            kept = [k for k, f in enumerate(slots.pixel_frames) if f < frames]
            slots = None if not kept else GeneratedKeyframeSlots(
                tuple(slots.pixel_frames[k] for k in kept),
                None if slots.initial_latent is None else slots.initial_latent[:, :, kept])
        out = latent.replace(video=latent.video[:, :, :(frames - 1) // step + 1], pixel_frames=frames,
                             conditionings=_with_slots(latent.conditionings, slots))
        notes = _note(TRIM, [f"{latent.pixel_frames} -> {frames} frames at {latent.fps:g} fps"])
        return {"ui": {"text": notes}, "result": (out,)}


NODE_CLASS_MAPPINGS = {KEYS: AVGenGeneratedKeyframes, SAMPLER: AVGenDFRSampler, SPATIAL: AVGenDFRSpatialUpsample,
                       TEMPORAL: AVGenDFRTemporalRound, TRIM: AVGenDFRTrim}
NODE_DISPLAY_NAME_MAPPINGS = {KEYS: "AVGen Generated Keyframes", SAMPLER: "AVGen DFR Sampler",
                              SPATIAL: "AVGen DFR Spatial Upsample", TEMPORAL: "AVGen DFR Temporal Round",
                              TRIM: "AVGen DFR Trim"}
