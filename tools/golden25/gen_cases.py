"""Generate the LTX-2.5 golden cases of tests/data/golden25 by running the OFFICIAL Lightricks code.

Run with the side environment's python (see setup_side_env.sh), from the repository root, after make_files.py:

    /work/side25/bin/python tools/golden25/gen_cases.py            # write cases/, INDEX.md, generation_log.txt
    /work/side25/bin/python tools/golden25/gen_cases.py --verify   # re-run every saved case, write verify_log.txt
    ... --only NAME_SUBSTRING                                       # restrict either mode to some cases
    ... --index                                                     # only rewrite INDEX.md from the saved cases

Case format: ../shared/golden/README.md; components and input conventions: ../shared/golden_next/ltx25/README.md.
Every case runs twice in float32 (the two runs must be bit-identical) and once in float64 (same official code,
weights and inputs cast; the parts the official code pins to float32 stay float32); per output
atol = nice_ceil(max(8 |f32 - f64|, 2e-6 max(1, max |out|))) x 4, rtol 1e-5, integer outputs exact.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from ltx_core.components.diffusion_steps import EulerAncestralDiffusionStep
from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
from ltx_core.conditioning import (
    ConditioningItemAttentionStrengthWrapper,
    VideoConditionByKeyframeIndex,
    VideoGeneratedKeyframeSlots,
)
from ltx_core.duration_head.model_configurator import DURATION_HEAD_KEY_OPS, DurationHeadConfigurator
from ltx_core.guidance.perturbations import (
    BatchedPerturbationConfig,
    Perturbation,
    PerturbationConfig,
    PerturbationType,
)
from ltx_core.loader.module_ops import ModuleOps
from ltx_core.loader.single_gpu_model_builder import SingleGPUModelBuilder as Builder
from ltx_core.model.transformer.modality import Modality
from ltx_core.model.transformer.model_configurator import LTXV_MODEL_COMFY_RENAMING_MAP, LTXModelConfigurator
from ltx_core.model.video_vae import diffusion_tiling
from ltx_core.model.video_vae.diffusion_video_decoder import DiffusionVideoDecoder
from ltx_core.model.video_vae.model_configurator import (
    VAE_ENCODER_COMFY_KEYS_FILTER,
    VideoDecoderConfigurator,
    VideoEncoderConfigurator,
    video_decoder_sd_ops_for_checkpoint,
)
from ltx_core.model.video_vae.transformer.apply import apply_diffvae_config
from ltx_core.model.video_vae.transformer.config import (
    DiffVAEBlockKind,
    DiffVAEConfig,
    DiffVAEMode,
    NAttentionKind,
)
from ltx_core.text_encoders.gemma.encoders.encoder_configurator import (
    EMBEDDINGS_PROCESSOR_KEY_OPS,
    EmbeddingsProcessorConfigurator,
    GemmaTextEncoderConfigurator,
    get_gemma_ops,
)
from ltx_core.text_encoders.gemma.gemma_assets import resolve_gemma_weight_paths
from ltx_core.tiling import DimensionSizeConfig, TileSizeConfig
from ltx_core.tools import AudioLatentTools, VideoLatentTools
from ltx_core.types import AudioLatentShape, VideoLatentShape, VideoPixelShape
from ltx_core.utils import to_denoised
from ltx_pipelines.utils.blocks import DurationPredictor, PromptEncoder, VideoDecoder
from ltx_pipelines.utils.constants import DISTILLED_SIGMAS
from ltx_pipelines.utils.helpers import post_process_latent, timesteps_from_mask
from ltx_pipelines.utils.model_paths import ModelPaths
from safetensors import safe_open
from safetensors.torch import save_file

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "golden25"
CPU = torch.device("cpu")
FAMILY = "ltx25"
REFERENCE = "ltx-core 1.2.0 @400fd31"
CROSS_MACHINE_FACTOR = 4.0
TRANSFORMER = "transformer.safetensors"
TEXT_ENCODER = "text_encoder.safetensors"
DURATION_HEAD = "duration_head.safetensors"

Tensors = dict[str, torch.Tensor]
Runner = Callable[[Path, dict, Tensors, torch.dtype], Tensors]


# --- shared helpers -------------------------------------------------------------------------------------------------

def cast_floats(x: Tensors, dtype: torch.dtype, keep: tuple[str, ...] = ()) -> Tensors:
    """Floating tensors to `dtype` except the names in `keep` (the official code builds those in float32)."""
    return {k: v.to(dtype) if v.is_floating_point() and k not in keep else v for k, v in x.items()}


def randn(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=gen) * scale


@contextlib.contextmanager
def float32_noise_draws(record: list[tuple[int, ...]]) -> Iterator[None]:
    """Record every generator-driven `torch.randn` shape; draw float64 requests in float32 then cast.

    The float64 probe of the DiffVAE must see the very noise of the float32 run: torch draws different numbers
    for the two dtypes from one seed. Only the dtype of the draw changes, never its order or shape.
    """
    original = torch.randn

    def patched(*size, generator=None, dtype=None, **kwargs):
        if generator is not None:
            shape = tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
            record.append(tuple(int(s) for s in shape))
        if dtype == torch.float64:
            return original(*size, generator=generator, dtype=torch.float32, **kwargs).to(torch.float64)
        return original(*size, generator=generator, dtype=dtype, **kwargs)

    torch.randn = patched
    try:
        yield
    finally:
        torch.randn = original


def checked_build(builder: Builder, dtype: torch.dtype, allowed_unused: Callable[[str], bool] = lambda k: False):
    """Build through the official loader and fail on any unloaded parameter or unexpected file key."""
    model = builder.build(device=CPU, dtype=dtype)
    meta = [n for n, p in model.named_parameters() if p.is_meta] + [n for n, b in model.named_buffers() if b.is_meta]
    if meta:
        raise RuntimeError(f"{builder.model_path}: tensors not loaded: {meta}")
    paths = list(builder.model_path) if isinstance(builder.model_path, tuple) else [builder.model_path]
    loaded = builder.load_sd(paths, builder.registry, CPU, builder.model_sd_ops).sd
    expected = set(model.state_dict())
    extra = sorted(k for k in loaded if k not in expected and not allowed_unused(k))
    missing = sorted(expected - set(loaded))
    if extra or missing:
        raise RuntimeError(f"{builder.model_path}: unexpected keys {extra}, missing keys {missing}")
    return model.eval()


# --- DiffVAE ----------------------------------------------------------------------------------------------------------

UNUSED_STATISTICS = ("per_channel_statistics.channel", "per_channel_statistics.mean-of-stds")
COMBINED_EAGER = DiffVAEConfig(block=DiffVAEBlockKind.COMBINED, w_chunks=1, natten_backend=None,
                               attention=NAttentionKind.EAGER_SDPA, compile_blocks=False, compile_det_stages=False)


@lru_cache(maxsize=8)
def combined_eager_decoder(path: str, dtype: torch.dtype) -> DiffusionVideoDecoder:
    """The diffusion decoder with the combined pathway and the eager neighbourhood attention."""
    op = ModuleOps("diffvae_combined_eager", matcher=lambda m: isinstance(m, DiffusionVideoDecoder),
                   mutator=lambda m: apply_diffvae_config(m, COMBINED_EAGER))
    builder = Builder(model_path=path, model_class_configurator=VideoDecoderConfigurator,
                      model_sd_ops=video_decoder_sd_ops_for_checkpoint(path), module_ops=(op,))
    return checked_build(builder, dtype, allowed_unused=lambda k: k in UNUSED_STATISTICS)


def check_video_encoder_loads(path: str) -> None:
    builder = Builder(model_path=path, model_class_configurator=VideoEncoderConfigurator,
                      model_sd_ops=VAE_ENCODER_COMFY_KEYS_FILTER)
    checked_build(builder, torch.float32, allowed_unused=lambda k: k in UNUSED_STATISTICS)


def tiling_config(spec: dict | None) -> TileSizeConfig | None:
    if spec is None:
        return None
    return TileSizeConfig(**{axis: DimensionSizeConfig(*spec[axis]) for axis in ("frames", "height", "width")})


NOISE_DRAWS: list[tuple[int, ...]] = []


def run_diffvae_decode(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    path = str(family_dir / args["vae_file"])
    latent = x["latent"].to(dtype)
    generator = torch.Generator("cpu").manual_seed(args["seed"])
    NOISE_DRAWS.clear()
    with float32_noise_draws(NOISE_DRAWS):
        if args["mode"] == "chunked_eager":
            block = VideoDecoder(path, dtype, CPU, diffvae_optimization=DiffVAEMode.CHUNKED_EAGER)
            chunks = list(block(latent, tiling_config(args["tiling"]), generator))
        elif args["mode"] == "combined_eager":
            decoder = combined_eager_decoder(path, dtype)
            chunks = list(decoder.decode_video(latent, tiling_config(args["tiling"]), generator))
        else:
            raise ValueError(f"unknown mode {args['mode']}")
    return {"out.frames": torch.cat(chunks, dim=0)}


def run_diffvae_stages(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    decoder = combined_eager_decoder(str(family_dir / args["vae_file"]), dtype)
    latent, _ = diffusion_tiling.ensure_min_latent_shape(x["latent"].to(dtype), decoder.stage_min_tile_sizes)
    latent = diffusion_tiling.pad_trailing_latent_for_natten_border(
        latent, decoder._natten_trailing_pad_latent_frames)
    stage4_input = decoder.forward_stages_1_to_3(latent, drop_leading_frame=True)
    context = decoder.forward_stage_4(stage4_input, drop_leading_frame=True, pad_trailing=True)
    return {"out.stage4_input": stage4_input, "out.context": context}


def run_diffvae_step(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    decoder = combined_eager_decoder(str(family_dir / args["vae_file"]), dtype)
    x = cast_floats(x, dtype)
    prediction = decoder.forward_diff_step(decoder._context_and_x_for_diff_step(x["context"], x["x_t"]), x["t"])
    x_next = decoder._euler_step(x["x_t"], prediction.to(torch.float32), x["t"], x["t_next"])
    return {"out.prediction": prediction, "out.x_next": x_next}


# --- transformer ------------------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def transformer(path: str, dtype: torch.dtype):
    builder = Builder(model_path=path, model_class_configurator=LTXModelConfigurator,
                      model_sd_ops=LTXV_MODEL_COMFY_RENAMING_MAP)
    connectors = ("video_embeddings_connector.", "audio_embeddings_connector.")
    return checked_build(builder, dtype, allowed_unused=lambda k: k.startswith(connectors))


def batched_perturbations(spec: list | None, batch: int, num_blocks: int, dtype: torch.dtype):
    if spec is None:
        return None
    configs = [PerturbationConfig([Perturbation(PerturbationType[p["type"].upper()], p["blocks"]) for p in sample])
               for sample in spec]
    if len(configs) != batch:
        raise ValueError(f"perturbations for {len(configs)} samples, batch {batch}")
    return BatchedPerturbationConfig(configs, num_blocks=num_blocks, device=CPU, dtype=dtype)


def modality(x: Tensors, name: str) -> Modality:
    return Modality(latent=x[f"{name}_latent"], sigma=x[f"{name}_sigma"], timesteps=x[f"{name}_timesteps"],
                    positions=x[f"{name}_positions"], context=x[f"{name}_context"],
                    context_mask=x.get(f"{name}_context_mask"), attention_mask=x.get(f"{name}_attention_mask"),
                    keyframes_mask=x.get(f"{name}_keyframes_mask"))


def run_transformer25(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    model = transformer(str(family_dir / args["checkpoint_file"]), dtype)
    x = cast_floats(x, dtype, keep=("video_positions", "audio_positions"))
    video, audio = modality(x, "video"), modality(x, "audio")
    perturbations = batched_perturbations(args["perturbations"], video.latent.shape[0], model.num_blocks, dtype)
    video_velocity, audio_velocity = model(video, audio, perturbations)
    return {
        "out.video_velocity": video_velocity, "out.audio_velocity": audio_velocity,
        "out.video_denoised": to_denoised(video.latent, video_velocity, video.timesteps),
        "out.audio_denoised": to_denoised(audio.latent, audio_velocity, audio.timesteps),
    }


# --- duration head ----------------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def duration_predictor(path: str, dtype: torch.dtype) -> DurationPredictor:
    builder = Builder(model_path=path, model_class_configurator=DurationHeadConfigurator,
                      model_sd_ops=DURATION_HEAD_KEY_OPS)
    checked_build(builder, dtype)
    predictor = DurationPredictor.from_checkpoint(path, dtype, CPU)
    if predictor is None:
        raise RuntimeError(f"{path}: no duration head found")
    return predictor


def run_duration_head(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    predictor = duration_predictor(str(family_dir / args["checkpoint_file"]), dtype)
    x = cast_floats(x, dtype)
    video, audio = x.get("video_tokens"), x.get("audio_tokens")
    out = {"out.seconds": predictor._head(video, audio)}
    if "frame_rate" in args:
        frames = predictor(video, audio, frame_rate=args["frame_rate"], min_seconds=args["min_seconds"],
                           max_seconds=args["max_seconds"])
        out["out.num_frames"] = torch.tensor([frames], dtype=torch.int64)
    return out


# --- text path --------------------------------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def gemma_text_encoder(path: str, dtype: torch.dtype):
    """The Gemma 4 encoder exactly as PromptEncoder builds it from a single-file TE pack."""
    sd_ops, module_ops = get_gemma_ops(path)
    builder = Builder(model_path=resolve_gemma_weight_paths(path),
                      model_class_configurator=GemmaTextEncoderConfigurator.with_gemma_model_path(path),
                      model_sd_ops=sd_ops, module_ops=module_ops)
    # lm_head is tied: the loader writes it from embed_tokens, so it has no file key of its own.
    return checked_build(builder, dtype)


def run_gemma4_text_encoder(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    encoder = gemma_text_encoder(str(family_dir / TEXT_ENCODER), dtype)
    prompts = args["prompts"]
    ids = torch.tensor([[t for t, _ in encoder.tokenizer.tokenize_with_weights(p)["gemma"]] for p in prompts])
    results = encoder.encode(prompts)
    hidden = torch.stack([torch.cat([h[layer] for h, _ in results]) for layer in range(len(results[0][0]))])
    mask = torch.cat([m for _, m in results]).to(torch.int64)
    hidden = hidden * mask[None, :, :, None].to(hidden.dtype)
    return {"out.input_ids": ids.to(torch.int64), "out.attention_mask": mask, "out.hidden_states": hidden}


def run_prompt_encoder25(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    paths = ModelPaths.from_split(transformer_path=str(family_dir / TRANSFORMER),
                                  text_encoder_path=str(family_dir / TEXT_ENCODER))
    results = PromptEncoder(paths, dtype, CPU)(args["prompts"])
    return {
        "out.video_context": torch.cat([r.video_encoding for r in results]),
        "out.audio_context": torch.cat([r.audio_encoding for r in results]),
        "out.attention_mask": torch.cat([r.attention_mask for r in results]).to(torch.int64),
    }


@lru_cache(maxsize=4)
def embeddings_processor(family_dir: str, dtype: torch.dtype):
    te = str(Path(family_dir) / TEXT_ENCODER)
    builder = Builder(model_path=(str(Path(family_dir) / TRANSFORMER), te),
                      model_class_configurator=EmbeddingsProcessorConfigurator.with_gemma_model_path(te),
                      model_sd_ops=EMBEDDINGS_PROCESSOR_KEY_OPS)
    return checked_build(builder, dtype)


def run_text_connector25(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    processor = embeddings_processor(str(family_dir), dtype)
    hidden = tuple(x["hidden_states"].to(dtype).unbind(0))
    mask = x["attention_mask"]
    video_features, audio_features = processor.feature_extractor(hidden, mask, "left")
    result = processor.process_hidden_states(hidden, mask)
    return {"out.video_context": result.video_encoding, "out.audio_context": result.audio_encoding,
            "out.attention_mask": result.attention_mask.to(torch.int64),
            "dbg.video_features": video_features, "dbg.audio_features": audio_features}


# --- ancestral step ---------------------------------------------------------------------------------------------------

def run_ancestral_step(family_dir: Path, args: dict, x: Tensors, dtype: torch.dtype) -> Tensors:
    x = cast_floats(x, dtype)
    stepper = EulerAncestralDiffusionStep(eta=args["eta"], s_noise=args["s_noise"])
    sample = stepper.step(x["sample"], x["denoised"], x["sigmas"], args["step_index"], noise=x["noise"])
    return {"out.sample": sample, "out.sample_masked": post_process_latent(sample, x["denoise_mask"],
                                                                           x["clean_latent"])}


RUNNERS: dict[str, Runner] = {
    "diffvae_decode": run_diffvae_decode, "diffvae_stages": run_diffvae_stages, "diffvae_step": run_diffvae_step,
    "transformer25": run_transformer25, "duration_head": run_duration_head,
    "gemma4_text_encoder": run_gemma4_text_encoder, "prompt_encoder25": run_prompt_encoder25,
    "text_connector25": run_text_connector25, "ancestral_step": run_ancestral_step,
}


# --- case specifications ----------------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    component: str
    checkpoint: str
    args: dict
    description: str
    inputs: Tensors = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def diffvae_cases() -> list[Case]:
    vae = {"hd24": "video_vae_hd24.safetensors", "x0hd32": "video_vae_x0_hd32.safetensors"}
    decodes = [  # variant, mode, latent (F, H, W), seed, tiling
        ("hd24", "chunked_eager", (1, 1, 2), 7101, None),
        ("hd24", "combined_eager", (2, 1, 3), 7102, None),
        ("hd24", "chunked_eager", (1, 1, 2), 7103, {"frames": [0, 0], "height": [160, 64], "width": [160, 64]}),
        ("x0hd32", "combined_eager", (1, 3, 3), 7104, None),
        ("x0hd32", "chunked_eager", (3, 1, 3), 7105, {"frames": [16, 8], "height": [64, 32], "width": [64, 32]}),
    ]
    cases = []
    for variant, mode, (f, h, w), seed, tiling in decodes:
        gen = torch.Generator().manual_seed(seed)
        name = f"diffvae_decode_{variant}_{mode}_{f}x{h}x{w}" + ("_tiled" if tiling else "")
        cases.append(Case(
            name, "diffvae_decode", vae[variant],
            {"vae_file": vae[variant], "mode": mode, "seed": seed, "tiling": tiling},
            f"DiffVAE decode_video ({variant} decoder, {mode}), normalized latent [1, 8, {f}, {h}, {w}] -> frames "
            f"[f, h, w, 3] in [0, 1]; the initial x_t is ONE torch.randn(args.noise_shape, generator="
            f"torch.Generator('cpu').manual_seed(args.seed)) float32 draw over the size-floored pixel canvas, not "
            f"stored; tiling={tiling}",
            {"latent": randn(gen, 1, 8, f, h, w)}))
    gen = torch.Generator().manual_seed(7201)
    cases.append(Case(
        "diffvae_stages_x0hd32_1x3x2", "diffvae_stages", vae["x0hd32"], {"vae_file": vae["x0hd32"]},
        "DiffVAE stages 1-3 (latent edge-padded to the decoder's minimum latent size 3x3x3, last latent frame "
        "repeated twice for the NA border, un-normalised inside) and stage 4 + trailing crop -> stage-5 context, "
        "x0hd32 decoder (temporal upsample first)",
        {"latent": randn(gen, 1, 8, 1, 3, 2)}))
    steps = [  # variant, t, t_next, context (T, H, W, C)
        ("hd24", 1.0, 2.0 / 3.0, (4, 5, 8, 24)),
        ("hd24", 1.0 / 3.0, 0.0, (4, 5, 8, 24)),
        ("x0hd32", 0.5, 0.0, (3, 3, 5, 32)),
    ]
    for index, (variant, t, t_next, (ct, ch, cw, cc)) in enumerate(steps):
        gen = torch.Generator().manual_seed(7301 + index)
        cases.append(Case(
            f"diffvae_step_{variant}_t{t:.3g}", "diffvae_step", vae[variant], {"vae_file": vae[variant]},
            f"DiffVAE one stage-5 evaluation at t={t:.6g} (timestep x multiplier into the embedder) on [context | "
            f"conv_in_x_t(patchify(x_t))], then the Euler update to t_next={t_next:.6g}; synthetic context",
            {"context": randn(gen, 1, ct, ch, cw, cc, scale=0.5), "x_t": randn(gen, 1, 3, ct, 4 * ch, 4 * cw),
             "t": torch.tensor([t]), "t_next": torch.tensor([t_next])}))
    return cases


def av_inputs(gen: torch.Generator, batch: int, grid: tuple[int, int, int], fps: float, sigmas: list[float],
              conditionings: tuple = (), audio_frozen: bool = False) -> Tensors:
    """Token-layout transformer inputs built with the official latent tools (positions, masks, keyframe marks)."""
    frames, height, width = grid
    pixel = VideoPixelShape(batch=batch, frames=8 * (frames - 1) + 1, height=32 * height, width=32 * width, fps=fps)
    video_tools = VideoLatentTools(VideoLatentPatchifier(patch_size=1), VideoLatentShape(batch, 8, *grid), fps)
    video = video_tools.create_initial_state(CPU, torch.float32)
    for item in conditionings:
        video = item.apply_to(video, video_tools)
    audio_frames = AudioLatentShape.from_video_pixel_shape(pixel).frames
    audio_tools = AudioLatentTools(AudioPatchifier(patch_size=1), AudioLatentShape(batch, 1, audio_frames, 16))
    audio = audio_tools.create_initial_state(CPU, torch.float32)
    sigma = torch.tensor(sigmas)
    audio_sigma = torch.zeros_like(sigma) if audio_frozen else sigma
    audio_mask = torch.zeros_like(audio.denoise_mask) if audio_frozen else audio.denoise_mask
    out = {
        "video_latent": randn(gen, *video.latent.shape), "video_sigma": sigma,
        "video_timesteps": timesteps_from_mask(video.denoise_mask, sigma), "video_positions": video.positions,
        "video_context": randn(gen, batch, 12, 40), "video_keyframes_mask": video.keyframes_mask,
        "audio_latent": randn(gen, *audio.latent.shape), "audio_sigma": audio_sigma,
        "audio_timesteps": timesteps_from_mask(audio_mask, audio_sigma), "audio_positions": audio.positions,
        "audio_context": randn(gen, batch, 12, 16),
    }
    if video.attention_mask is not None:
        out["video_attention_mask"] = video.attention_mask
    return out


def transformer_cases() -> list[Case]:
    def case(name: str, description: str, inputs: Tensors, perturbations: list | None = None) -> Case:
        return Case(f"transformer25_w40_{name}", "transformer25", TRANSFORMER,
                    {"perturbations": perturbations, "checkpoint_file": TRANSFORMER}, description, inputs)

    gen = torch.Generator().manual_seed(7401)
    t2av = av_inputs(gen, 1, (3, 2, 3), 24.0, [0.6])
    cases = [
        case("t2av", "text-to-audio+video forward on grid (3, 2, 3) @ 24 fps, sigma 0.6, 8 latent channels; "
             "keyframes_mask from VideoLatentTools.create_initial_state (first latent frame marked); video FFN "
             "without biases, audio FFN with biases", t2av),
        case("stg_isolation", "same inputs as transformer25_w40_t2av; video self-attention skipped in blocks 0 "
             "and 2, audio self-attention in block 1, video-to-audio cross-attention in every block",
             t2av, [[{"type": "skip_video_self_attn", "blocks": [0, 2]},
                     {"type": "skip_audio_self_attn", "blocks": [1]},
                     {"type": "skip_v2a_cross_attn", "blocks": None}]]),
    ]
    gen = torch.Generator().manual_seed(7402)
    guide = torch.randn((1, 8, 1, 2, 3), generator=gen)
    conditionings = (
        ConditioningItemAttentionStrengthWrapper(VideoConditionByKeyframeIndex(guide, 16, 0.9), 0.5),
        VideoGeneratedKeyframeSlots([5, 11]),
    )
    cases.append(case(
        "guide_and_slots",
        "grid (3, 2, 3) @ 24 fps, sigma 0.75: an image guide at pixel frame 16 (strength 0.9, attention strength "
        "0.5, appended UNMARKED) then generated keyframe slots at pixel frames 5 and 11 (marked, time bounds "
        "[k, k+1)/fps, attention mask extended); keyframes_mask marks the first latent frame and the slots only",
        av_inputs(gen, 1, (3, 2, 3), 24.0, [0.75], conditionings)))
    gen = torch.Generator().manual_seed(7403)
    batch = av_inputs(gen, 2, (2, 3, 2), 30.0, [0.9, 0.3])
    batch["video_timesteps"][1, :6] = 0.0  # sample 1: image-to-video, clean first latent frame
    batch["video_context_mask"] = torch.ones(2, 12, dtype=torch.int64)
    batch["video_context_mask"][0, 9:] = 0
    batch["audio_context_mask"] = torch.ones(2, 12, dtype=torch.int64)
    batch["audio_context_mask"][1, :4] = 0
    cases.append(case(
        "batch2", "batch 2 on grid (2, 3, 2) @ 30 fps: sigmas (0.9, 0.3), sample 1 image-to-video (first latent "
        "frame timesteps 0), context masks (sample 0 video drops its last 3 tokens, sample 1 audio its first 4), "
        "audio self-attention skipped in block 2 for sample 0, audio-to-video cross-attention in blocks 0-1 for "
        "sample 1", batch,
        [[{"type": "skip_audio_self_attn", "blocks": [2]}], [{"type": "skip_a2v_cross_attn", "blocks": [0, 1]}]]))
    gen = torch.Generator().manual_seed(7404)
    cases.append(case(
        "a2v", "audio-to-video: audio frozen (timesteps 0 and sigma 0), video sigma 0.5 on grid (2, 2, 2) @ 25 fps",
        av_inputs(gen, 1, (2, 2, 2), 25.0, [0.5], audio_frozen=True)))
    return cases


def duration_cases() -> list[Case]:
    def case(name: str, description: str, args: dict, inputs: Tensors) -> Case:
        return Case(f"duration_head_q2_{name}", "duration_head", DURATION_HEAD,
                    {"checkpoint_file": DURATION_HEAD, **args}, description, inputs)

    gen = torch.Generator().manual_seed(7501)
    both = {"video_tokens": randn(gen, 1, 24, 40), "audio_tokens": randn(gen, 1, 20, 16)}
    gen = torch.Generator().manual_seed(7502)
    video = {"video_tokens": randn(gen, 1, 128, 40)}
    gen = torch.Generator().manual_seed(7503)
    audio = {"audio_tokens": randn(gen, 3, 10, 16)}
    snapping = ("DurationHead (2 pooling queries, 2 heads) -> seconds; out.num_frames = DurationPredictor snapping "
                "(round(s*fps), clamp to [round(min*fps), round(max*fps)], floor to 8k+1, bump up to the next 8k+1 "
                "capped at the max frame count)")
    return [
        case("both", f"{snapping}, both streams", {"frame_rate": 25.0, "min_seconds": 0.5, "max_seconds": 20.0},
             both),
        case("video_bump", f"{snapping}, video only, minimum above the prediction (bump up)",
             {"frame_rate": 30.0, "min_seconds": 1.5, "max_seconds": 20.0}, video),
        case("both_capped", f"{snapping}, narrow range whose next grid point exceeds the maximum",
             {"frame_rate": 24.0, "min_seconds": 5.1, "max_seconds": 5.3}, both),
        case("audio_batch3", "DurationHead batch 3 on audio tokens only (module only, no snapping)", {}, audio),
    ]


def text_cases() -> list[Case]:
    te_meta = {"text_encoder": TEXT_ENCODER}
    cases = [Case(
        "gemma4_w24_hidden_states", "gemma4_text_encoder", TRANSFORMER,
        {"prompts": ["  A red fox JUMPS over the frozen river at dawn, waves crash: camera pan left!  ", ""]},
        "Gemma 4 unified text encoder (4 layers sliding/full/sliding/full, 4 query heads over 2 KV heads, window 5, "
        "proportional RoPE on half the global head) from the single-file TE pack: LTX tokenizer wrapper (strip, "
        "<bos> prepended by the wrapper, unknown words -> <unk>, left padding to 1024, no EOS) -> all 5 hidden "
        "states stacked (L+1, B, 1024, D), padded positions zeroed; the second prompt is empty (<bos> only)",
        metadata=te_meta)]
    for index, prompts in enumerate([["quiet piano music plays while rain falls , slowly"],
                                     ["The old robot sings a song in the kitchen", "blue whale swims under the sea"]]):
        cases.append(Case(
            f"prompt_encoder25_w40_{index}", "prompt_encoder25", TRANSFORMER, {"prompts": prompts},
            "PromptEncoder on the split pack (transformer + text encoder): Gemma 4 -> V2 feature extractor "
            "(projections from the TE file) -> video/audio connectors (one layer each, from the transformer file)",
            metadata=te_meta))
    for index, (lengths, seq) in enumerate([((128, 1, 77), 128), ((200,), 256)]):
        gen = torch.Generator().manual_seed(7601 + index)
        mask = torch.zeros(len(lengths), seq, dtype=torch.int64)
        for row, n in enumerate(lengths):
            mask[row, seq - n:] = 1
        hidden = randn(gen, 5, len(lengths), seq, 24) * (1.0 + torch.arange(5.0)).view(5, 1, 1, 1)
        cases.append(Case(
            f"text_connector25_w40_{'ragged' if index == 0 else 'long'}", "text_connector25", TRANSFORMER, {},
            f"embeddings processor on synthetic hidden states (L+1=5, B={len(lengths)}, T={seq}, D=24), left-padded "
            f"mask with {', '.join(map(str, lengths))} valid tokens: per-token RMS V2 features -> aggregate Linears "
            f"-> connectors (registers replace padding, index i mod 128)",
            {"hidden_states": hidden, "attention_mask": mask}, te_meta))
    return cases


def ancestral_cases() -> list[Case]:
    cases = []
    for index, (step, eta, s_noise, shape) in enumerate([(1, 1.0, 1.0, (2, 30, 8)), (5, 0.7, 0.5, (1, 24, 8)),
                                                          (3, 0.0, 1.0, (1, 24, 16))]):
        gen = torch.Generator().manual_seed(7701 + index)
        mask = torch.ones(*shape[:2], 1)
        mask[:, : shape[1] // 4] = 0.0
        cases.append(Case(
            f"ancestral_step_{step}_eta{eta}_snoise{s_noise}", "ancestral_step", "",
            {"step_index": step, "eta": eta, "s_noise": s_noise, "noise_shape": list(shape)},
            f"EulerAncestralDiffusionStep(eta={eta}, s_noise={s_noise}) at step {step} of the distilled sigmas; "
            f"out.sample_masked = post_process_latent(out.sample, mask, clean) with the first quarter of the tokens "
            f"clean (mask 0)",
            {"sample": randn(gen, *shape), "denoised": randn(gen, *shape, scale=0.8),
             "sigmas": DISTILLED_SIGMAS.clone(), "noise": randn(gen, *shape), "clean_latent": randn(gen, *shape),
             "denoise_mask": mask}))
    return cases


def all_cases() -> list[Case]:
    return [*diffvae_cases(), *transformer_cases(), *duration_cases(), *text_cases(), *ancestral_cases()]


# --- generation and verification --------------------------------------------------------------------------------

def nice_ceil(value: float) -> float:
    """Smallest 1/2/5 x 10^k that is >= value."""
    exponent = math.floor(math.log10(value))
    for mantissa in (1, 2, 5, 10):
        candidate = mantissa * 10.0 ** exponent
        if candidate >= value * (1 - 1e-12):
            return float(f"{candidate:.3g}")
    raise AssertionError(value)


def run_case(case: Case, family_dir: Path, dtype: torch.dtype) -> Tensors:
    with torch.inference_mode():
        return RUNNERS[case.component](family_dir, case.args, case.inputs, dtype)


def tolerances(golden: Tensors, probe: Tensors) -> tuple[dict, dict[str, float]]:
    tolerance: dict = {"default": {"atol": 1e-05, "rtol": 1e-05}}
    deltas = {}
    for name, value in golden.items():
        if not value.is_floating_point():
            tolerance[name] = {"atol": 0, "rtol": 0}
            deltas[name] = float((probe[name] != value).sum())
            continue
        delta = (probe[name].to(torch.float64) - value.to(torch.float64)).abs().max().item()
        floor = 2e-6 * max(1.0, value.abs().max().item())
        atol = float(f"{nice_ceil(max(8 * delta, floor)) * CROSS_MACHINE_FACTOR:.3g}")
        tolerance[name] = {"atol": atol, "rtol": 1e-05}
        deltas[name] = delta
    return tolerance, deltas


def as_stored(outputs: Tensors) -> Tensors:
    return {k: (v.to(torch.float32) if v.is_floating_point() else v.to(torch.int64)).contiguous()
            for k, v in outputs.items()}


def generate(case: Case, family_dir: Path, log: list[str]) -> None:
    started = time.time()
    golden = as_stored(run_case(case, family_dir, torch.float32))
    if case.component == "diffvae_decode":
        if len(NOISE_DRAWS) != 1:
            raise RuntimeError(f"{case.name}: expected one noise draw, saw {NOISE_DRAWS}")
        case.args["noise_shape"] = list(NOISE_DRAWS[0])
    again = as_stored(run_case(case, family_dir, torch.float32))
    nondeterministic = [k for k in golden if not torch.equal(golden[k], again[k])]
    if nondeterministic:
        raise RuntimeError(f"{case.name}: float32 re-run differs in {nondeterministic}")
    probe = run_case(case, family_dir, torch.float64)
    tolerance, deltas = tolerances(golden, probe)
    metadata = {
        "component": case.component, "args": json.dumps(case.args), "tolerance": json.dumps(tolerance),
        "checkpoint": case.checkpoint, "family": FAMILY, "description": case.description, "reference": REFERENCE,
        "format_version": "1", "model_version": "2.5.0", "cross_machine_factor": str(CROSS_MACHINE_FACTOR),
        **case.metadata,
    }
    tensors = {f"in.{k}": v.clone().contiguous() for k, v in case.inputs.items()} | golden
    save_file(tensors, str(family_dir / "cases" / f"{case.name}.safetensors"), metadata=metadata)
    parts = " ".join(f"{k}{list(golden[k].shape)} d={deltas[k]:.2e} atol={tolerance[k]['atol']:g}" for k in golden)
    log.append(f"{case.name:44s} {case.component:20s} {parts} {time.time() - started:.1f}s")
    print(log[-1], flush=True)


def load_case(path: Path) -> Case:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a mapping)
    inputs = {k[3:]: v for k, v in tensors.items() if k.startswith("in.")}
    case = Case(path.stem, meta["component"], meta["checkpoint"], json.loads(meta["args"]), meta["description"],
                inputs)
    case.metadata = {"expected": {k: v for k, v in tensors.items() if not k.startswith("in.")}}
    return case


def verify(path: Path, family_dir: Path, log: list[str]) -> bool:
    case = load_case(path)
    expected = case.metadata["expected"]
    got = as_stored(run_case(case, family_dir, torch.float32))
    if case.component == "diffvae_decode" and [list(s) for s in NOISE_DRAWS] != [case.args["noise_shape"]]:
        log.append(f"{case.name}: noise draws {NOISE_DRAWS} != args.noise_shape {case.args['noise_shape']}")
        return False
    worst = {k: (got[k].to(torch.float64) - v.to(torch.float64)).abs().max().item() if k in got else math.inf
             for k, v in expected.items()}
    ok = all(k in got and torch.equal(got[k], v) for k, v in expected.items())
    log.append(f"{case.name:44s} {'bit-identical' if ok else 'DIFFERS'} "
               + " ".join(f"{k} max|d|={d:.2e}" for k, d in worst.items()))
    print(log[-1], flush=True)
    return ok


def write_index(family_dir: Path) -> None:
    lines = ["# Case index (golden25)", "",
             "Generated by tools/golden25/gen_cases.py. Format: ../shared/golden/README.md (beside the repository).",
             ""]
    for path in sorted((family_dir / "cases").glob("*.safetensors")):
        case = load_case(path)
        with safe_open(str(path), framework="pt") as f:
            tolerance = json.loads(f.metadata()["tolerance"])
        inputs = ", ".join(f"`in.{k}` {list(v.shape)}" for k, v in sorted(case.inputs.items()))
        outputs = ", ".join(f"`{k}` {list(v.shape)} (atol {tolerance[k]['atol']:g}, rtol {tolerance[k]['rtol']:g})"
                            for k, v in sorted(case.metadata["expected"].items()))
        lines += [f"## {case.name}", f"- component `{case.component}`, weights `{case.checkpoint}`",
                  f"- {case.description}", f"- args `{json.dumps(case.args)}`",
                  f"- inputs: {inputs}", f"- outputs: {outputs}", ""]
    (family_dir / "INDEX.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--verify", action="store_true", help="re-run the saved cases instead of generating")
    parser.add_argument("--only", default="", help="only cases whose name contains this string")
    parser.add_argument("--index", action="store_true", help="only rewrite INDEX.md from the saved cases")
    opts = parser.parse_args()
    family_dir = opts.out
    if opts.index:
        write_index(family_dir)
        return
    log: list[str] = []
    if opts.verify:
        paths = [p for p in sorted((family_dir / "cases").glob("*.safetensors")) if opts.only in p.stem]
        failed = [p.stem for p in paths if not verify(p, family_dir, log)]
        if not opts.only:
            (family_dir / "verify_log.txt").write_text("\n".join(log) + "\n")
        if failed:
            raise SystemExit(f"not reproduced: {failed}")
        return
    (family_dir / "cases").mkdir(parents=True, exist_ok=True)
    for name in ("video_vae_hd24.safetensors", "video_vae_x0_hd32.safetensors"):
        check_video_encoder_loads(str(family_dir / name))
    for case in all_cases():
        if opts.only in case.name:
            generate(case, family_dir, log)
    if not opts.only:
        (family_dir / "generation_log.txt").write_text("\n".join(log) + "\n")
        write_index(family_dir)


if __name__ == "__main__":
    main()
