"""Quality benchmark of a checkpoint on held-out "shapes & sounds" prompts.

    python -m comfyui_avgen.tiny.benchmark [--checkpoint PATH] [--text-encoder DIR] [--prompts N] [--steps S]

For N held-out specs (shape/colour/motion combinations never drawn for training) the model generates a clip
from the caption; the deterministic measures of metrics.py / camera_motion.py score it against the spec:
colour, shape and motion adherence, audio-video sync (visual events vs audio onsets), camera adherence. A second
pass on the first --keyframe-prompts prompts keys frame 0 to the rendered clip's first frame and reports the PSNR
there. Alongside: the same measures on the rendered clips passed through the model's VAEs and vocoder (what the
decoders lose, apart from the DiT) and on the rendered clips themselves (the measures' own accuracy: 100 %, ~0 ms).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import builtin
from .camera_motion import camera_label, global_motion
from .dataset import ClipSpec, render_clip, sample_spec
from .metrics import (audio_onsets, classify_colour, classify_shape, event_frames, keyframe_psnr, motion_direction,
                      sync_offset_ms)



@dataclass
class ClipScore:
    """What the measures found in one clip, next to what its spec asked for."""

    seed: int
    caption: str
    colour: str
    shape: str
    motion: str
    camera: str
    wanted_colour: str
    wanted_shape: str
    wanted_motion: str
    wanted_camera: str
    video_events: int
    audio_onsets: int
    sync_ms: float  # median (audio - video) over matched events; nan when none matched
    keyframe_psnr: float | None = None  # dB at frame 0 of the keyed generation
    unkeyed_psnr: float | None = None  # dB at frame 0 of the text-only generation


def score_clip(spec: ClipSpec, frames: np.ndarray, audio: np.ndarray, sample_rate: int, fps: float) -> ClipScore:
    """Measures one clip frames [F, H, W, 3] in 0..1 + audio [2, N] against `spec`."""
    height, width = frames.shape[1:3]
    events = event_frames(frames)
    onsets = audio_onsets(audio, sample_rate)
    return ClipScore(
        seed=spec.seed, caption=spec.caption, colour=classify_colour(frames)[0], shape=classify_shape(frames)[0],
        motion=motion_direction(frames), camera=camera_label(global_motion(frames), width, height),
        wanted_colour=spec.colour, wanted_shape=spec.shape, wanted_motion=spec.motion, wanted_camera=spec.camera,
        video_events=len(events), audio_onsets=len(onsets),
        sync_ms=sync_offset_ms([index / fps for index, _ in events], onsets),
    )


def summarize(scores: list[ClipScore], fps: float) -> dict:
    """Adherence percentages, median |sync offset| (ms and frames) over clips with matched events, PSNRs."""
    def percent(found, wanted):
        return 100.0 * float(np.mean([getattr(s, found) == getattr(s, wanted) for s in scores]))

    offsets = [abs(s.sync_ms) for s in scores if not math.isnan(s.sync_ms)]
    summary = {
        "clips": len(scores),
        "colour_adherence_pct": percent("colour", "wanted_colour"),
        "shape_adherence_pct": percent("shape", "wanted_shape"),
        "motion_accuracy_pct": percent("motion", "wanted_motion"),
        "camera_adherence_pct": percent("camera", "wanted_camera"),
        "camera_moving_clips": sum(s.wanted_camera != "static" for s in scores),
        "sync_clips": len(offsets),
        "median_abs_sync_ms": float(np.median(offsets)) if offsets else float("nan"),
    }
    summary["median_abs_sync_frames"] = summary["median_abs_sync_ms"] * fps / 1000.0
    for key in ("keyframe_psnr", "unkeyed_psnr"):
        values = [getattr(s, key) for s in scores if getattr(s, key) is not None]
        summary[f"mean_{key}_db"] = float(np.mean(values)) if values else None
    return summary


def format_table(columns: list[tuple[str, dict]]) -> str:
    """The printed table: one row per measure, one column per (title, summary)."""
    def sync(s):
        if s["sync_clips"] == 0:
            return "n/a (no matched events)"
        return f"{s['median_abs_sync_ms']:.1f} ms ({s['median_abs_sync_frames']:.2f} fr, {s['sync_clips']} clips)"

    def psnr(value):
        return "-" if value is None else f"{value:.2f} dB"

    moving = columns[0][1]["camera_moving_clips"]
    rows = [("measure", *(title for title, _ in columns))]
    rows.append(("colour adherence", *(f"{s['colour_adherence_pct']:.1f} %" for _, s in columns)))
    rows.append(("shape adherence", *(f"{s['shape_adherence_pct']:.1f} %" for _, s in columns)))
    rows.append(("motion direction accuracy", *(f"{s['motion_accuracy_pct']:.1f} %" for _, s in columns)))
    rows.append(("median |audio-video sync offset|", *(sync(s) for _, s in columns)))
    rows.append((f"camera adherence ({moving} moving)", *(f"{s['camera_adherence_pct']:.1f} %" for _, s in columns)))
    if columns[0][1].get("mean_keyframe_psnr_db") is not None:
        rows.append(("keyframe PSNR, frame 0 keyed", *(psnr(s.get("mean_keyframe_psnr_db")) for _, s in columns)))
        rows.append(("frame 0 PSNR without the key", *(psnr(s.get("mean_unkeyed_psnr_db")) for _, s in columns)))
    widths = [max(len(row[i]) for row in rows) + 2 for i in range(len(rows[0]))]
    return "\n".join("".join(f"{cell:<{w}}" for cell, w in zip(row, widths)).rstrip() for row in rows)


def heldout_specs(count: int, first_seed: int = 0) -> list[ClipSpec]:
    return [sample_spec(first_seed + i, "heldout") for i in range(count)]


def round_trip(generator, frames: np.ndarray, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """A clip frames [F, H, W, 3] + audio [2, N] encoded and decoded by the generator's VAEs and vocoder:
    (frames, audio at the vocoder's rate) as the generator would decode them."""
    import torch

    from ..models.video_vae.vae import to_rgb01

    with torch.no_grad():
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None] * 2.0 - 1.0
        latent = generator.vae.encode(pixels)
        decoded = to_rgb01(generator.vae.decode(latent, noise=torch.zeros_like(latent)))[0]
        audio_latent = generator.audio_vae.encode_waveform(torch.from_numpy(np.ascontiguousarray(audio))[None],
                                                           sample_rate)
        waveform = generator.vocoder(generator.audio_vae.decode(audio_latent))[0]
    samples = round(audio.shape[1] / sample_rate * generator.sample_rate)
    return decoded.numpy(), waveform[:, :samples].numpy()


def run(args: argparse.Namespace) -> tuple[list[tuple[str, dict]], list[ClipScore]]:
    """Generates and scores every prompt; returns the table's (title, summary) columns and the model's scores."""
    from .generate import GenerationSettings, TinyGenerator  # torch and the model only when generating

    for path, what in ((args.checkpoint, "checkpoint"), (args.text_encoder, "text encoder folder")):
        if not Path(path).exists():
            raise SystemExit(f"{what} {path} does not exist (train AVGen-Tiny first, or pass --checkpoint / "
                             f"--text-encoder)")
    started = time.time()
    generator = TinyGenerator(args.checkpoint, args.text_encoder)
    settings = GenerationSettings(steps=args.steps, video_cfg=args.cfg, audio_cfg=args.cfg, modality=args.modality,
                                  stg=args.stg, width=args.width, height=args.height, frames=args.frames, fps=args.fps)
    rate = generator.sample_rate
    scores, truth, round_trips = [], [], []
    for i, spec in enumerate(heldout_specs(args.prompts, args.first_spec)):
        reference = render_clip(spec, args.width, args.height, args.frames, args.fps, 16000)
        truth.append(score_clip(spec, reference.frames, reference.audio, reference.sample_rate, args.fps))
        if args.round_trip:
            frames, audio = round_trip(generator, reference.frames, reference.audio, reference.sample_rate)
            round_trips.append(score_clip(spec, frames, audio, rate, args.fps))
            round_trips[-1].keyframe_psnr = keyframe_psnr(frames, reference.frames[0], 0)  # the best a key gets
        frames, audio = generator.generate(spec.caption, args.seed + i, settings)
        score = score_clip(spec, frames, audio, rate, args.fps)
        if i < args.keyframe_prompts:
            score.unkeyed_psnr = keyframe_psnr(frames, reference.frames[0], 0)
            keyed, _ = generator.generate(spec.caption, args.seed + i, settings, first_frame=reference.frames[0])
            score.keyframe_psnr = keyframe_psnr(keyed, reference.frames[0], 0)
        scores.append(score)
        if args.verbose:
            print(f"[{i + 1}/{args.prompts}] {spec.caption}\n    -> {score.colour} {score.shape} {score.motion}, "
                  f"camera {score.camera}, sync {score.sync_ms:.1f} ms ({score.video_events} video events, "
                  f"{score.audio_onsets} onsets)", file=sys.stderr)
    columns = [("model", summarize(scores, args.fps))]
    if round_trips:
        columns.append(("VAE round trip", summarize(round_trips, args.fps)))
    columns.append(("ground truth", summarize(truth, args.fps)))
    columns[0][1]["seconds"] = time.time() - started
    return columns, scores


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m comfyui_avgen.tiny.benchmark", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=str(builtin.checkpoint_path()),
                        help="single-file LTX-layout checkpoint (default: the built-in AVGen-Tiny)")
    parser.add_argument("--text-encoder", default=str(builtin.text_encoder_path()),
                        help="Gemma 3 style folder (default: the built-in AVGen-Tiny text encoder)")
    parser.add_argument("--prompts", type=int, default=60,
                        help="number of held-out prompts (medians over fewer vary a lot from sample to sample)")
    parser.add_argument("--first-spec", type=int, default=0, help="seed of the first held-out spec")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=3.0, help="classifier-free guidance scale of both streams")
    parser.add_argument("--modality", type=float, default=1.0,
                        help="audio-video (modality) guidance scale of both streams (1 = off)")
    parser.add_argument("--stg", type=float, default=0.0, help="spatio-temporal guidance scale on the last block")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the first clip (+1 per clip)")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--frames", type=int, default=17, help="8k + 1")
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--keyframe-prompts", type=int, default=8,
                        help="run the first-frame-keyed pass (keyframe PSNR) on this many of the prompts (0 = none)")
    parser.add_argument("--no-round-trip", dest="round_trip", action="store_false",
                        help="skip scoring the ground-truth clips passed through the model's VAEs and vocoder")
    parser.add_argument("--json", help="also write the summaries and per-clip scores to this file")
    parser.add_argument("--verbose", action="store_true", help="print every clip's findings to stderr")
    args = parser.parse_args(argv)
    if args.prompts < 1 or args.steps < 2 or args.keyframe_prompts < 0:
        parser.error("--prompts must be >= 1, --steps >= 2 and --keyframe-prompts >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    columns, scores = run(args)
    model = columns[0][1]
    print(f"AVGen-Tiny benchmark: {model['clips']} held-out prompts, {args.width}x{args.height}, {args.frames} frames "
          f"at {args.fps:g} fps, {args.steps} steps, cfg {args.cfg:g}, modality {args.modality:g}, stg {args.stg:g}, "
          f"seed {args.seed}, {model['seconds']:.0f} s")
    print(f"checkpoint: {args.checkpoint}\ntext encoder: {args.text_encoder}")
    print(format_table(columns))
    if args.json:
        Path(args.json).write_text(json.dumps({**{title: summary for title, summary in columns},
                                               "clips": [asdict(s) for s in scores]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
