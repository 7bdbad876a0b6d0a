"""Runner for `positions` cases (kinds video, audio, keyframe, shapes)."""
import torch

from comfyui_avgen.models.positions import audio_positions, guide_positions, latent_shape_for, video_positions


def _video(a):
    return video_positions(a["batch"], a["frames"], a["height"], a["width"], a["fps"],
                           tuple(a["scale_factors"]), a["causal_fix"])


def run_positions(case):
    a = case.args
    kind = a["kind"]
    if kind == "video":
        return {"positions": _video(a)}
    if kind == "audio":
        return {"positions": audio_positions(a["batch"], a["frames"])}
    if kind == "keyframe":
        target = _video(a)
        guide = guide_positions(
            a["batch"], a["keyframe_latent_frames"], a["height"], a["width"], a["fps"], a["frame_idx"],
            a["num_pixel_frames"], tuple(a["scale_factors"]), a["causal_fix"],
        )
        mask = torch.cat([
            torch.ones(a["batch"], target.shape[2], 1),
            torch.full((a["batch"], guide.shape[2], 1), 1.0 - a["strength"]),
        ], dim=1)
        return {"positions": torch.cat([target, guide], dim=2), "denoise_mask": mask}
    if kind == "shapes":
        video, audio = latent_shape_for(a["pixel_frames"], a["pixel_height"], a["pixel_width"], a["fps"],
                                        tuple(a["scale_factors"]))
        return {"video_latent_shape": torch.tensor(video), "audio_latent_frames": torch.tensor([audio])}
    raise ValueError(f"unknown positions kind {kind!r}")


RUNNERS = {"positions": run_positions}
