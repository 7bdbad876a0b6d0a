"""Runner for `transformer` and `transformer25` cases (full audio-video DiT forward; 2.5 adds an optional
keyframes mask for the keyframe embedding)."""
import functools

from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.transformer import StreamInput, load_transformer, to_denoised


@functools.lru_cache(maxsize=4)
def _model(path: str):
    return load_transformer(CheckpointFile(path))


def _stream(x, name):
    return StreamInput(
        latent=x[f"{name}_latent"], timesteps=x[f"{name}_timesteps"], sigma=x[f"{name}_sigma"],
        positions=x[f"{name}_positions"], context=x[f"{name}_context"],
        context_mask=x.get(f"{name}_context_mask"), attention_mask=x.get(f"{name}_attention_mask"),
        keyframes_mask=x.get(f"{name}_keyframes_mask"),
    )


def run_transformer(case):
    x = case.inputs()
    video, audio = _stream(x, "video"), _stream(x, "audio")
    v, a = _model(str(case.checkpoint))(video, audio, case.args.get("perturbations"))
    return {
        "video_velocity": v, "audio_velocity": a,
        "video_denoised": to_denoised(video.latent, v, video.timesteps),
        "audio_denoised": to_denoised(audio.latent, a, audio.timesteps),
    }


RUNNERS = {"transformer": run_transformer, "transformer25": run_transformer}
