"""Train AVGen-Tiny on the "shapes & sounds" data, on the CPU, in about 100 minutes.

    python -m comfyui_avgen.tiny.train --out DIR [--minutes-per-stage ...] [--clips N] [--resume]
                                       [--threads N] [--export-to DIR]

Stages (each time-budgeted, checkpointed to DIR/<stage>.safetensors every 2 minutes, skipped or resumed with --resume):
  pool       render the training clips once (DIR/pool/)
  video_vae  the video VAE on 17-frame 64x64 crops, most placed on the shape (MSE weighted 5x on it, plus the
             same on frame-to-frame differences so motion and appearances land on the right frame; latent noise)
  video_decoder  its decoder alone, the encoder frozen, with the shape weight spread 2 frames either way (shapes
             appear on their frame, no trails)
  audio_vae  the audio VAE on the clips' log-mels (L1 weighted 3x on events, latent noise)
  latents    encode the pool, measure the per-channel latent statistics
  dit        the text path and the DiT together, rectified flow on both streams, the shape's latent cells weighted
             5x (EMA of the weights)
  export     tiny/weights/avgen_tiny.safetensors + tiny/weights/avgen_tiny_text_encoder/ (and DIR/export/),
             DIR/summary.json (steps, losses, sizes: what the model card reports)
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import torch

from ..models.audio.audio_latents import patchify_audio_latent, unpatchify_audio_latent
from ..models.text.tokenizer import GemmaTokenizer
from .builtin import WEIGHTS_DIR
from .config import checkpoint_config
from .dataset import VOCABULARY
from .export import export
from .text_path import build_tokenizer
from .train_data import build_pool, latent_shape_cells
from .train_dit import dit_stage
from .train_loop import run_stage
from .train_vae import audio_vae_stage, encode_pool, set_statistics, video_decoder_stage, video_vae_stage

STAGE_MINUTES = {"video_vae": 22.0, "video_decoder": 6.0, "audio_vae": 6.0, "dit": 62.0}
DEFAULT_CLIPS = 2400


def parse_minutes(text: str | None) -> dict[str, float]:
    """"8" (every stage) or "video_vae=22,video_decoder=6,audio_vae=6,dit=62" (named stages; the others keep their
    default)."""
    minutes = dict(STAGE_MINUTES)
    if not text:
        return minutes
    if "=" not in text:
        return {name: float(text) for name in minutes}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in minutes:
            raise ValueError(f"--minutes-per-stage: unknown stage {name!r}; expected {', '.join(minutes)}")
        minutes[name.strip()] = float(value)
    return minutes


def _logger(out: Path):
    started = time.time()
    log_file = (out / "train.log").open("a")

    def log(message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} +{time.time() - started:6.0f}s {message}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    return log


def _normalised(vae, audio_vae, latents: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    z = latents["audio"].shape[1]
    audio = audio_vae.per_channel_statistics.normalize(patchify_audio_latent(latents["audio"]))
    return {"video": vae.per_channel_statistics.normalize(latents["video"]),
            "audio": unpatchify_audio_latent(audio, z, latents["audio"].shape[3]).contiguous()}


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train(out: Path, minutes: dict[str, float], clips: int, seed: int, export_to: Path | None) -> dict:
    log = _logger(out)
    config = checkpoint_config()
    log(f"AVGen-Tiny training: out={out} clips={clips} minutes={minutes} threads={torch.get_num_threads()}")
    started = time.time()
    pool = build_pool(out, clips, log)

    stage, vae = video_vae_stage(config, pool, minutes["video_vae"] * 60, seed)
    video_log = run_stage(stage, out, log)["state"]
    decoder_log = run_stage(video_decoder_stage(vae, pool, minutes["video_decoder"] * 60, seed), out, log)["state"]
    stage, audio_vae = audio_vae_stage(config, pool, minutes["audio_vae"] * 60, seed)
    audio_log = run_stage(stage, out, log)["state"]

    latents = encode_pool(pool, vae, audio_vae, out, log)
    set_statistics(vae, audio_vae, latents)
    tokenizer_json = out / "tokenizer.json"
    build_tokenizer(VOCABULARY).save(str(tokenizer_json))
    tokenizer = GemmaTokenizer.from_pretrained(tokenizer_json)
    vocab_size = tokenizer.tokenizer.get_vocab_size()
    shape_cells = latent_shape_cells(pool, vae.config.encoder_scale)
    stage, model, ema = dit_stage(config, _normalised(vae, audio_vae, latents), shape_cells, pool.captions,
                                  tokenizer, vocab_size, minutes["dit"] * 60, seed)
    dit_log = run_stage(stage, out, log)["state"]

    final = copy.deepcopy(model)
    final.load_state_dict({**final.state_dict(), **ema.shadow})
    checkpoint, encoder = export(config, final.dit, final.text, vae, audio_vae, VOCABULARY, out / "export")
    summary = {
        "clips": clips, "seed": seed, "minutes_per_stage": minutes, "wall_s": round(time.time() - started),
        "threads": torch.get_num_threads(),
        "parameters": {"dit": _parameters(final.dit), "text_gemma": _parameters(final.text.gemma),
                       "text_embedder": _parameters(final.text.embedder), "video_vae": _parameters(vae),
                       "audio_vae": _parameters(audio_vae)},
        "stages": {name: {"steps": s["step"], "seconds": round(s["elapsed_s"]), "log": s["log"]}
                   for name, s in (("video_vae", video_log), ("video_decoder", decoder_log),
                                   ("audio_vae", audio_log), ("dit", dit_log))},
        "bytes": {"checkpoint": checkpoint.stat().st_size,
                  "text_encoder": sum(p.stat().st_size for p in encoder.iterdir())},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    if export_to is not None:
        export_to.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checkpoint, export_to / checkpoint.name)
        shutil.copytree(encoder, export_to / encoder.name, dirs_exist_ok=True)
        log(f"exported to {export_to}")
    log(f"done in {summary['wall_s']} s; checkpoint {summary['bytes']['checkpoint'] / 1e6:.1f} MB")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="working folder (pool, stage checkpoints, logs)")
    parser.add_argument("--minutes-per-stage",
                        help='"N" for every stage or "video_vae=22,video_decoder=6,audio_vae=6,dit=62"')
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS, help="training clips rendered into the pool")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest on a 2-core machine shared with other work)")
    parser.add_argument("--resume", action="store_true", help="continue the stages found in --out")
    parser.add_argument("--export-to", type=Path, default=WEIGHTS_DIR,
                        help="where the final weights go (default: the package's tiny/weights/)")
    parser.add_argument("--no-export", action="store_true", help="keep the weights in --out/export only")
    args = parser.parse_args(argv)
    try:
        minutes = parse_minutes(args.minutes_per_stage)
    except ValueError as exc:
        parser.error(str(exc))
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.resume and any(args.out.glob("*.safetensors")):
        parser.error(f"{args.out} already holds stage checkpoints: pass --resume, or choose another --out")
    torch.set_num_threads(args.threads)
    train(args.out, minutes, args.clips, args.seed, None if args.no_export else args.export_to)
    return 0


if __name__ == "__main__":
    sys.exit(main())
