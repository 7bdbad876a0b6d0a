"""LTX-2.5 decode and duration-head cost (a command, not a test): the diffusion video decoder against the LTX-2.3
convolutional decoder on one tile-sized latent, a paper estimate for a whole clip, and the duration head.

    python tests/bench/bench_ltx25.py [--latent 3,8,8] [--fit-latent 3,16,16] [--repeats 3] [--budget-s 45]
                                      [--dtype auto] [--clip 121,768,512] [--steps 2] [--skip-conv] [--skip-duration]

Diffusion decoder: `DiffusionVideoDecoder` at the released widths (the official class defaults: 128 latent
channels, stages 1024/512/256/256/128 of depths 4/6/4/2/8, head_dim 64, t_emb 384, 2 steps; read through
`DiffusionDecoderConfig.from_vae_config`), random weights, one untiled decode of a `--latent` (F', H', W') latent,
timed stage by stage as `decode` runs them: stages 1-3 (once per clip), stage 4 and each stage-5 step (per tile).
Convolutional decoder: the LTX-2.3 release's `vae` config (shared/reference/configs), random weights, one forward of
the same latent. Each decoder runs in its own process, at least `--repeats` times and then again while the runs fit
in `--budget-s` seconds; printed are the minimum wall time (with that run's CPU seconds: about threads x wall when
the run had its cores to itself) and the peak RSS (VmHWM) during the decode, absolute and above the RSS after the
weights were built. bf16 where the CPU computes it natively (AMX / AVX512-BF16), else float32. Then each decoder
decodes a larger `--fit-latent` once: its time against the volume checks the proportional scaling, and its RSS
growth gives the memory estimate a line (fixed-size chunk buffers + per-volume tensors) instead of a proportion.

Clip estimate: the measured times scaled to a `--clip` (frames, width, height) decode tiled as AVGen Video Decode
does with its default widgets (auto tiling, 768 px / 80-frame tiles, 64 px / 24-frame overlaps; the diffusion
decoder's spatial overlap raised to its stage 4-5 halo when the widget is below it): stages 1-3 by latent volume,
stage 4 by summed tile stage-4 volume, stage 5 and the convolutional decoder by summed tile pixel volume; memory
as the whole-clip buffers the decode holds plus the largest tile's working set on that line. A rough estimate.

Duration head: the released widths (video 4096, audio 2048, pooler 256, 1 query, 4 heads, MLP 256) on 1024 video +
1024 audio context tokens; milliseconds per `predict_seconds` (minimum of many), parameters and bf16 file size.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_models as bm

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
# Released DiffVAE decoder widths (the official class defaults, facts sheet ltx25 §3.1), as a `vae` config dict.
DIFFUSION_VAE_CONFIG = {
    "_class_name": "CausalDiffusionVAE",
    "model_output_type": "v",
    "decoder": {
        "in_channels": 128, "out_channels": 3, "patch_size": 4, "head_dim": 64, "t_emb_dim": 384,
        "default_num_inference_steps": 2, "stage_channels": [1024, 512, 256, 256, 128],
        "stage_depths": [4, 6, 4, 2, 8],
        "stage_kernels": [[3, 7, 7], [3, 7, 7], [3, 5, 5], [3, 5, 5], [3, 3, 3]],
        "upsamples": [[[1, 2, 2], 2], [[2, 1, 1], 2], [[2, 2, 2], 1], [[2, 2, 2], 2]],
        "stage5_kernel": [3, 7, 7],
    },
}
DURATION_TOKENS = 1024
DURATION_REPEATS = 30
DURATION_BUDGET_S = 10.0


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cpu_features() -> str:
    """torch's CPU capability and whether the CPU computes bf16 natively (AMX tiles / AVX512-BF16)."""
    cpu = torch.cpu
    flags = [name for name, probe in (("AMX", "_is_amx_tile_supported"), ("AVX512-BF16", "_is_avx512_bf16_supported"))
             if getattr(cpu, probe, lambda: False)()]
    return f"{torch.backends.cpu.get_cpu_capability()}{''.join(' + ' + f for f in flags)}"


def compute_dtype(choice: str) -> torch.dtype:
    """bf16 where the CPU computes it natively (AMX or AVX512-BF16), else float32, unless `choice` names one."""
    if choice != "auto":
        return DTYPES[choice]
    from comfyui_avgen.models.cpu_linear import native_low_precision_cpu
    return torch.bfloat16 if native_low_precision_cpu() else torch.float32


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS count (VmHWM) of this process from its current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class Meter:
    """Minimum seconds (and the CPU seconds of that run) and largest peak RSS of named sections over repeated
    runs, in a fresh process."""

    def __init__(self, base_mib: float):
        self.base_mib = base_mib
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self.count = 0

    def section(self, name: str, fn, *args, **kwargs):
        """`fn(*args, **kwargs)`, timed and its peak RSS recorded under `name`."""
        reset_peak_rss()
        start, cpu_start = time.perf_counter(), time.process_time()
        out = fn(*args, **kwargs)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        if elapsed < self.seconds.get(name, float("inf")):
            self.seconds[name], self.cpu_seconds[name] = elapsed, cpu
        self.peak[name] = max(self.peak.get(name, 0.0), peak_rss_mib())
        return out

    def runs(self, repeats: int, budget_s: float):
        """Run indices: at least `repeats`, then more while the next run should end within `budget_s` of the first
        (the minimum of more runs is less disturbed by other processes on shared CPUs)."""
        start = time.perf_counter()
        while True:
            yield self.count
            self.count += 1
            elapsed = time.perf_counter() - start
            if self.count >= repeats and elapsed * (self.count + 1) / self.count > budget_s:
                return

    def result(self) -> dict:
        return {"seconds": self.seconds, "cpu_seconds": self.cpu_seconds, "peak_mib": self.peak,
                "base_mib": self.base_mib, "runs": self.count}


def diffusion_config():
    from comfyui_avgen.models.diffusion_decoder import DiffusionDecoderConfig
    return DiffusionDecoderConfig.from_vae_config({"vae": DIFFUSION_VAE_CONFIG})


def diffusion_decoder():
    from comfyui_avgen.models.diffusion_decoder import DiffusionVideoDecoder
    return DiffusionVideoDecoder(diffusion_config())


def conv_decoder():
    from comfyui_avgen.models.video_vae import build_video_decoder
    return build_video_decoder(bm.load_config("ltx23"))


def sampling_step(model, context: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                  t_next: torch.Tensor) -> torch.Tensor:
    """One stage-5 step of the denoising loop: prediction at t, Euler to t_next (float32)."""
    from comfyui_avgen.models.diffusion_decoder.sampling import euler_step
    return euler_step(x_t, model.predict(context, x_t, t), t, t_next, model.config.model_output_type)


def diffusion_child(spec: dict) -> dict:
    """Untiled decode of a random latent, stage by stage in the order `decode.iter_decode_pixels` runs them."""
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.models.diffusion_decoder.padding import (
        append_last_frames,
        pad_to_min_latent,
    )
    from comfyui_avgen.models.diffusion_decoder.sampling import inference_timesteps
    from comfyui_avgen.models.diffusion_decoder.tiling import plan_tiles

    dtype = DTYPES[spec["dtype"]]
    model = bm.fill_random(build_on_meta(diffusion_decoder), dtype)
    config = model.config
    meter = Meter(bm.current_rss_mib())
    g = torch.Generator().manual_seed(0)
    latent = torch.randn(1, config.latent_channels, *spec["latent"], generator=g)
    padded, _ = pad_to_min_latent(latent, config.min_latent_size)
    (tile,) = plan_tiles(config, config.stage4_size(tuple(padded.shape[2:])), None)
    timesteps = inference_timesteps(spec["steps"])
    shapes = {}
    with torch.inference_mode():
        for _ in meter.runs(spec["repeats"], spec["budget_s"]):
            ghosted = append_last_frames(padded, config.ghost_latent_frames)
            features = meter.section("stages 1-3", model.stages_1_to_3, ghosted)
            t, h, w = tile.stage4
            context = meter.section("stage 4", model.stage_4, features[:, t.start:, h, w],
                                    drop_first_frame=tile.is_origin, crop_ghost=tile.trailing)
            p = config.patch_size
            x = torch.randn(1, config.out_channels, context.shape[1], context.shape[2] * p, context.shape[3] * p,
                            generator=g)
            for i in range(len(timesteps)):
                step = timesteps[i].expand(1)
                following = timesteps[i + 1].expand(1) if i + 1 < len(timesteps) else torch.zeros(1)
                x = meter.section(f"stage 5 step {i + 1}", sampling_step, model, context, x, step, following)
            shapes = {"latent_padded": list(padded.shape[2:]), "stage4_input": list(features.shape[1:4]),
                      "context": list(context.shape[1:4]), "pixels": list(x.shape[2:])}
    # what each section's cost scales with: the latent (ghost frames in), the stage-4 input, the pixels
    volumes = {name: math.prod(x.shape[2:]) for name in meter.seconds}
    volumes.update({"stages 1-3": math.prod(ghosted.shape[2:]), "stage 4": math.prod(features.shape[1:4])})
    return {**meter.result(), **shapes, "volumes": volumes, "params": param_count(model),
            "weights_mib": bm.weight_mib(model)}


def conv_child(spec: dict) -> dict:
    from comfyui_avgen.models.checkpoint import build_on_meta

    dtype = DTYPES[spec["dtype"]]
    model = bm.fill_random(build_on_meta(conv_decoder), dtype)
    meter = Meter(bm.current_rss_mib())
    g = torch.Generator().manual_seed(0)
    z = torch.randn(1, model.config.latent_channels, *spec["latent"], generator=g).to(dtype)
    timestep = torch.full((1,), 0.05) if model.timestep_conditioning else None
    with torch.inference_mode():
        for _ in meter.runs(spec["repeats"], spec["budget_s"]):
            pixels = meter.section("decoder", model, z, timestep)
    return {**meter.result(), "pixels": list(pixels.shape[2:]), "volumes": {"decoder": math.prod(pixels.shape[2:])},
            "params": param_count(model), "weights_mib": bm.weight_mib(model)}


def duration_child(spec: dict) -> dict:
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.models.duration_head import (
        CHECKPOINT_PREFIX,
        DurationHead,
        DurationHeadConfig,
    )
    from safetensors.torch import save_file

    dtype = DTYPES[spec["dtype"]]
    config = DurationHeadConfig()
    head = bm.fill_random(build_on_meta(lambda: DurationHead(config)), dtype)
    meter = Meter(bm.current_rss_mib())
    g = torch.Generator().manual_seed(0)
    video = torch.randn(1, spec["tokens"], config.video_context_dim, generator=g)
    audio = torch.randn(1, spec["tokens"], config.audio_context_dim, generator=g)
    head.predict_seconds(video, audio)  # warm-up: first-call kernel selection
    for _ in meter.runs(spec["repeats"], spec["budget_s"]):
        meter.section("predict", head.predict_seconds, video, audio)
    bf16 = {CHECKPOINT_PREFIX + k: v.to(torch.bfloat16).contiguous() for k, v in head.state_dict().items()}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "duration_head.safetensors"
        save_file(bf16, str(path))
        file_bytes = path.stat().st_size
    return {**meter.result(), "params": param_count(head), "file_bytes": file_bytes,
            "config": {k: getattr(config, k) for k in vars(config)}}


CHILDREN = {"diffusion": diffusion_child, "conv": conv_child, "duration": duration_child}


def run_child(kind: str, spec: dict) -> dict:
    # glibc serves large blocks by mmap and returns them at once, so RSS follows the live tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    done = subprocess.run([sys.executable, __file__, "--child", kind, "--spec", json.dumps(spec)],
                          check=False, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _dims(values) -> str:
    return "x".join(str(v) for v in values)


def print_sections(result: dict) -> None:
    base = result["base_mib"]
    for name, seconds in result["seconds"].items():
        peak = result["peak_mib"][name]
        cpu = result["cpu_seconds"][name]
        print(f"  {name:18s} {seconds:8.2f} s (CPU {cpu:7.2f} s)   peak RSS {peak:6.0f} MiB (+{peak - base:5.0f} "
              f"over the weights)")
    total, cpu = sum(result["seconds"].values()), sum(result["cpu_seconds"].values())
    peak = max(result["peak_mib"].values())
    print(f"  {'total':18s} {total:8.2f} s (CPU {cpu:7.2f} s)   peak RSS {peak:6.0f} MiB (+{peak - base:5.0f}); "
          f"weights {result['weights_mib']:.0f} MiB, process after build {base:.0f} MiB")


def node_tiling_defaults() -> dict:
    """AVGen Video Decode's default tiling widgets."""
    from comfyui_avgen.nodes.decode import AVGenVideoDecode
    required = AVGenVideoDecode.INPUT_TYPES()["required"]
    names = ("tiling", "spatial_tile", "spatial_overlap", "temporal_tile", "temporal_overlap")
    return {name: required[name][1]["default"] for name in names}


def clip_latent(frames: int, width: int, height: int) -> tuple[int, int, int]:
    return (frames - 1) // 8 + 1, height // 32, width // 32


def diffusion_clip_plan(latent_thw, widgets: dict) -> tuple[list, str]:
    """The tiles AVGen Video Decode runs for a clip with the diffusion decoder: its auto rule (`tiling_for`), the
    widget sizes, overlaps raised to the decoder's stage 4-5 halo as the node does."""
    from comfyui_avgen.models.diffusion_decoder import DiffusionTiling
    from comfyui_avgen.models.diffusion_decoder.tiling import plan_tiles
    from comfyui_avgen.nodes.decode import tiling_for

    config = diffusion_config()
    frames_min, pixels_min = config.min_tile_overlap
    frames, pixels = max(widgets["temporal_overlap"], frames_min), max(widgets["spatial_overlap"], pixels_min)
    asked = (("temporal overlap", widgets["temporal_overlap"], frames),
             ("spatial overlap", widgets["spatial_overlap"], pixels))
    raised = [f"{name} {given} -> {used}" for name, given, used in asked if given != used]
    options = tiling_for(widgets["tiling"], torch.zeros(1, 1, *latent_thw), config.scale_factors,
                         widgets["spatial_tile"], widgets["spatial_overlap"], widgets["temporal_tile"],
                         widgets["temporal_overlap"])
    tiling = None
    if options.spatial_tile is not None or options.temporal_tile is not None:
        tiling = DiffusionTiling.from_dict({"frames": [widgets["temporal_tile"], frames],
                                            "height": [widgets["spatial_tile"], pixels],
                                            "width": [widgets["spatial_tile"], pixels]})
    padded = tuple(max(n, m) for n, m in zip(latent_thw, config.min_latent_size))
    note = f"overlaps raised to the decoder's minimum: {', '.join(raised)}; " if raised and tiling else ""
    return plan_tiles(config, config.stage4_size(padded), tiling), note


def conv_clip_tiles(latent_thw, widgets: dict) -> list[tuple[int, int, int]]:
    """Latent (t, h, w) of each tile `iter_decode_tiled` runs for the node's default tiling."""
    from comfyui_avgen.models.video_vae.tiling import split_axis
    from comfyui_avgen.nodes.decode import tiling_for

    options = tiling_for(widgets["tiling"], torch.zeros(1, 1, *latent_thw), (8, 32, 32), widgets["spatial_tile"],
                         widgets["spatial_overlap"], widgets["temporal_tile"], widgets["temporal_overlap"])
    t_spans = split_axis(latent_thw[0], options.temporal_tile, options.temporal_overlap)
    h_spans = split_axis(latent_thw[1], options.spatial_tile, options.spatial_overlap)
    w_spans = split_axis(latent_thw[2], options.spatial_tile, options.spatial_overlap)
    t_lengths = [e - (b if i == 0 else b - 1) for i, (b, e) in enumerate(t_spans)]
    return [(t, h1 - h0, w1 - w0) for t in t_lengths for h0, h1 in h_spans for w0, w1 in w_spans]


def _growth(result: dict, section: str) -> float:
    """Peak RSS of a section above the RSS after the weights were built, MiB."""
    return result["peak_mib"][section] - result["base_mib"]


def growth_at(section: str, volume: float, measured: dict, larger: dict | None) -> float:
    """A section's RSS growth (MiB) at `volume` (the section's latent / stage-4 / pixel volume): the line through
    the two measurements (fixed-size chunk buffers + per-volume tensors), or proportional to the one there is."""
    v1, g1 = measured["volumes"][section], _growth(measured, section)
    if larger is None or section not in larger.get("volumes", {}):
        return g1 * volume / v1
    v2, g2 = larger["volumes"][section], _growth(larger, section)
    slope = max(g2 - g1, 0.0) / (v2 - v1)
    return g1 + slope * (volume - v1)


def estimate_diffusion_clip(latent: tuple[int, int, int], widgets: dict, measured: dict, larger: dict | None,
                            dtype: torch.dtype) -> None:
    """Time: stages 1-3 by latent volume (ghost frames included), stage 4 by summed tile stage-4-input volume,
    stage 5 by summed tile pixel volume. Memory: the whole-clip buffers the decode keeps (stage-4 input features,
    the float32 noise canvas) plus the largest tile's stage 4-5 working set (`growth_at`)."""
    config = diffusion_config()
    tiles, note = diffusion_clip_plan(latent, widgets)
    ghost = config.ghost_latent_frames
    padded = [max(n, m) for n, m in zip(latent, config.min_latent_size)]
    stage4_full = config.stage4_size((padded[0] + ghost, *padded[1:]))
    # stage-4-input frames of the repeated last latent frames, which the trailing tile also runs through stage 4
    ghost4 = stage4_full[0] - config.stage4_size(tuple(padded))[0]
    tile4 = [_span_volume(tile.stage4) + (ghost4 * _span_volume(tile.stage4[1:]) if tile.trailing else 0)
             for tile in tiles]
    tile5 = [_span_volume(tile.pixels) for tile in tiles]
    latent13 = _volume([padded[0] + ghost, *padded[1:]])
    volumes = measured["volumes"]
    s = measured["seconds"]
    steps = [name for name in s if name.startswith("stage 5")]
    stage13 = s["stages 1-3"] * latent13 / volumes["stages 1-3"]
    stage4 = s["stage 4"] * sum(tile4) / volumes["stage 4"]
    stage5 = sum(s[name] * sum(tile5) / volumes[name] for name in steps)
    measured5 = volumes[steps[0]]
    print(f"  LTX-2.5 diffusion decoder: {len(tiles)} tile(s) ({note}stage-5 pixels {sum(tile5) / measured5:.1f}x "
          f"the measured latent's)")
    print(f"    time   stages 1-3 {stage13:6.0f} s + stage 4 {stage4:6.0f} s + stage 5 ({len(steps)} steps) "
          f"{stage5:6.0f} s = {(stage13 + stage4 + stage5) / 60:5.1f} min")
    features = _volume(stage4_full) * config.stage_channels[3] * dtype.itemsize / 2**20
    canvas = config.pixel_size(tuple(padded))
    noise = config.out_channels * _volume(canvas) * 4 / 2**20
    working = max(growth_at("stage 4", max(tile4), measured, larger),
                  *(growth_at(name, max(tile5), measured, larger) for name in steps))
    whole = growth_at("stages 1-3", latent13, measured, larger)
    print(f"    memory above the weights ~{max(whole, features + noise + working) / 1024:4.1f} GiB: stages 1-3 "
          f"{whole:5.0f} MiB; then stage-4 input features {features:4.0f} MiB + noise canvas {noise:4.0f} MiB + "
          f"largest tile's stage 4-5 working set {working:5.0f} MiB")


def estimate_conv_clip(latent: tuple[int, int, int], widgets: dict, measured: dict, larger: dict | None) -> None:
    """Time scaled by summed tile pixel volume; memory: the largest tile's working set (`growth_at`)."""
    tiles = conv_clip_tiles(latent, widgets)
    pixels = [(8 * (t - 1) + 1) * 32 * h * 32 * w for t, h, w in tiles]
    measured_pixels = _volume(measured["pixels"])
    seconds = measured["seconds"]["decoder"] * sum(pixels) / measured_pixels
    working = growth_at("decoder", max(pixels), measured, larger)
    print(f"  LTX-2.3 convolutional decoder: {len(tiles)} tile(s), pixels {sum(pixels) / measured_pixels:.1f}x the "
          f"measured latent's")
    print(f"    time   {seconds:6.0f} s = {seconds / 60:5.1f} min")
    print(f"    memory above the weights ~{working / 1024:4.1f} GiB (largest tile's working set)")


def usable(result: dict | None) -> bool:
    return result is not None and "error" not in result


def print_scaling_check(name: str, measured: dict, larger: dict | None) -> None:
    """The larger latent's time and growth against the measured one's, for the same sections."""
    if not usable(larger):
        if larger is not None:
            print(f"  {name}: error {larger['error']}")
        return
    last = list(measured["volumes"])[-1]
    ratio = larger["volumes"][last] / measured["volumes"][last]
    seconds = sum(larger["seconds"].values()) / sum(measured["seconds"].values())
    growth = max(_growth(larger, k) for k in larger["volumes"])
    print(f"  {name}: pixels {_dims(larger['pixels'])} ({ratio:.2f}x the volume) took {seconds:.2f}x the time "
          f"(one run: {sum(larger['seconds'].values()):.2f} s, CPU {sum(larger['cpu_seconds'].values()):.2f} s); "
          f"peak RSS +{growth:.0f} MiB over the weights")


def print_clip_estimate(args, measured: dict[str, dict | None], larger: dict[str, dict | None],
                        dtype: torch.dtype) -> None:
    frames, width, height = args.clip
    latent = clip_latent(frames, width, height)
    widgets = node_tiling_defaults()
    output = 3 * frames * width * height * 4 / 2**20
    print(f"\nESTIMATE (paper extrapolation from the measurements above, not measured): {frames} frames "
          f"{width}x{height} (latent {_dims(latent)}), AVGen Video Decode default tiling {widgets}; both decoders "
          f"also hold the float32 output frames ({output:.0f} MiB). Time in proportion to the volume; memory on the "
          f"line through the two latents' growth")
    if usable(measured["diffusion"]):
        estimate_diffusion_clip(latent, widgets, measured["diffusion"], larger.get("diffusion"), dtype)
    if usable(measured["conv"]):
        estimate_conv_clip(latent, widgets, measured["conv"], larger.get("conv"))


def _volume(dims) -> int:
    return math.prod(dims)


def _span_volume(slices) -> int:
    return math.prod(sl.stop - sl.start for sl in slices)


def print_duration(result: dict, dtype: torch.dtype) -> None:
    print(f"\nduration head, {str(dtype).removeprefix('torch.')}, {result['config']}, {DURATION_TOKENS} video + "
          f"{DURATION_TOKENS} audio context tokens (runs once per prompt)")
    if "error" in result:
        print(f"  error: {result['error']}")
        return
    peak = max(result["peak_mib"].values())
    print(f"  {result['seconds']['predict'] * 1e3:8.1f} ms per prediction (min of {result['runs']}); "
          f"{result['params']:,} parameters; bf16 safetensors file {result['file_bytes'] / 2**20:.2f} MiB; "
          f"peak RSS +{peak - result['base_mib']:.0f} MiB over the weights")


def print_params() -> None:
    from comfyui_avgen.models.checkpoint import build_on_meta

    counts = {"LTX-2.5 diffusion decoder": param_count(build_on_meta(diffusion_decoder)),
              "LTX-2.3 convolutional decoder": param_count(build_on_meta(conv_decoder))}
    print("\nparameters (built modules; bf16 = 2 bytes each)")
    for name, count in counts.items():
        print(f"  {name:30s} {count / 1e6:8.1f} M  ({count * 2 / 2**20:6.0f} MiB in bf16)")
    ratio = counts["LTX-2.5 diffusion decoder"] / counts["LTX-2.3 convolutional decoder"]
    print(f"  diffusion / convolutional: {ratio:.2f}x")


def parse_dims(text: str) -> list[int]:
    return [int(v) for v in text.split(",")] if text else []


DECODER_TITLES = {
    "diffusion": "LTX-2.5 diffusion decoder (released widths, random weights)",
    "conv": "LTX-2.3 convolutional decoder (released config, random weights)",
}


def measure_decoders(args, dtype_name: str) -> tuple[dict, dict]:
    """Both decoders on `--latent` (repeated), then once on `--fit-latent`; prints the tables."""
    kinds = ["diffusion"] + ([] if args.skip_conv else ["conv"])
    spec = {"latent": args.latent, "dtype": dtype_name, "repeats": args.repeats, "budget_s": args.budget_s,
            "steps": args.steps}
    measured: dict[str, dict | None] = {"diffusion": None, "conv": None}
    for kind in kinds:
        result = measured[kind] = run_child(kind, spec)
        extra = f", untiled, {args.steps} steps" if kind == "diffusion" else ""
        print(f"\n{DECODER_TITLES[kind]}, latent 128x{_dims(args.latent)}{extra}, min of {result.get('runs', 0)} runs")
        if "error" in result:
            print(f"  error: {result['error']}")
            continue
        if kind == "diffusion":
            print(f"  stage-4 input {_dims(result['stage4_input'])}, stage-5 context {_dims(result['context'])}")
        print(f"  pixels {_dims(result['pixels'])}")
        print_sections(result)
    larger: dict[str, dict | None] = {}
    if args.fit_latent:
        print(f"\nscaling check, latent 128x{_dims(args.fit_latent)}, one run each (its growth also fixes the "
              f"memory estimate's line)")
        for kind in kinds:
            larger[kind] = run_child(kind, {**spec, "latent": args.fit_latent, "repeats": 1, "budget_s": 0.0})
            if usable(measured[kind]):
                print_scaling_check(DECODER_TITLES[kind].split(" (")[0], measured[kind], larger[kind])
    return measured, {k: v for k, v in larger.items() if usable(v)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latent", type=parse_dims, default=[3, 8, 8],
                        help="latent frames, height, width of the measured decode")
    parser.add_argument("--fit-latent", type=parse_dims, default=[3, 16, 16],
                        help="a larger latent decoded once (scaling check, memory line); empty to skip")
    parser.add_argument("--clip", type=parse_dims, default=[121, 768, 512],
                        help="frames, width, height of the estimated clip")
    parser.add_argument("--repeats", type=int, default=3, help="fewest runs of each decoder")
    parser.add_argument("--budget-s", type=float, default=45.0,
                        help="more runs of a decoder while they fit in this many seconds")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--dtype", choices=("auto", *DTYPES), default="auto")
    parser.add_argument("--skip-conv", action="store_true")
    parser.add_argument("--skip-duration", action="store_true")
    parser.add_argument("--child", choices=tuple(CHILDREN))
    parser.add_argument("--spec")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child](json.loads(args.spec))))
        return 0
    started, start_load = time.perf_counter(), os.getloadavg()[0]
    dtype = compute_dtype(args.dtype)
    name = {torch.bfloat16: "bf16", torch.float32: "fp32"}[dtype]
    print(f"{cpu_name()} ({cpu_features()}), {os.cpu_count()} CPUs, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, {name}")
    measured, larger = measure_decoders(args, name)
    print_clip_estimate(args, measured, larger, dtype)
    if not args.skip_duration:
        print_duration(run_child("duration", {"dtype": name, "tokens": DURATION_TOKENS, "repeats": DURATION_REPEATS,
                                              "budget_s": DURATION_BUDGET_S}), dtype)
    print_params()
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s; 1-minute load average {start_load:.1f} at the "
          f"start, {os.getloadavg()[0]:.1f} at the end (other processes on the CPUs inflate the times; printed is the "
          f"minimum over the runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
