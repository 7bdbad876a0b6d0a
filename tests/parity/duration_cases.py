"""Runner for `duration_head` cases (LTX-2.5 duration head on connector outputs, and its frame snapping)."""
import functools

import torch

from comfyui_avgen.models.checkpoint import CheckpointFile
from comfyui_avgen.models.duration_head import load_duration_head, seconds_to_num_frames


@functools.lru_cache(maxsize=2)
def _head(path: str):
    return load_duration_head(CheckpointFile(path))


def run_duration_head(case):
    x, a = case.inputs(), case.args
    seconds = _head(str(case.family_dir / a["checkpoint_file"])).predict_seconds(
        x.get("video_tokens"), x.get("audio_tokens"))
    out = {"seconds": seconds}
    if "frame_rate" in a:
        frames = [seconds_to_num_frames(float(s), a["frame_rate"], a["min_seconds"], a["max_seconds"]) for s in seconds]
        out["num_frames"] = torch.tensor(frames, dtype=torch.int64)
    return out


RUNNERS = {"duration_head": run_duration_head}
