"""DiT forward benchmark at full width and reduced depth (a command, not a test).

    python tests/bench/bench_dit.py [--layers 2] [--video-tokens 1536] [--audio-tokens 42] [--text-tokens 128]
                                    [--family ltx2|ltx23] [--dtypes fp32,bf16] [--repeats 2]

For each dtype it runs in a fresh subprocess (so peak RSS is that run's own) and prints: time per forward and
per layer, the FLOPs of one layer (counted by torch's FLOP counter), the achieved GFLOP/s, the GFLOP/s of a
plain `torch.mm` of a same-sized matmul (tokens x 4096 x 4096) in the same dtype, their ratio, and the peak RSS
next to the bytes of the weights. Weights are random: speed and memory do not depend on their values.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "configs"
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load_config(family: str, layers: int) -> dict:
    name = {"ltx2": "ltx2_19b_metadata.json", "ltx23": "ltx23_22b_metadata.json"}[family]
    meta = json.loads((CONFIGS / name).read_text())
    config = meta["config"] if "config" in meta else meta
    if isinstance(config, str):
        config = json.loads(config)
    config = json.loads(json.dumps(config))
    config["transformer"]["num_layers"] = layers
    if "model_version" in meta:
        config["model_version"] = meta["model_version"]
    return config


def _inputs(model, video_tokens: int, audio_tokens: int, text_tokens: int, dtype):
    import torch

    from comfyui_avgen.models.positions import audio_positions, video_positions
    from comfyui_avgen.models.transformer.inputs import StreamInput

    cfg = model.config
    # The 19B DiT projects the raw text features (caption_channels wide) itself; 2.3 takes connector outputs.
    video_ctx = cfg.caption_channels if cfg.caption_projection else cfg.video_context_dim
    audio_ctx = cfg.caption_channels if cfg.caption_projection else cfg.audio_context_dim
    width = 24
    height = video_tokens // (width * 4) if video_tokens % (width * 4) == 0 else 1
    frames = video_tokens // (width * height)
    g = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=g).to(dtype)

    sigma = torch.full((1,), 0.7)
    video = StreamInput(
        latent=randn(1, video_tokens, cfg.video_in_channels),
        timesteps=torch.full((1, video_tokens, 1), 0.7).to(dtype),
        sigma=sigma,
        positions=video_positions(1, frames, height, width, fps=24.0),
        context=randn(1, text_tokens, video_ctx),
    )
    audio = StreamInput(
        latent=randn(1, audio_tokens, cfg.audio_in_channels),
        timesteps=torch.full((1, audio_tokens, 1), 0.7).to(dtype),
        sigma=sigma,
        positions=audio_positions(1, audio_tokens),
        context=randn(1, text_tokens, audio_ctx),
    )
    return video, audio


def run_one(args) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from comfyui_avgen.models.transformer.model import build_transformer

    torch.manual_seed(0)
    dtype = getattr(torch, DTYPES[args.dtype])
    config = _load_config(args.family, args.layers)
    model = build_transformer(config).to(dtype).eval()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    video, audio = _inputs(model, args.video_tokens, args.audio_tokens, args.text_tokens, dtype)
    rss_before = _peak_rss_mib()
    with torch.inference_mode():
        model(video, audio)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            model(video, audio)
            times.append(time.perf_counter() - start)
        counter = FlopCounterMode(display=False)
        with counter:
            model(video, audio)
    forward_s = min(times)
    flops = counter.get_total_flops()
    n = args.video_tokens
    a = torch.randn(n, 4096, dtype=dtype)
    b = torch.randn(4096, 4096, dtype=dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(3):
        torch.mm(a, b)
    mm_s = (time.perf_counter() - start) / 3
    return {
        "dtype": args.dtype,
        "layers": args.layers,
        "forward_s": forward_s,
        "per_layer_s": forward_s / args.layers,
        "gflop_per_forward": flops / 1e9,
        "gflops_achieved": flops / forward_s / 1e9,
        "mm_gflops": 2 * n * 4096 * 4096 / mm_s / 1e9,
        "weights_mib": weight_bytes / 2**20,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_before_forward_mib": rss_before,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", default="ltx2", choices=["ltx2", "ltx23"])
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--video-tokens", type=int, default=1536)
    parser.add_argument("--audio-tokens", type=int, default=42)
    parser.add_argument("--text-tokens", type=int, default=128)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.dtype:  # child process: one measurement, JSON on stdout
        print(json.dumps(run_one(args)))
        return 0
    print(f"DiT {args.family}, full width, {args.layers} layers, {args.video_tokens} video + {args.audio_tokens} "
          f"audio + {args.text_tokens} text tokens")
    print(f"{'dtype':6s} {'forward s':>10s} {'layer s':>9s} {'GFLOP':>8s} {'GFLOP/s':>8s} {'mm GFLOP/s':>11s} "
          f"{'ratio':>6s} {'weights MiB':>12s} {'peak RSS MiB':>13s}")
    for name in args.dtypes.split(","):
        cmd = [sys.executable, __file__, "--dtype", name] + [
            f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k not in ("dtype", "dtypes")]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"{r['dtype']:6s} {r['forward_s']:10.3f} {r['per_layer_s']:9.3f} {r['gflop_per_forward']:8.1f} "
              f"{r['gflops_achieved']:8.1f} {r['mm_gflops']:11.1f} {r['gflops_achieved'] / r['mm_gflops']:6.2f} "
              f"{r['weights_mib']:12.0f} {r['peak_rss_mib']:13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
