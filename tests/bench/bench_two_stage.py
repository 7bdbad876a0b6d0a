"""Two-stage generation cost (a command, not a test): the latent upsampler's memory and time on a long clip, and a
two-stage run's DiT cost against one full-resolution pass.

    python tests/bench/bench_two_stage.py [--family ltx23] [--frames 121] [--width 1536] [--height 1024]
                                          [--mid-channels 512] [--chunks 1,4,16] [--steps 30] [--skip-dit]

Upsampler: the released spatial x2 layout (128 latent channels, `--mid-channels`, 4 blocks per stage) with random
weights, on the stage-1 latent of a `--frames` clip whose output is `--width` x `--height`; bf16 where the CPU
computes it natively, else float32. Each frames-per-chunk setting, and the plain whole-clip graph of the official
implementation (models/upsampler/whole_clip.py), runs in its own process: printed are the growth of
peak RSS during the forward over the RSS before it, and the time.

DiT: one real-width block of the release (bench_rows.dit_row) timed at the stage-1 and the full-size token counts;
a step's cost is layers x passes x that block time (4 passes per step for the official dev guidance: conditional,
negative, perturbed, isolated; 1 for the distilled refinement). Printed: stage 1 (`--steps` dev steps at half size)
+ upsampling + stage 2 (3 distilled steps at full size) against `--steps` dev steps at full size, and stage 2 alone
against full-size dev steps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_models as bm  # noqa: E402
from comfyui_avgen.models.upsampler import DEFAULT_FRAMES_PER_CHUNK  # noqa: E402

LATENT_CHANNELS, FRAMES_PER_LATENT, PIXELS_PER_LATENT = 128, 8, 32
DEV_PASSES, DISTILLED_PASSES, STAGE_2_STEPS = 4, 1, 3


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def compute_dtype() -> torch.dtype:
    from comfyui_avgen.models.cpu_linear import native_low_precision_cpu
    return torch.bfloat16 if native_low_precision_cpu() else torch.float32


def latent_size(frames: int, width: int, height: int, scale: int = 1) -> tuple[int, int, int]:
    """(latent frames, latent height, latent width) of a clip at 1/scale of the size."""
    return (frames - 1) // FRAMES_PER_LATENT + 1, height // (PIXELS_PER_LATENT * scale), width // (
        PIXELS_PER_LATENT * scale)


def reset_peak_rss() -> None:
    """Restart the kernel's peak-RSS count (VmHWM) of this process from its current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_since_reset_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def upsample_child(spec: dict) -> dict:
    """One upsampler forward: RSS growth and seconds (chunk 0 = the plain whole-clip reference graph)."""
    from comfyui_avgen.models.upsampler import LatentUpsampler, UpsamplerConfig
    from comfyui_avgen.models.upsampler.whole_clip import whole_clip_forward

    dtype = getattr(torch, spec["dtype"])
    config = UpsamplerConfig(in_channels=LATENT_CHANNELS, mid_channels=spec["mid"], num_blocks_per_stage=4)
    model = bm.fill_random(LatentUpsampler(config), dtype).eval()
    latent = torch.randn(1, LATENT_CHANNELS, *spec["latent"]).to(dtype)
    reset_peak_rss()
    before = bm.current_rss_mib()
    start = time.perf_counter()
    with torch.inference_mode():
        out = model(latent, spec["chunk"]) if spec["chunk"] else whole_clip_forward(model, latent)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "growth_mib": peak_rss_since_reset_mib() - before,
            "output_mib": out.numel() * out.element_size() / 2**20, "shape": list(out.shape)}


def dit_child(spec: dict) -> dict:
    from bench_rows import dit_row
    return dit_row(spec)


def run_child(kind: str, spec: dict) -> dict:
    # glibc serves large blocks by mmap and returns them at once, so RSS follows the live tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    done = subprocess.run([sys.executable, __file__, "--child", kind, "--spec", json.dumps(spec)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_upsampler(args, dtype: torch.dtype) -> float | None:
    latent = latent_size(args.frames, args.width, args.height, scale=2)
    mid_mib = args.mid_channels * latent[0] * latent[1] * latent[2] * 4 * dtype.itemsize / 2**20
    print(f"\nlatent upsampler x2, {args.mid_channels} mid channels, {str(dtype).removeprefix('torch.')}: stage-1 "
          f"latent {LATENT_CHANNELS}x{'x'.join(map(str, latent))} -> {args.width}x{args.height}, {args.frames} "
          f"frames (one full-size mid-channel activation: {mid_mib:.0f} MiB)")
    seconds = {}
    for chunk in [*args.chunks, 0]:
        spec = {"mid": args.mid_channels, "latent": list(latent), "chunk": chunk,
                "dtype": str(dtype).removeprefix("torch.")}
        r = run_child("upsample", spec)
        label = f"{chunk} frames per chunk" if chunk else "plain whole-clip graph"
        if "error" in r:
            print(f"  {label:24s} error: {r['error']}")
            continue
        print(f"  {label:24s} peak RSS growth {r['growth_mib']:7.0f} MiB  {r['seconds']:7.1f} s  "
              f"(output latent {r['output_mib']:.0f} MiB)")
        seconds[chunk] = r["seconds"]
    return seconds.get(DEFAULT_FRAMES_PER_CHUNK, next(iter(seconds.values()), None))


def bench_dit(args, dtype: torch.dtype, upsample_s: float | None) -> None:
    frames, full_h, full_w = latent_size(args.frames, args.width, args.height)
    _, half_h, half_w = latent_size(args.frames, args.width, args.height, scale=2)
    audio = round(args.frames / 24.0 * 25)
    layers = bm.load_config(args.family)["transformer"]["num_layers"]
    times = {}
    for name, tokens in (("half", frames * half_h * half_w), ("full", frames * full_h * full_w)):
        spec = {"family": args.family, "dtype": str(dtype).removeprefix("torch.").replace("bfloat16", "bf16")
                .replace("float32", "fp32"), "video_tokens": tokens, "audio_tokens": audio, "text_tokens": 1024,
                "layers": 1, "linear": "auto", "quick": False, "repeats": 1, "gemm_paths": []}
        r = run_child("dit", spec)
        if "error" in r:
            print(f"  DiT block at {tokens} tokens: error {r['error']}")
            return
        times[name] = r["layer_s"]
        print(f"  one {args.family} block, {tokens} video + {audio} audio tokens: {r['layer_s']:.2f} s "
              f"({r['gflop']:.0f} GFLOP)")
    step = {name: layers * t for name, t in times.items()}
    stage_1 = args.steps * DEV_PASSES * step["half"]
    stage_2 = STAGE_2_STEPS * DISTILLED_PASSES * step["full"]
    single = args.steps * DEV_PASSES * step["full"]
    two_stage = stage_1 + stage_2 + (upsample_s or 0.0)
    print(f"\n  {layers} blocks; dev step = {DEV_PASSES} passes, distilled step = {DISTILLED_PASSES} pass")
    print(f"  stage 1: {args.steps} dev steps at {args.width // 2}x{args.height // 2}   {stage_1 / 60:8.1f} min")
    print(f"  upsample                                  {(upsample_s or 0.0) / 60:8.1f} min")
    print(f"  stage 2: {STAGE_2_STEPS} distilled steps at {args.width}x{args.height}  {stage_2 / 60:8.1f} min")
    print(f"  two-stage total                           {two_stage / 60:8.1f} min")
    print(f"  one pass: {args.steps} dev steps at {args.width}x{args.height}  {single / 60:8.1f} min "
          f"({single / two_stage:.1f}x the two-stage time)")
    print(f"  stage 2 costs {stage_2 / single:.3f} of the full-size pass ({100 * stage_2 / two_stage:.0f}% of the "
          f"two-stage run); a full-size step costs {step['full'] / step['half']:.1f}x a half-size step")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=("ltx2", "ltx23"), default="ltx23")
    parser.add_argument("--frames", type=int, default=121)
    parser.add_argument("--width", type=int, default=1536)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--mid-channels", type=int, default=512)
    parser.add_argument("--chunks", type=lambda s: [int(c) for c in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--skip-dit", action="store_true")
    parser.add_argument("--child", choices=("upsample", "dit"))
    parser.add_argument("--spec")
    args = parser.parse_args(argv)
    if args.child:
        result = (upsample_child if args.child == "upsample" else dit_child)(json.loads(args.spec))
        print(json.dumps(result))
        return 0
    dtype = compute_dtype()
    print(f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    upsample_s = bench_upsampler(args, dtype)
    if not args.skip_dit:
        bench_dit(args, dtype, upsample_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
