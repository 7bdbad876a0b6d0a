"""DiT Sampler: denoises an AV latent with the audio-video DiT (models.sampling), with per-modality guidance,
sigma presets, partial denoising, frozen streams (A2V / V2A), progress, interruption and live previews."""
from __future__ import annotations

import contextlib
import logging

import torch
from PIL import Image

from ..media.frame_prep import to_uint8
from ..models.lora import LoraError, applied_loras
from ..models.sampling import (
    AudioGrid, GeneratedKeyframeSlots, GuiderParams, SamplerStream, StepProgress, StreamGuidance, VideoGrid,
    apply_conditionings, audio_state, defaults_for_checkpoint_metadata, distilled_sigmas, ltx2_sigmas, sample,
    stage2_distilled_sigmas, video_state,
)
from ..models.sampling.ancestral import AncestralEuler, ancestral_stage_1
from ..models.sampling.schedules import PIPELINE_TOKENS, video_token_count
from ..models.video_vae.preview import RGBProjection, fit_rgb_projection, frame_grid
from . import comfy_adapter, model_cache
from .errors import NodeInputError
from .input_checks import validation_result, within_widgets
from .types import AV_LATENT, CONDITIONING, MODEL, VIDEO_VAE, AVLatent, Conditioning, ModelHandle

log = logging.getLogger(__name__)

NODE = "AVGenSampler"
SCHEDULES = ("dev", "dev_token_shift", "distilled", "distilled_stage2")
SAMPLERS = ("auto", "euler", "euler_ancestral")
MAX_SEED = 0xFFFFFFFFFFFFFFFF


def schedule_sigmas(schedule: str, steps: int, denoise: float, video_tokens: int) -> torch.Tensor:
    """Float32 sigmas of a preset, cut for `denoise`.

    dev: the LTX2 scheduler at the official pipelines' 4096 tokens; dev_token_shift: shifted by the latent's
    video token count (F*H*W) instead; distilled / distilled_stage2: the fixed 8- / 3-step lists (`steps`
    ignored). denoise d < 1 runs the end of the schedule: dev presets the last `steps` steps of an int(steps/d)
    step schedule, fixed lists their last max(1, round(n*d)) steps.
    """
    if schedule not in SCHEDULES:
        raise NodeInputError(NODE, f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    if not 0 < denoise <= 1:
        raise NodeInputError(NODE, f"denoise must be in (0, 1], got {denoise}")
    if schedule.startswith("dev"):
        if steps < 2:
            raise NodeInputError(NODE, f"steps must be >= 2 for the dev schedules (the LTX2 scheduler stretches "
                                       f"its last step to sigma 0.1, so one step would never start from noise), "
                                       f"got {steps}")
        tokens = PIPELINE_TOKENS if schedule == "dev" else video_tokens
        total = steps if denoise >= 1 else max(steps, int(steps / denoise))
        return ltx2_sigmas(total, tokens=tokens)[-(steps + 1):]
    fixed = distilled_sigmas() if schedule == "distilled" else stage2_distilled_sigmas()
    kept = fixed.numel() - 1 if denoise >= 1 else max(1, round((fixed.numel() - 1) * denoise))
    return fixed[-(kept + 1):]


def stg_block_words(text: str) -> list[str] | tuple[int, ...]:
    """The stg_blocks widget's syntax: ["auto"], [] ("none" or empty), or block numbers >= 0 (a tuple)."""
    words = [w.lower() for w in text.replace(",", " ").split()]
    if words in (["auto"], ["none"], []):
        return [] if words == ["none"] else words
    if not all(w.isascii() and w.isdigit() for w in words):
        raise NodeInputError(NODE, f"stg_blocks {text!r} must be 'auto', 'none' or block numbers like '29' or "
                                   "'28, 29'")
    return tuple(int(w) for w in words)


def parse_stg_blocks(text: str, model: ModelHandle) -> tuple[tuple[int, ...], list[str]]:
    """Parse the stg_blocks widget: "auto" (the version's official block, or the last block of a smaller
    model), "none" / "" (no block), or block indices separated by commas or spaces. Returns (blocks, notes)."""
    layers = model.config.num_layers
    words = stg_block_words(text)
    if words == ["auto"]:
        try:
            defaults = defaults_for_checkpoint_metadata(model.checkpoint.metadata)
        except ValueError as exc:
            raise NodeInputError(NODE, f"stg_blocks 'auto': {exc}; give block numbers instead") from exc
        block = defaults.video_guider.stg_blocks[0]
        if block < layers:
            return (block,), []
        return (layers - 1,), [f"stg_blocks auto: block {block} does not exist in this {layers}-block model, "
                               f"using its last block {layers - 1}"]
    if not words:
        return (), []
    blocks = words
    bad = [b for b in blocks if b >= layers]
    if bad:
        raise NodeInputError(NODE, f"stg_blocks {bad} do not exist: this model has {layers} blocks "
                                   f"(0..{layers - 1})")
    return tuple(dict.fromkeys(blocks)), []


@contextlib.contextmanager
def _transformer(model: ModelHandle):
    """The DiT to sample with, as a context: the shared cached transformer with the model's LoRA stack applied
    in the forward pass for the duration of the block, and exactly as before after it (also on errors and
    interruptions). The one place where LoRA stacks are applied."""
    if not model.loras:
        yield model.transformer
        return
    try:
        with applied_loras(model.transformer, model.loras, model.family) as transformer:
            yield transformer
    except LoraError as exc:
        raise NodeInputError(NODE, f"applying the LoRA stack ({', '.join(s.name for s in model.loras)}): "
                                   f"{exc}") from exc


def _context(tensor: torch.Tensor | None, batch: int, device, what: str) -> torch.Tensor | None:
    if tensor is None:
        return None
    if tensor.shape[0] not in (1, batch):
        raise NodeInputError(NODE, f"conditioning {what} has a batch of {tensor.shape[0]}, the latent {batch}")
    return tensor.expand(batch, *tensor.shape[1:]).to(device)


def _check_latent(latent: AVLatent, model: ModelHandle, partial: bool) -> None:
    config = model.config
    if latent.video.shape[1] != config.video_in_channels:
        raise NodeInputError(NODE, f"latent video has {latent.video.shape[1]} channels, the model "
                                   f"{config.video_in_channels}: make the latent with this model")
    z, bins = latent.audio.shape[1], latent.audio.shape[3]
    if z * bins != config.audio_in_channels:
        raise NodeInputError(NODE, f"latent audio is {z} x {bins} features per frame, the model takes "
                                   f"{config.audio_in_channels}: make the latent with this model")
    if latent.keep_video and latent.keep_audio:
        raise NodeInputError(NODE, "latent keeps both its video and its audio: nothing to generate (turn keep off "
                                   "on one of the encode nodes)")
    if partial:
        for name, has, keep, encoder in (("video", latent.has_video, latent.keep_video, "AVGen Video Encode"),
                                         ("audio", latent.has_audio, latent.keep_audio, "AVGen Audio Encode")):
            if not has and not keep:
                raise NodeInputError(NODE, f"denoise < 1 (or the distilled_stage2 schedule) starts from the "
                                           f"latent's content, but its {name} is empty: encode one with {encoder} "
                                           "or use denoise 1 with a dev or distilled schedule")


def _stream(state, context, negative, guider: GuiderParams, frozen: bool, noise_scale: float) -> SamplerStream:
    guidance = StreamGuidance(context=context, negative_context=negative if negative is not None else context,
                              guider=GuiderParams() if frozen else guider, frozen=frozen)
    return SamplerStream(state=state, guidance=guidance, noise_scale=noise_scale)


def rgb_projection(preview_vae) -> RGBProjection:
    """The preview VAE's latent-to-RGB map, fitted on first use and cached with the VAE."""
    return model_cache.get_or_load(preview_vae.key + "|rgb_projection", lambda: fit_rgb_projection(preview_vae.vae))


def preview_image(projection: RGBProjection, progress: StepProgress) -> Image.Image:
    """Every latent frame of the first clip of the current x0, one colour per latent cell, as a frame grid in
    reading order (the whole clip moves, also with a pinned first frame)."""
    frames = projection(progress.video_preview()[0])
    return Image.fromarray(to_uint8(frame_grid(frames, comfy_adapter.preview_max_size())))


def _step_callback(reporter: comfy_adapter.ProgressReporter, preview_vae):
    def on_step(progress: StepProgress) -> None:
        comfy_adapter.check_interrupted()
        shown = None
        if preview_vae is not None and reporter.shows_previews:
            shown = preview_image(rgb_projection(preview_vae), progress)
        reporter.update_absolute(progress.step + 1, progress.total, preview=shown)

    return on_step


def ancestral_sampler(sampler: str, schedule: str, model: ModelHandle, seed: int) -> AncestralEuler | None:
    """The ancestral option for a run, None for deterministic Euler. auto follows the official distilled pipeline:
    ancestral for stage 1 (the distilled schedule) of a model_version 2.5+ transformer. Step noise is drawn on the
    CPU like the starting noise, so results do not depend on the device."""
    if sampler == "auto":
        use = schedule == "distilled" and ancestral_stage_1(model.checkpoint.metadata.get("model_version"))
    else:
        use = sampler == "euler_ancestral"
    return AncestralEuler(int(seed), noise_device="cpu") if use else None


def check_values(seed=None, steps=None, schedule=None, denoise=None, stg_blocks=None, video_stg=None,
                 audio_stg=None, **scales) -> None:
    """The constant inputs' checks (None = linked): widget ranges and choices, the schedule's step count,
    stg_blocks' syntax and STG scales without blocks."""
    within_widgets(NODE, AVGenSampler, seed=seed, steps=steps, schedule=schedule, denoise=denoise,
                   video_stg=video_stg, audio_stg=audio_stg, **scales)
    if schedule is not None and steps is not None and denoise is not None:
        schedule_sigmas(schedule, steps, denoise, PIPELINE_TOKENS)
    if stg_blocks is not None and stg_block_words(stg_blocks) == [] and (video_stg or audio_stg):
        raise NodeInputError(NODE, "stg_blocks is 'none' but an STG scale is not 0: give blocks or set "
                                   "video_stg and audio_stg to 0")


class AVGenSampler:
    DESCRIPTION = (
        "Generates video and audio together: denoises the AV latent with the DiT. Per-stream guidance: CFG "
        "(positive vs negative prompt), STG (perturbed self-attention in stg_blocks), modality guidance (the "
        "other stream's influence) and rescale. A stream the encode nodes marked 'keep' is kept exactly "
        "(audio-to-video, video-to-audio); denoise < 1 re-noises and reworks the latent's content (video-to-"
        "video). The noise comes from the seed on the CPU, so results do not depend on the device."
    )
    CATEGORY = "AVGen/sampling"
    FUNCTION = "sample"
    RETURN_TYPES = (AV_LATENT,)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The denoised video and audio latents (decode them with the AVGen decode nodes). The input's "
                       "conditionings (first frame, keyframes, guides) stay attached, so AVGen Latent Upsample and a "
                       "refinement pass honour them again.",)

    @classmethod
    def INPUT_TYPES(cls):
        def scale(default, minimum, tooltip):
            return ("FLOAT", {"default": default, "min": minimum, "max": 100.0, "step": 0.05, "tooltip": tooltip})

        return {
            "required": {
                "model": (MODEL, {"tooltip": "The audio-video DiT."}),
                "conditioning": (CONDITIONING, {"tooltip": "Encoded prompt and negative prompt."}),
                "latent": (AV_LATENT, {"tooltip": "Where to start: an empty latent, or one with encoded video / "
                                                  "audio (kept, or reworked with denoise < 1)."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True,
                                 "tooltip": "Seed of the starting noise (drawn on the CPU)."}),
                "steps": ("INT", {"default": 30, "min": 2, "max": 1000,
                                  "tooltip": "Steps of the dev schedules (official: LTX-2 40, LTX-2.3 30); the "
                                             "distilled schedules have a fixed number of steps."}),
                "schedule": (list(SCHEDULES), {"default": "dev", "tooltip": (
                    "dev: the official LTX2 scheduler (shift for 4096 tokens); dev_token_shift: shift by this "
                    "latent's token count; distilled: the distilled model's 8 steps; distilled_stage2: the 3 "
                    "refinement steps (from sigma 0.909, on a latent with content).")}),
                "denoise": ("FLOAT", {"default": 1.0, "min": 0.01, "max": 1.0, "step": 0.01,
                                      "tooltip": "1 = generate from noise; lower = rework the latent's content, "
                                                 "running only the end of the schedule (needs encoded content)."}),
                "video_cfg": scale(3.0, 1.0, "Video CFG scale (1 = off). Official dev: 3."),
                "audio_cfg": scale(7.0, 1.0, "Audio CFG scale (1 = off). Official dev: 7."),
                "video_stg": scale(1.0, 0.0, "Video STG scale (0 = off). Official dev: 1."),
                "audio_stg": scale(1.0, 0.0, "Audio STG scale (0 = off). Official dev: 1."),
                "stg_blocks": ("STRING", {"default": "auto", "tooltip": (
                    "Blocks whose self-attention STG perturbs: 'auto' (official: LTX-2 29, LTX-2.3 28; the last "
                    "block of a smaller model), 'none', or numbers like '28' or '28, 29'.")}),
                "video_modality": scale(3.0, 0.0, "Audio-to-video modality guidance (1 = off). Official dev: 3."),
                "audio_modality": scale(3.0, 0.0, "Video-to-audio modality guidance (1 = off). Official dev: 3."),
                "video_rescale": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.05,
                                            "tooltip": "Video guidance rescale toward the positive prediction's "
                                                       "spread (0 = off). Official dev: 0.7."}),
                "audio_rescale": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.05,
                                            "tooltip": "Audio guidance rescale (0 = off). Official dev: 0.7."}),
                "batched_passes": ("BOOLEAN", {"default": False,
                                               "tooltip": "Run the guidance passes of a step as one batch: faster "
                                                          "on a large GPU, more memory."}),
                "sampler": (list(SAMPLERS), {"default": "auto", "tooltip": (
                    "euler: deterministic steps. euler_ancestral: every step adds fresh noise (from seed + 10000). "
                    "auto: as the official pipelines, ancestral for the distilled schedule of LTX-2.5 models, "
                    "else euler.")}),
            },
            "optional": {
                "preview_vae": (VIDEO_VAE, {"tooltip": "Video VAE for a live preview of every frame while "
                                                       "sampling (inside ComfyUI): a grid of all latent frames, one "
                                                       "colour per latent cell, from a latent-to-RGB map fitted once "
                                                       "on this VAE's decoder."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, seed=None, steps=None, schedule=None, denoise=None, video_cfg=None, audio_cfg=None,
                        video_stg=None, audio_stg=None, stg_blocks=None, video_modality=None, audio_modality=None,
                        video_rescale=None, audio_rescale=None, sampler=None):
        return validation_result(check_values, seed=seed, steps=steps, schedule=schedule, denoise=denoise,
                                 video_cfg=video_cfg, audio_cfg=audio_cfg, video_stg=video_stg, audio_stg=audio_stg,
                                 stg_blocks=stg_blocks, video_modality=video_modality,
                                 audio_modality=audio_modality, video_rescale=video_rescale,
                                 audio_rescale=audio_rescale, sampler=sampler)

    def sample(self, model: ModelHandle, conditioning: Conditioning, latent: AVLatent, seed: int, steps: int,
               schedule: str, denoise: float, video_cfg: float, audio_cfg: float, video_stg: float,
               audio_stg: float, stg_blocks: str, video_modality: float, audio_modality: float,
               video_rescale: float, audio_rescale: float, batched_passes: bool, sampler: str = "auto",
               preview_vae=None):
        check_values(seed, steps, schedule, denoise, stg_blocks, video_stg, audio_stg, video_cfg=video_cfg,
                     audio_cfg=audio_cfg, video_modality=video_modality, audio_modality=audio_modality,
                     video_rescale=video_rescale, audio_rescale=audio_rescale, sampler=sampler)
        sigmas = schedule_sigmas(schedule, steps, denoise, video_token_count(tuple(latent.video.shape)))
        partial = denoise < 1 or schedule == "distilled_stage2"
        noise_scale = float(sigmas[0]) if partial else 1.0
        _check_latent(latent, model, partial)
        blocks, notes = parse_stg_blocks(stg_blocks, model)
        video_guider = GuiderParams(video_cfg, video_stg, blocks, video_rescale, video_modality)
        audio_guider = GuiderParams(audio_cfg, audio_stg, blocks, audio_rescale, audio_modality)
        if schedule.startswith("distilled") and any(
            g.uses_negative or g.uses_perturbed or g.uses_isolated
            for g, kept in ((video_guider, latent.keep_video), (audio_guider, latent.keep_audio)) if not kept
        ):
            notes.append("distilled schedules are normally run without guidance (cfg 1, stg 0, modality 1)")

        device, batch = model.device, latent.video.shape[0]
        video_grid = VideoGrid(batch, *latent.video.shape[1:], fps=latent.fps, scale_factors=latent.scale_factors)
        v_state = apply_conditionings(video_state(video_grid, latent.video, device), latent.conditionings)
        a_state = apply_conditionings(audio_state(AudioGrid(batch, *latent.audio.shape[1:]), latent.audio, device),
                                      latent.audio_conditionings)
        video = _stream(v_state, _context(conditioning.video, batch, device, "video"),
                        _context(conditioning.negative_video, batch, device, "negative video"),
                        video_guider, latent.keep_video, noise_scale)
        audio = _stream(a_state, _context(conditioning.audio, batch, device, "audio"),
                        _context(conditioning.negative_audio, batch, device, "negative audio"),
                        audio_guider, latent.keep_audio, noise_scale)

        ancestral = ancestral_sampler(sampler, schedule, model, seed)
        notes.append(f"{schedule}: {sigmas.numel() - 1} {'ancestral ' if ancestral else ''}steps from sigma "
                     f"{float(sigmas[0]):.4f}, seed {seed}, stg blocks {list(blocks)}")
        for note in notes:
            log.info("%s: %s", NODE, note)
        generator = torch.Generator("cpu").manual_seed(int(seed))
        with _transformer(model) as transformer, \
                comfy_adapter.ProgressReporter(sigmas.numel() - 1, "AVGen sampling") as reporter:
            result = sample(transformer, video, audio, sigmas, generator=generator, batched_passes=batched_passes,
                            callback=_step_callback(reporter, preview_vae), ancestral=ancestral)
        # generated keyframe slots belong to the pass that generated them (their effect is in its latent)
        carried = tuple(c for c in latent.conditionings if not isinstance(c, GeneratedKeyframeSlots))
        out = latent.replace(video=result.video_latent.to("cpu"), audio=result.audio_latent.to("cpu"),
                             has_video=True, has_audio=True, conditionings=carried)
        return {"ui": {"text": notes}, "result": (out,)}


NODE_CLASS_MAPPINGS = {"AVGenSampler": AVGenSampler}
NODE_DISPLAY_NAME_MAPPINGS = {"AVGenSampler": "AVGen DiT Sampler"}
