"""Long video with sound on AVGen-Tiny through AVGen Long Video (a command, not a test): seams, sample-level
continuity of the sound, A/V sync at the start and the end, and peak RSS for 1, 2, 4 and 8 chunks.

    python tests/bench/bench_long_video.py [--seconds 30] [--chunk-frames 97] [--overlap 25] [--steps 20]
                                           [--threads 1] [--window 6] [--skip-rss] [--extra-chunks 16]

The clip is made as the node makes it (AVGen-Tiny's prompt and settings, the dev schedule shifted for the latent;
chunk k seeded with seed + k), its frames and sound collected from the job's segments. Printed:
- seams: at every chunk boundary, the frame-to-frame motion energy and the audio onset strength (spectral flux) of
  media/sync.py where the cross-fade begins, where the new chunk alone takes over, and averaged over the overlap,
  as percentiles of the same measure over the frames inside chunks (not in any overlap);
- sound: the largest jump between neighbouring samples where the cross-fades begin and end, against all other
  samples (a click would stand out), and the sample count against frames / fps;
- sync: the A/V offset over the first and the last `--window` seconds, with the model card's event measure
  (tiny/metrics.py: visual bounces against audio onsets, median) and with media.sync.measure_offset (the node's);
- memory: peak RSS of the node run (the mp4 streamed to a temporary folder) for 1, 2, 4, 8 (and 16) chunks, each in
  a fresh subprocess: the high-water mark is reset once the models are loaded (Linux /proc/self/clear_refs), so it
  is the generation's own peak; the process peak (set by loading the checkpoint) is printed beside it. Run with
  glibc's default allocator and with a fixed mmap threshold (see rss_report).
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_two_stage import cpu_name  # noqa: E402
from comfyui_avgen.media.sync import audio_onsets, measure_offset, motion_energy  # noqa: E402
from comfyui_avgen.nodes import comfy_adapter  # noqa: E402
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent  # noqa: E402
from comfyui_avgen.nodes.loaders import AVGenCheckpointLoader, AVGenTextEncoderLoader  # noqa: E402
from comfyui_avgen.nodes.long_video import AVGenLongVideo, AVGenSamplerSettings, prepare_job  # noqa: E402
from comfyui_avgen.nodes.text_encode import AVGenTextEncode  # noqa: E402
from comfyui_avgen.tiny import builtin, metrics  # noqa: E402
from comfyui_avgen.tiny.config import FPS, HEIGHT, WIDTH  # noqa: E402
from comfyui_avgen.tiny.generate import GenerationSettings  # noqa: E402

PROMPT = "a red circle bounces off the walls over a checkered background, a bright drum sounds at each bounce"
RSS_CHUNKS = (1, 2, 4, 8)
MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_"  # glibc's environment name


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def status_mib(field: str) -> float:
    """VmRSS / VmHWM (peak RSS since start or the last reset) of this process from /proc, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def reset_peak_rss() -> bool:
    """Restart the peak RSS count (Linux: 5 > /proc/self/clear_refs); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def percentile_of(value: float, population: torch.Tensor) -> float:
    return 100.0 * float((population < value).float().mean())


class Tiny:
    """AVGen-Tiny's handles, its prompt encoded, one chunk and the sampler settings."""

    def __init__(self, steps: int, chunk_frames: int):
        self.model, self.video_vae, self.audio_vae = AVGenCheckpointLoader().load(
            builtin.BUILTIN_NAME, "(from checkpoint)", "fp32", "cpu")
        text_encoder = AVGenTextEncoderLoader().load(builtin.BUILTIN_NAME, "fp32", "cpu", True)[0]
        self.conditioning = AVGenTextEncode().encode(text_encoder, self.model, PROMPT, "")[0]
        self.chunk = AVGenEmptyAVLatent().make(self.model, WIDTH, HEIGHT, chunk_frames, 0.0, FPS, 1)["result"][0]
        tiny = GenerationSettings()
        self.sampler = AVGenSamplerSettings().settings(
            seed=0, steps=steps, schedule="dev_token_shift", video_cfg=tiny.video_cfg, audio_cfg=tiny.audio_cfg,
            video_stg=0.0, audio_stg=0.0, stg_blocks="none", video_modality=1.0, audio_modality=1.0,
            video_rescale=tiny.rescale, audio_rescale=tiny.rescale, batched_passes=False, sampler="euler")[0]

    def inputs(self, seconds: float, overlap: int) -> tuple:
        return (self.model, self.video_vae, self.audio_vae, self.conditioning, self.chunk, self.sampler, seconds,
                overlap, "continuous")


def seconds_for_chunks(count: int, chunk_frames: int, overlap: int) -> float:
    return (chunk_frames + (count - 1) * (chunk_frames - overlap)) / FPS


def rss_child(count: int, args) -> None:
    """One node run of `count` chunks, streamed to a temporary folder; prints the peak RSS."""
    torch.set_num_threads(args.threads)
    tiny = Tiny(args.steps, args.chunk_frames)
    with tempfile.TemporaryDirectory() as folder, comfy_adapter.configured(output_dir=folder, cache_dir=folder):
        loading_peak, loaded = peak_rss_mib(), status_mib("VmRSS")
        reset = reset_peak_rss()
        result = AVGenLongVideo().generate(*tiny.inputs(seconds_for_chunks(count, args.chunk_frames, args.overlap),
                                                        args.overlap), "bench/long", 19)
    running = status_mib("VmHWM") if reset else float("nan")
    print(f"{count} {result['result'][3]} {loading_peak:.1f} {loaded:.1f} {running:.1f} {peak_rss_mib():.1f}")


def event_sync(frames: torch.Tensor, wave: torch.Tensor, rate: int) -> tuple[float, int]:
    """The model card's measure: median (audio onset - visual event) in ms, and how many events matched."""
    events = [index / FPS for index, _ in metrics.event_frames(frames.numpy())]
    onsets = metrics.audio_onsets(wave.numpy(), rate)
    return metrics.sync_offset_ms(events, onsets), len(metrics.match_events(events, onsets))


def seams_report(args) -> None:
    tiny = Tiny(args.steps, args.chunk_frames)
    job = prepare_job(*tiny.inputs(args.seconds, args.overlap))
    start = time.perf_counter()
    segments = list(job.segments())
    frames = torch.cat([s.frames for s in segments])
    wave = torch.cat([s.audio for s in segments], -1)
    rate = job.sample_rate()
    print(f"{len(job.plan)} chunks of {args.chunk_frames} frames ({args.overlap} shared), {frames.shape[0]} frames "
          f"({frames.shape[0] / FPS:.2f} s) in {time.perf_counter() - start:.0f} s; {wave.shape[-1]} samples at "
          f"{rate} Hz (frames / fps x rate = {frames.shape[0] / FPS * rate:.1f})")
    for note in job.notes:
        print(f"note: {note}")

    motion = motion_energy(frames)  # motion[t]: change from frame t - 1 to t
    onsets = audio_onsets(wave, rate, FPS, frames.shape[0])
    overlaps = [(c.start, c.start + c.overlap) for c in job.plan[1:]]
    inside = torch.ones(frames.shape[0], dtype=torch.bool)
    inside[0] = False
    for first, last in overlaps:
        inside[first:last + 1] = False
    print("seam  overlap    motion: into the overlap / out of it / overlap mean     onset: into / out of / mean "
          "(value, percentile of the frames inside chunks)")

    def shown(values: torch.Tensor, value: float) -> str:
        return f"{value:.4f} ({percentile_of(value, values[inside]):5.1f})"

    for i, (first, last) in enumerate(overlaps):
        after = min(last, frames.shape[0] - 1)
        print(f"{i + 1:4d}  {first:3d}-{last - 1:<3d}    {shown(motion, float(motion[first]))} "
              f"{shown(motion, float(motion[after]))} {shown(motion, float(motion[first:last].mean()))}     "
              f"{shown(onsets, float(onsets[first]))} {shown(onsets, float(onsets[after]))} "
              f"{shown(onsets, float(onsets[first:last].mean()))}")
    print(f"inside chunks ({int(inside.sum())} frames): motion median {float(motion[inside].median()):.4f}, 97th pct "
          f"{float(motion[inside].quantile(0.97)):.4f}; onset median {float(onsets[inside].median()):.4f}, 97th pct "
          f"{float(onsets[inside].quantile(0.97)):.4f}")

    jumps = (wave[:, 1:] - wave[:, :-1]).abs().amax(0)
    edges = torch.zeros_like(jumps, dtype=torch.bool)  # where the cross-fades begin and end
    for first, last in overlaps:
        for frame in (first, last):
            sample = round(frame / FPS * rate)
            edges[max(0, sample - 2):sample + 2] = True
    if not overlaps:
        print("one chunk: no seams")
    else:
        print(f"sample-to-sample jumps: at the cross-fades' ends (+-2 samples) max {float(jumps[edges].max()):.4f} "
              f"(percentile {percentile_of(float(jumps[edges].max()), jumps[~edges]):.1f} of all others); "
              f"elsewhere median {float(jumps[~edges].median()):.4f}, 99.9th percentile "
              f"{float(jumps[~edges].quantile(0.999)):.4f}, max {float(jumps[~edges].max()):.4f}")

    window = round(args.window * FPS)
    head_frames, head_wave = frames[:window], wave[:, :round(window / FPS * rate)]
    tail_start = frames.shape[0] - window
    tail_frames, tail_wave = frames[tail_start:], wave[:, round(tail_start / FPS * rate):]
    (head_ms, head_n), (tail_ms, tail_n) = event_sync(head_frames, head_wave, rate), event_sync(tail_frames,
                                                                                               tail_wave, rate)
    frame_ms = 1000 / FPS
    difference = abs(tail_ms - head_ms)
    print(f"A/V offset (model card: median audio onset - visual bounce): first {args.window:g} s {head_ms:+.1f} ms "
          f"({head_n} events), last {args.window:g} s {tail_ms:+.1f} ms ({tail_n} events); difference "
          f"{difference:.1f} ms = {difference / frame_ms:.2f} frames"
          + ("" if math.isnan(difference) else f" ({'<' if difference < frame_ms else '>='} one frame)"))
    head, tail = (measure_offset(f, w, rate, FPS) for f, w in ((head_frames, head_wave), (tail_frames, tail_wave)))
    print(f"A/V offset (media.sync, the node's report): first {head.offset_ms:+.1f} ms (confidence "
          f"{head.confidence:.2f}), last {tail.offset_ms:+.1f} ms (confidence {tail.confidence:.2f})")
    print(f"peak RSS of this run (holding the whole clip for the analysis): {peak_rss_mib():.0f} MiB")


def rss_report(args) -> None:
    """Each chunk count in a fresh process, with glibc's default allocator and with its mmap threshold fixed at
    1 MiB (large blocks always mapped, so freed tensors leave no fragmented heap behind): the difference between
    the two is heap fragmentation, not memory the node holds."""
    for label, extra in (("default allocator", {}), ("MALLOC_MMAP_THRESHOLD_=1 MiB", {MMAP_THRESHOLD: "1048576"})):
        print(f"peak RSS of the node run, fresh process each, the mp4 streamed ({label}):")
        for count in (*RSS_CHUNKS, *args.extra_chunks):
            command = [sys.executable, __file__, "--rss-child", str(count), "--chunk-frames", str(args.chunk_frames),
                       "--overlap", str(args.overlap), "--steps", str(args.steps), "--threads", str(args.threads)]
            started = time.perf_counter()
            env = {**os.environ, **extra}
            line = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
            chunks, frames, loading_peak, loaded, running, peak = line.strip().splitlines()[-1].split()
            print(f"{chunks:>3} chunk(s), {frames:>4} frames: peak while generating {float(running):.0f} MiB (RSS "
                  f"before it {float(loaded):.0f} MiB; process peak {float(peak):.0f} MiB, while loading "
                  f"{float(loading_peak):.0f} MiB; {time.perf_counter() - started:.0f} s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--chunk-frames", type=int, default=97)
    parser.add_argument("--overlap", type=int, default=25)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (AVGen-Tiny is fastest on one: more "
                        "threads only spin on a busy machine)")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--extra-chunks", type=int, nargs="*", default=[16],
                        help="chunk counts measured after 1, 2, 4 and 8")
    parser.add_argument("--rss-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        rss_child(args.rss_child, args)
        return 0
    torch.set_num_threads(args.threads)
    print(f"{cpu_name()}, {args.threads} threads; AVGen-Tiny {WIDTH}x{HEIGHT} at {FPS:g} fps, {args.steps} steps a "
          f"chunk")
    with tempfile.TemporaryDirectory() as folder, comfy_adapter.configured(cache_dir=folder, output_dir=folder):
        seams_report(args)
    if not args.skip_rss:
        rss_report(args)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
