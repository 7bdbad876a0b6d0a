"""Default generation settings of the dev (non-distilled) models, chosen from the checkpoint's `model_version`.

The released LTX-2.3 files carry `__metadata__["model_version"]` ("2.3.0"); the LTX-2 (19B) files have none,
which the official code treats as LTX-2.0. The two differ in the step count (40 / 30) and in the block whose
self-attention the STG pass perturbs (29 / 28). From 2.4 on (so LTX-2.5) the 2.3 settings hold with image
conditionings re-compressed at CRF 18 instead of 33. Versions are read with hyphens as dots ("2.4-rc2" = 2.4.rc2).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..family import parse_version
from .guidance import GuiderParams
from .schedules import PIPELINE_TOKENS, ltx2_sigmas


@dataclass(frozen=True)
class PipelineDefaults:
    """Dev-model defaults: stage-1 sampling (steps, per-stream guidance) and the clip it makes.

    The two-stage pipelines render stage 1 at `stage_1_height x stage_1_width` and refine at twice that.
    """

    num_inference_steps: int
    video_guider: GuiderParams
    audio_guider: GuiderParams
    num_frames: int = 121
    frame_rate: float = 24.0
    stage_1_height: int = 512
    stage_1_width: int = 768
    default_image_crf: int = 33

    @property
    def stage_2_height(self) -> int:
        return 2 * self.stage_1_height

    @property
    def stage_2_width(self) -> int:
        return 2 * self.stage_1_width

    def sigmas(self, tokens: int = PIPELINE_TOKENS):
        """LTX2Scheduler sigmas for the default step count (the pipelines use 4096 tokens)."""
        return ltx2_sigmas(self.num_inference_steps, tokens=tokens)

    def to_dict(self) -> dict:
        """The official field names (what the golden `dev_defaults` case lists)."""
        return {
            "num_inference_steps": self.num_inference_steps, "frame_rate": self.frame_rate,
            "num_frames": self.num_frames, "stage_1_height": self.stage_1_height,
            "stage_1_width": self.stage_1_width, "default_image_crf": self.default_image_crf,
            "video_guider": self.video_guider.to_dict(), "audio_guider": self.audio_guider.to_dict(),
        }


def _guiders(stg_block: int) -> tuple[GuiderParams, GuiderParams]:
    common = dict(stg_scale=1.0, stg_blocks=(stg_block,), rescale_scale=0.7, modality_scale=3.0, skip_step=0)
    return GuiderParams(cfg_scale=3.0, **common), GuiderParams(cfg_scale=7.0, **common)


LTX2_DEFAULTS = PipelineDefaults(40, *_guiders(29))
LTX23_DEFAULTS = PipelineDefaults(30, *_guiders(28))
LTX24_DEFAULTS = replace(LTX23_DEFAULTS, default_image_crf=18)  # 2.4 and 2.5


def model_version_tuple(version: str | tuple[int, ...] | None) -> tuple[int, ...] | None:
    """A `model_version` entry as numbers: "2.5.0" -> (2, 5, 0), "2.4-rc2" -> (2, 4); None stays None."""
    if isinstance(version, str):
        return parse_version(version.replace("-", "."))
    return None if version is None else tuple(version)


def defaults_for_model_version(version: str | tuple[int, ...] | None) -> PipelineDefaults:
    """Dev defaults for a checkpoint's `model_version` ("2.3.0", a parsed tuple, or None = LTX-2.0)."""
    parsed = model_version_tuple(version)
    if parsed is None or (2,) <= parsed < (2, 3):
        return LTX2_DEFAULTS
    if (2, 3) <= parsed < (2, 4):
        return LTX23_DEFAULTS
    if (2, 4) <= parsed < (2, 6):
        return LTX24_DEFAULTS
    raise ValueError(f"model_version {version!r} is not supported: expected LTX-2 (no version, 2.0-2.2), LTX-2.3 "
                     f"(2.3.x) or LTX-2.5 (2.4-2.5.x)")


def defaults_for_checkpoint_metadata(metadata: dict) -> PipelineDefaults:
    """Dev defaults from a checkpoint's safetensors `__metadata__` (reads its `model_version` entry)."""
    return defaults_for_model_version(metadata.get("model_version"))

