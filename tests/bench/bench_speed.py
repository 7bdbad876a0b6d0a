"""DiT / attention / video VAE / checkpoint-open speed and memory benchmark (a command, not a test).

    python tests/bench/bench_speed.py [--quick] [--skip-bf16-1536] [--threads N] [--only dit,attention,vae,ckpt]
                                      [--family ltx2|ltx23] [--json results.json]

Every row runs in its own subprocess (peak RSS = that row's own `ru_maxrss`). Rows:

- DiT, full width (19B: video 4096, audio 2048, 32 heads), 2 layers, 384 and 1536 video + 42 audio + 128 text
  tokens, image-to-video timesteps (two distinct values), random weights; fp32 through F.linear (MKL) and
  through oneDNN, bf16 through F.linear and through the automatic CPU path (`models/cpu_linear.py`: float32
  compute on CPUs without native bf16), timed as sampler steps (the text context projected once per run).
  Columns: seconds per layer (block loop / layers), per forward, outside
  the blocks; GFLOP of one layer (torch's FLOP counter); achieved GFLOP/s; the ratio of that rate to the rate
  of the layer's own Linear calls run as bare GEMMs through F.linear (MKL) and through oneDNN in the same
  dtype (n/a where oneDNN cannot run the dtype); peak RSS, weights and an estimate of one block's activations;
  RSS ratio = (peak - RSS after imports) / (weights + activations), target <= 1.15.
- attention: one fp32 self-attention call, 32 heads x 128, 6k and 8k tokens, SDPA vs the chunked kernel.
- video VAE decoder: full-size config, latent 4x8x12 -> 25x256x384 frames, fp32; ratio to the 12 s measured
  for the official decoder on a 2-core AVX2 machine (compare on that machine kind only).
- checkpoint open: a synthetic bf16 single file (2 full-width DiT layers + video and audio VAE, released key
  names) in a temporary directory; cold `open_ltx` (pages dropped first), then building the DiT and both VAEs
  on the meta device; bytes read and RSS growth.

--quick: reduced DiT width (4 heads), 1 layer, 96/192 tokens; attention 1k/2k tokens x 2 heads; VAE latent
2x2x2; checkpoint with the reduced DiT. It proves the command end to end in about a minute.
--skip-bf16-1536: leave out the bf16 F.linear DiT row at 1536 tokens and the bf16 F.linear GEMM reference of the
other bf16 1536 row (minutes each where bf16 GEMMs are slow, as on AVX2-only CPUs).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OFFICIAL_VAE_SECONDS = 12.0  # official decoder, latent 4x8x12, fp32, 2-core AVX2 EPYC
OFFICIAL_VAE_FRAMES = [25, 256, 384]
COLUMNS = [("row", 30, "s"), ("layer s", 8, ".3f"), ("fwd s", 8, ".3f"), ("out s", 6, ".3f"), ("GFLOP", 7, ".1f"),
           ("GFLOP/s", 8, ".1f"), ("/MKL", 5, ".2f"), ("/oDNN", 5, ".2f"), ("peak MiB", 8, ".0f"),
           ("wts MiB", 8, ".0f"), ("act MiB", 7, ".0f"), ("RSS x", 5, ".2f")]


def plan(args) -> list[tuple[str, str, dict]]:
    """(label, row kind, spec) of every row to run."""
    quick = args.quick
    rows = []
    if "dit" in args.only:
        for tokens in (96, 192) if quick else (384, 1536):
            for dtype, linear, name in (("fp32", "auto", "F.linear"), ("fp32", "onednn", "oneDNN"),
                                        ("bf16", "aten", "F.linear"), ("bf16", "auto", "auto")):
                if args.skip_bf16_1536 and dtype == "bf16" and linear == "aten" and tokens == 1536:
                    print(f"(skipped: DiT bf16 {tokens} F.linear, --skip-bf16-1536)")
                    continue
                slow_reference = args.skip_bf16_1536 and dtype == "bf16" and tokens == 1536
                spec = {"family": args.family, "dtype": dtype, "linear": linear, "video_tokens": tokens,
                        "audio_tokens": 42, "text_tokens": 128, "layers": 1 if quick else 2, "quick": quick,
                        "repeats": 1 if quick else 2, "gemm_paths": ["onednn"] if slow_reference else ["mkl", "onednn"]}
                rows.append((f"DiT {dtype} {tokens} {name}", "dit", spec))
    if "attention" in args.only:
        heads = 2 if quick else 32
        for tokens in (1024, 2048) if quick else (6144, 8192):
            for backend in ("sdpa", "chunked"):
                spec = {"tokens": tokens, "heads": heads, "head_dim": 128, "backend": backend}
                rows.append((f"attn {tokens}x{heads}h {backend}", "attention", spec))
    if "vae" in args.only:
        latent = [2, 2, 2] if quick else [4, 8, 12]
        rows.append((f"video VAE dec {'x'.join(map(str, latent))}", "vae",
                     {"family": args.family, "latent": latent, "dtype": "fp32"}))
    if "ckpt" in args.only:
        rows.append(("checkpoint open", "checkpoint", {"family": args.family, "layers": 1 if quick else 2,
                                                        "quick": quick}))
    return rows


def run_child(kind: str, spec: dict, threads: int | None) -> dict:
    cmd = [sys.executable, str(HERE / "bench_speed.py"), "--row", kind, "--spec", json.dumps(spec)]
    env = dict(os.environ)
    if threads:
        cmd += ["--threads", str(threads)]
        env["OMP_NUM_THREADS"] = str(threads)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {tail}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def checkpoint_child(spec: dict, threads: int | None) -> dict:
    """Write the synthetic file in one process, time opening it in another, remove it."""
    with tempfile.TemporaryDirectory(prefix="avgen_bench_") as tmp:
        spec = dict(spec, path=os.path.join(tmp, "synthetic.safetensors"))
        written = run_child("write_checkpoint", spec, threads)
        return written if "error" in written else run_child("checkpoint", spec, threads)


def note(kind: str, r: dict) -> str:
    if "error" in r:
        return "FAILED " + r["error"]
    if kind == "dit":
        return f"forward growth {r['forward_growth_mib']:.0f} MiB"
    if kind == "attention":
        return f"+{r['forward_growth_mib']:.0f} MiB (q,k,v {r['qkv_mib']:.0f} MiB)"
    if kind == "vae":
        speedup = (f"official {OFFICIAL_VAE_SECONDS:.0f} s / ours = {OFFICIAL_VAE_SECONDS / r['forward_s']:.2f}x"
                   if r["pixels"] == OFFICIAL_VAE_FRAMES else "no official figure at this size")
        return f"frames {'x'.join(map(str, r['pixels']))}, {speedup}, +{r['forward_growth_mib']:.0f} MiB"
    return (f"open {r['forward_s'] * 1e3:.0f} ms + meta build {r['build_s'] * 1e3:.0f} ms; read "
            f"{r['read_mib']:.2f} MiB (disk {r['disk_read_mib']:.2f}) of {r['file_gib']:.2f} GiB; RSS "
            f"+{r['open_rss_mib']:.0f} MiB open, +{r['total_rss_mib']:.0f} MiB with builds")


def table_line(label: str, kind: str, r: dict) -> str:
    values = {"row": label, "layer s": r.get("layer_s"), "fwd s": r.get("forward_s"), "out s": r.get("outside_s"),
              "GFLOP": r.get("gflop"), "GFLOP/s": r.get("gflops"), "/MKL": r.get("vs_mkl"),
              "/oDNN": r.get("vs_onednn"), "peak MiB": r.get("peak_mib"), "wts MiB": r.get("weights_mib"),
              "act MiB": r.get("act_mib"), "RSS x": r.get("rss_ratio")}
    cells = []
    for name, width, fmt in COLUMNS:
        value = values[name]
        text = "-" if value is None else format(value, fmt)
        cells.append(text.ljust(width) if name == "row" else text.rjust(width))
    return " ".join(cells) + "  " + note(kind, r)


def child_main(args) -> int:
    import torch

    sys.path.insert(0, str(HERE))
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    from bench_rows import ROWS

    result = ROWS[args.row](json.loads(args.spec))
    print(json.dumps(result))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: prove the command end to end")
    parser.add_argument("--skip-bf16-1536", action="store_true", help="leave out the slow bf16 F.linear 1536 row")
    parser.add_argument("--threads", type=int, help="torch threads in every row (default: torch's default)")
    parser.add_argument("--only", default="dit,attention,vae,ckpt", help="comma-separated row groups")
    parser.add_argument("--family", default="ltx2", choices=["ltx2", "ltx23"])
    parser.add_argument("--json", help="also write every row's raw numbers to this file")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.row:
        return child_main(args)
    args.only = set(args.only.split(","))
    unknown = args.only - {"dit", "attention", "vae", "ckpt"}
    if unknown:
        parser.error(f"--only: unknown row groups {sorted(unknown)}")
    import torch

    threads = args.threads or torch.get_num_threads()
    print(f"bench_speed: {args.family}{' --quick' if args.quick else ''}, {threads} threads, torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(" ".join(name.ljust(w) if name == "row" else name.rjust(w) for name, w, _ in COLUMNS) + "  note")
    results = []
    for label, kind, spec in plan(args):
        if kind == "checkpoint":
            r = checkpoint_child(spec, args.threads)
        else:
            r = run_child(kind, spec, args.threads)
        print(table_line(label, kind, r), flush=True)
        results.append({"row": label, "kind": kind, "spec": spec, "result": r})
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
