"""Block streaming benchmark (issue 22; a command, not a test).

    python tests/bench/bench_streaming.py [--layers 4 8 16] [--video-tokens 384] [--audio-tokens 26]
                                          [--text-tokens 128] [--repeats 2] [--dir DIR] [--keep-file]
                                          [--estimate-only]

1. CPU, measured. A synthetic LTX-2.3 DiT in the released layout (the `model.diffusion_model.` keys and shapes of the
   release manifest, ../shared/reference/manifests/, random bf16 weights N(0, 0.02^2), the release's config with
   max(--layers) layers) is written to DIR once. For each layer count and mode a fresh subprocess loads the first L
   blocks in bf16 (memory-mapped, as the loaders do), resident or streamed with a 0 GB budget (every block streams;
   on a CPU that hands each block's file pages back after its forward), runs one warm-up forward and --repeats
   timed forwards (image-to-video style inputs), and reports peak RSS (VmHWM), the peaks of its anonymous and
   file-mapped parts (sampled every 20 ms), and the fastest forward's wall and CPU seconds. Overhead = streamed /
   resident seconds - 1 (goal <= 15 %); streaming's peak RSS should not grow with the layer count.
2. GPU, on paper (no GPU here): the full 48-layer 22B DiT in bf16 at 121 frames 768x512 (16 x 24 x 16 = 6144
   video tokens, 126 audio tokens, 1024 text tokens), budgets 24 / 16 / 8 GB: resident blocks, bytes streamed per
   forward and their transfer time on PCIe 4.0 / 5.0 x16, against the forward's FLOPs (counted from the config):
   the GPU throughput below which the copies hide behind the compute (streaming then costs ~nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_models as bm  # noqa: E402
from synthetic_checkpoint import bf16_header  # noqa: E402

MANIFEST = bm.CONFIGS.parent / "manifests" / "manifest_ltx23_22b_transformer.tsv"
PREFIX = "model.diffusion_model."
BLOCKS = PREFIX + "transformer_blocks."
CHUNK = 2**24  # elements of random weights generated at a time
GB = 1e9
PCIE = {"PCIe 4.0 x16": 25.0, "PCIe 5.0 x16": 50.0}  # GB/s of pinned host-to-device copies in practice
GPU_BUDGETS_GB = (24, 16, 8)
GPU_TOKENS = {"video": 16 * 24 * 16, "audio": 126, "text": 1024}  # 121 frames 768x512 (LTX-2.3 VAE), 5.04 s audio


# --- the synthetic checkpoint --------------------------------------------------------------------------------


def manifest_shapes(layers: int) -> dict[str, tuple[int, ...]]:
    """{released key: shape} of the DiT (text connectors left out) with blocks 0..layers-1."""
    shapes = {}
    for line in MANIFEST.read_text().splitlines():
        if line.startswith(("#", "checkpoint_key")):
            continue
        key, shape = line.split("\t")[:2]
        if "_embeddings_connector." in key:
            continue
        if key.startswith(BLOCKS) and int(key[len(BLOCKS):].split(".")[0]) >= layers:
            continue
        shapes[key] = tuple(json.loads(shape.replace("(", "[").replace(")", "]").replace(",]", "]")))
    return shapes


def write_checkpoint(path: Path, layers: int) -> float:
    """A bf16 safetensors file of random weights in the released layout; returns its size in GB."""
    config = bm.load_config("ltx23", layers)
    shapes = manifest_shapes(layers)
    header, offset = bf16_header(config, shapes)
    g = torch.Generator().manual_seed(0)
    with open(path, "wb") as f:
        f.write(header)
        for shape in shapes.values():
            remaining = int(torch.Size(shape).numel())
            while remaining:
                n = min(remaining, CHUNK)
                chunk = (torch.randn(n, generator=g) * bm.INIT_STD).to(torch.bfloat16)
                f.write(chunk.view(torch.int16).numpy().tobytes())
                remaining -= n
    return (len(header) + offset) / GB


# --- one measured run (a subprocess) ---------------------------------------------------------------------------


class RssPeaks:
    """Peaks of RssAnon and RssFile (bytes) sampled from /proc/self/status in a thread."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.anon, self.file = interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def status() -> dict[str, int]:
        with open("/proc/self/status") as f:
            return {k: int(v.split()[0]) * 1024 for k, v in (line.split(":", 1) for line in f)
                    if k in ("RssAnon", "RssFile", "VmHWM")}

    def _run(self):
        while not self._stop.is_set():
            s = self.status()
            self.anon, self.file = max(self.anon, s["RssAnon"]), max(self.file, s["RssFile"])
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def load_first_blocks(path: str, layers: int):
    """The DiT with the file's first `layers` blocks, bf16 on the CPU (memory-mapped), CPU GEMM paths on."""
    from comfyui_avgen.models.checkpoint import CheckpointFile, build_on_meta, load_module
    from comfyui_avgen.models.cpu_linear import use_cpu_linears
    from comfyui_avgen.models.transformer import build_transformer

    ckpt = CheckpointFile(path)
    config = ckpt.config
    config["transformer"]["num_layers"] = layers
    model = build_on_meta(lambda: build_transformer(config))
    ignore = [k[len(PREFIX):] for k in ckpt.keys_with_prefix(BLOCKS) if int(k[len(BLOCKS):].split(".")[0]) >= layers]
    load_module(model, ckpt, PREFIX, dtype=torch.bfloat16, ignore=ignore, what="DiT")
    use_cpu_linears(model)
    return model.eval()


def child(args) -> None:
    from comfyui_avgen.models.streaming import stream_blocks

    with RssPeaks() as peaks:
        model = load_first_blocks(args.file, args.child_layers)
        if args.mode == "streamed":
            stream_blocks(model, "transformer_blocks", "cpu", budget_bytes=0)
        video, audio = bm.dit_inputs(model, args.video_tokens, args.audio_tokens, args.text_tokens, torch.bfloat16)
        walls, cpus = [], []
        with torch.no_grad():
            for _ in range(1 + args.repeats):
                wall, cpu = time.perf_counter(), time.process_time()
                model(video, audio)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
    hwm = RssPeaks.status()["VmHWM"]
    best = min(range(1, len(walls)), key=lambda i: walls[i])
    print(json.dumps({"layers": args.child_layers, "mode": args.mode, "peak_rss": hwm, "peak_anon": peaks.anon,
                      "peak_file": peaks.file, "seconds": walls[best], "cpu_seconds": cpus[best],
                      "warmup_seconds": walls[0], "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def run_child(args, layers: int, mode: str) -> dict:
    command = [sys.executable, __file__, "--child-layers", str(layers), "--mode", mode, "--file", str(args.file),
               "--video-tokens", str(args.video_tokens), "--audio-tokens", str(args.audio_tokens),
               "--text-tokens", str(args.text_tokens), "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{mode} run with {layers} layers failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the paper estimate for a GPU ----------------------------------------------------------------------------


def attention_flops(queries: int, keys: int, query_dim: int, key_dim: int, inner: int, heads: int,
                    gated: bool) -> int:
    """q / k / v / out projections (+ the per-head gate) and the two attention matmuls."""
    linear = 2 * queries * query_dim * inner * 2 + 2 * keys * key_dim * inner * 2
    gate = 2 * queries * query_dim * heads if gated else 0
    return linear + gate + 4 * queries * keys * inner


def forward_flops(config: dict, video: int, audio: int, text: int) -> int:
    """FLOPs of one DiT forward (batch 1), counted from the config: the blocks' attentions and feed-forwards."""
    from comfyui_avgen.models.transformer import TransformerConfig

    c = TransformerConfig.from_checkpoint_config(config)
    dv, da = c.video_dim, c.audio_dim
    inner_v, inner_a = c.video_heads * c.video_head_dim, c.audio_heads * c.audio_head_dim
    gated = c.gated_attention
    block = (attention_flops(video, video, dv, dv, inner_v, c.video_heads, gated)
             + attention_flops(video, text, dv, c.video_context_dim, inner_v, c.video_heads, gated)
             + 2 * video * dv * 4 * dv * 2
             + attention_flops(audio, audio, da, da, inner_a, c.audio_heads, gated)
             + attention_flops(audio, text, da, c.audio_context_dim, inner_a, c.audio_heads, gated)
             + 2 * audio * da * 4 * da * 2
             + attention_flops(video, audio, dv, da, inner_a, c.audio_heads, gated)
             + attention_flops(audio, video, da, dv, inner_a, c.audio_heads, gated))
    return block * c.num_layers


def gpu_estimate() -> list[str]:
    from comfyui_avgen.models.checkpoint import build_on_meta
    from comfyui_avgen.models.streaming import SLOTS
    from comfyui_avgen.models.transformer import build_transformer

    config = bm.load_config("ltx23")
    model = build_on_meta(lambda: build_transformer(config))
    blocks = model.transformer_blocks
    block_bytes = 2 * sum(t.numel() for t in blocks[0].state_dict().values())
    total = 2 * sum(t.numel() for t in model.state_dict().values())
    fixed = total - block_bytes * len(blocks)
    flops = forward_flops(config, GPU_TOKENS["video"], GPU_TOKENS["audio"], GPU_TOKENS["text"])
    lines = [f"48-layer LTX-2.3 DiT in bf16: {total / GB:.1f} GB weights ({fixed / GB:.2f} GB outside the blocks, "
             f"{block_bytes / GB:.3f} GB per block); one forward at 121 frames 768x512 ({GPU_TOKENS['video']} "
             f"video + {GPU_TOKENS['audio']} audio + {GPU_TOKENS['text']} text tokens): {flops / 1e12:.0f} TFLOP",
             f"{'budget':>8} {'resident':>9} {'streamed/fwd':>13} " + " ".join(f"{k + ' s/fwd':>18}" for k in PCIE)
             + f" {'hidden below (TFLOP/s)':>24}"]
    for budget in GPU_BUDGETS_GB:
        room = budget * GB - fixed - SLOTS * block_bytes  # as BlockStreaming.resident_blocks_for
        resident = max(0, min(len(blocks), int(room // block_bytes)))
        streamed = (len(blocks) - resident) * block_bytes
        seconds = [streamed / GB / rate for rate in PCIE.values()]
        hidden = " / ".join(f"{flops / s / 1e12:.0f}" if s else "-" for s in seconds)
        lines.append(f"{budget:>6} GB {resident:>5} / 48 {streamed / GB:>10.1f} GB "
                     + " ".join(f"{s:>18.2f}" for s in seconds) + f" {hidden:>24}")
    lines.append("Each forward copies the streamed blocks once (CFG / STG passes each copy them again); the copy "
                 "of block i+1 runs during block i, so a GPU sustaining less than the last column hides it.")
    return lines


# --- main ------------------------------------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        return f"{names[0]} x {len(names)} logical" if names else platform.processor()
    except OSError:
        return platform.processor()


def measure(args) -> list[str]:
    layer_counts = sorted(set(args.layers))
    args.file = Path(args.dir) / f"ltx23_dit_{max(layer_counts)}layers_bf16.safetensors"
    if not args.file.exists():
        started = time.perf_counter()
        size = write_checkpoint(args.file, max(layer_counts))
        print(f"wrote {args.file} ({size:.1f} GB) in {time.perf_counter() - started:.0f} s", flush=True)
    lines = [f"CPU: {cpu_name()}, torch threads {torch.get_num_threads()}, load average "
             f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; tokens: {args.video_tokens} video, "
             f"{args.audio_tokens} audio, {args.text_tokens} text; bf16 weights memory-mapped",
             f"{'layers':>6} {'mode':>9} {'peak RSS':>9} {'anon':>7} {'file':>7} {'s/fwd':>7} {'cpu s':>7} "
             f"{'overhead':>9}"]
    for layers in layer_counts:
        rows = {mode: run_child(args, layers, mode) for mode in ("resident", "streamed")}
        for mode, row in rows.items():
            overhead = row["seconds"] / rows["resident"]["seconds"] - 1 if mode == "streamed" else 0.0
            lines.append(f"{layers:>6} {mode:>9} {row['peak_rss'] / GB:>7.2f}GB {row['peak_anon'] / GB:>5.2f}GB "
                         f"{row['peak_file'] / GB:>5.2f}GB {row['seconds']:>7.2f} {row['cpu_seconds']:>7.2f} "
                         f"{overhead * 100:>8.1f}%")
            print(lines[-1], flush=True)
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--video-tokens", type=int, default=384)
    parser.add_argument("--audio-tokens", type=int, default=26)
    parser.add_argument("--text-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--keep-file", action="store_true", help="keep the synthetic checkpoint for another run")
    parser.add_argument("--estimate-only", action="store_true", help="only the GPU estimate")
    parser.add_argument("--child-layers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["resident", "streamed"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_layers:
        child(args)
        return 0
    lines = [] if args.estimate_only else measure(args)
    lines += ["", "GPU estimate (on paper):", *gpu_estimate()]
    print("\n".join(lines))
    if not args.estimate_only and not args.keep_file:
        args.file.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
