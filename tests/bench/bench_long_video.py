"""Long video with sound by chained AVGen Extend + AVGen Join on AVGen-Tiny (a command, not a test): seams, A/V
sync at the start and the end, and peak RSS as chunks are added.

    python tests/bench/bench_long_video.py [--seconds 30] [--chunk-seconds 4] [--overlap 9] [--steps 10]
                                           [--threads 2]

Runs the nodes as the avgen_extend workflow does (a prompt of the tiny data set, the dev schedule shifted for the
latent, AVGen-Tiny's CFG). Printed:
- seams: the frame-to-frame motion energy and the audio onset strength (spectral flux) at each seam, as the
  percentile of the same measure over all frames inside chunks (media/sync.py's envelopes), and the largest jump
  between neighbouring audio samples at the seams against the 99.9th percentile elsewhere;
- sync: the A/V offset (media/sync.measure_offset) over the first and the last `--window` seconds;
- memory: peak RSS after 1, 2, 4, 8 ... chunks.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_two_stage import cpu_name  # noqa: E402
from comfyui_avgen.media.sync import audio_onsets, measure_offset, motion_energy  # noqa: E402
from comfyui_avgen.nodes.decode import AVGenAudioDecode, AVGenVideoDecode  # noqa: E402
from comfyui_avgen.nodes.extend import AVGenExtend, AVGenJoin  # noqa: E402
from comfyui_avgen.nodes.latent import AVGenEmptyAVLatent, frames_for_seconds  # noqa: E402
from comfyui_avgen.nodes.loaders import AVGenCheckpointLoader, AVGenTextEncoderLoader  # noqa: E402
from comfyui_avgen.nodes.sampler import AVGenSampler  # noqa: E402
from comfyui_avgen.nodes.text_encode import AVGenTextEncode  # noqa: E402
from comfyui_avgen.tiny import builtin  # noqa: E402
from comfyui_avgen.tiny.config import FPS, HEIGHT, WIDTH  # noqa: E402
from comfyui_avgen.tiny.generate import GenerationSettings  # noqa: E402

PROMPT = "a red circle bounces off the walls over a checkered background, a bright drum sounds at each bounce"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def percentile_of(value: float, population: torch.Tensor) -> float:
    return 100.0 * float((population < value).float().mean())


class Chain:
    def __init__(self, steps: int):
        self.model, self.video_vae, self.audio_vae = AVGenCheckpointLoader().load(
            builtin.BUILTIN_NAME, "(from checkpoint)", "fp32", "cpu")
        text_encoder = AVGenTextEncoderLoader().load(builtin.BUILTIN_NAME, "fp32", "cpu", True)[0]
        self.conditioning = AVGenTextEncode().encode(text_encoder, self.model, PROMPT, "")[0]
        tiny = GenerationSettings()
        self.sampler = dict(steps=steps, schedule="dev_token_shift", denoise=1.0, video_cfg=tiny.video_cfg,
                            audio_cfg=tiny.audio_cfg, video_stg=0.0, audio_stg=0.0, stg_blocks="none",
                            video_modality=1.0, audio_modality=1.0, video_rescale=tiny.rescale,
                            audio_rescale=tiny.rescale, batched_passes=False)

    def sample(self, latent, seed: int):
        out = AVGenSampler().sample(self.model, self.conditioning, latent, seed=seed, **self.sampler)["result"][0]
        frames = AVGenVideoDecode().decode(self.video_vae, out, "off", 512, 64, 64, 8)[0]
        audio = AVGenAudioDecode().decode(self.audio_vae, out)["result"][0]
        return out, frames, audio


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--chunk-seconds", type=float, default=4.0)
    parser.add_argument("--overlap", type=int, default=9)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"{cpu_name()}, {args.threads} threads; AVGen-Tiny {WIDTH}x{HEIGHT} at {FPS:g} fps, {args.steps} steps "
          f"a chunk, {args.chunk_seconds:g} s chunks, {args.overlap}-frame overlap")
    chain, start = Chain(args.steps), time.perf_counter()
    first = AVGenEmptyAVLatent().make(chain.model, WIDTH, HEIGHT, frames_for_seconds(args.chunk_seconds, FPS), 0.0,
                                      FPS, 1)["result"][0]
    latent, frames, audio = chain.sample(first, seed=0)
    seams, chunks, rss = [], 1, {1: peak_rss_mib()}
    while frames.shape[0] / FPS < args.seconds:
        following = AVGenExtend().extend(latent, chain.video_vae, args.chunk_seconds, args.overlap)["result"][0]
        latent, next_frames, next_audio = chain.sample(following, seed=chunks)
        seams.append(frames.shape[0])  # index of the first new frame
        frames, audio = AVGenJoin().join(frames, audio, next_frames, next_audio, FPS, args.overlap)
        chunks += 1
        rss[chunks] = peak_rss_mib()
    rate, wave = audio["sample_rate"], audio["waveform"][0]
    print(f"{chunks} chunks, {frames.shape[0]} frames ({frames.shape[0] / FPS:.2f} s) in "
          f"{time.perf_counter() - start:.0f} s")

    motion = motion_energy(frames)  # motion[t]: change from frame t - 1 to t
    onsets = audio_onsets(wave, rate, FPS, frames.shape[0])
    inside = torch.ones(frames.shape[0], dtype=torch.bool)
    inside[0] = False
    inside[seams] = False
    jumps = (wave[:, 1:] - wave[:, :-1]).abs().amax(0)
    seam_samples = torch.tensor([round(s / FPS * rate) for s in seams])
    near = torch.zeros_like(jumps, dtype=torch.bool)
    for s in seam_samples.tolist():
        near[max(0, s - 2):s + 2] = True
    print("seam  frame  motion (pct inside)  onset (pct inside)")
    for i, s in enumerate(seams):
        print(f"{i + 1:4d}  {s:5d}  {float(motion[s]):8.4f} ({percentile_of(float(motion[s]), motion[inside]):5.1f})"
              f"  {float(onsets[s]):8.4f} ({percentile_of(float(onsets[s]), onsets[inside]):5.1f})")
    print(f"largest sample-to-sample jump at the seams {float(jumps[near].max()):.4f}, elsewhere 99.9th percentile "
          f"{float(jumps[~near].quantile(0.999)):.4f}, max {float(jumps[~near].max()):.4f}")
    window = round(args.window * FPS)
    head = measure_offset(frames[:window], wave[:, :round(window / FPS * rate)], rate, FPS)
    tail_start = frames.shape[0] - window
    tail = measure_offset(frames[tail_start:], wave[:, round(tail_start / FPS * rate):], rate, FPS)
    print(f"A/V offset: first {args.window:g} s {head.offset_ms:+.1f} ms (confidence {head.confidence:.2f}), last "
          f"{args.window:g} s {tail.offset_ms:+.1f} ms (confidence {tail.confidence:.2f}); difference "
          f"{abs(tail.offset_ms - head.offset_ms):.1f} ms (one frame = {1000 / FPS:.1f} ms)")
    shown = [n for n in (1, 2, 4, 8, 16, 32) if n in rss] + ([chunks] if chunks not in (1, 2, 4, 8, 16, 32) else [])
    print("peak RSS after " + ", ".join(f"{n} chunk(s): {rss[n]:.0f} MiB" for n in shown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
