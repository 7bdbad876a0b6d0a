"""Long video: a clip of any length made chunk by chunk and streamed into an mp4, so memory stays at one chunk.

AVGen Long Video plans the chunks (models.timeline: shots, overlaps, cuts), then for each chunk builds its AV
latent (the previous chunk's last frames pinned at its start as AVGen Extend does, the previous chunk's audio
latent over the overlap kept by a region mask, or the given voice track encoded and kept for a dub; the shot's
keyframe and camera guide), samples it with the settings of an AVGen Sampler Settings node, decodes it, and hands
the frames and sound to media.stitch, which cross-fades the overlaps on absolute sample positions; what is final
goes straight into the mp4 (media.mp4_stream). The A/V offset is measured over the first and the last seconds.
"""
from __future__ import annotations

import ctypes
import json
import logging
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import torch
import torch.nn.functional as F

from ..media.mp4_stream import Mp4Stream
from ..media.stitch import ChunkStitcher, Segment
from ..media.sync_windows import SyncWindows
from ..media.video_io import AAC_SAMPLE_RATES, prepare_audio_for_aac
from ..models.audio.preprocess import fit_duration
from ..models.camera_path import CameraPath
from ..models.positions import AUDIO_LATENTS_PER_SECOND, latent_shape_for
from ..models.sampling import KeyframeConditioning, LatentIndexConditioning
from ..models.timeline import FRESH, SOUND, SOUNDS, ChunkPlan, ShotSpan, TimelineError, plan_chunks, shot_spans
from . import comfy_adapter
from .camera import DEPTH_KINDS, AVGenCameraGuide
from .decode import AVGenVideoDecode
from .encode import AVGenAudioEncode, _check_latent, compressed, encode_source
from .errors import NodeInputError
from .extend import audio_offset, continued_audio, encode_overlap
from .input_checks import validation_result, within_widgets
from .keyframes import key_frame_range
from .sampler import MAX_SEED, AVGenSampler
from .sampler import check_values as check_sampler_values
from .shots import SHOT_LIST, Shot, ShotList
from .text_encode import encode_prompts
from .types import (
    AUDIO, AUDIO_VAE, AV_LATENT, CONDITIONING, IMAGE, MODEL, TEXT_ENCODER, VIDEO_VAE, AVLatent, Conditioning,
    PixelSource,
)

log = logging.getLogger(__name__)

NODE, SETTINGS_NODE = "AVGenLongVideo", "AVGenSamplerSettings"
SAMPLER_SETTINGS = "AVGEN_SAMPLER_SETTINGS"  # nodes.long_video.SamplerSettings
SAMPLER_SOCKETS = ("model", "conditioning", "latent", "denoise")  # what the settings node leaves out
SYNC_WINDOW_SECONDS = 6.0
PREVIEW_SIZE = 256
KEYFRAME_CRF = 33  # the keyframe's H.264 round trip, as AVGen Image Encode / Keyframe by default
CAMERA_PLANE_DISTANCE = 2.0  # the camera guide's picture plane (AVGen Camera Guide's default, the presets' pivot)
DECODE_TILING = ("auto", 768, 64, 80, 24)  # AVGen Video Decode's defaults
MAX_SECONDS = 3600.0


# --- sampler settings ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SamplerSettings:
    """AVGEN_SAMPLER_SETTINGS: AVGen DiT Sampler's widget values (all but denoise) by name."""

    values: dict = field(default_factory=dict)


def _sampler_widgets() -> dict:
    required = AVGenSampler.INPUT_TYPES()["required"]
    return {name: entry for name, entry in required.items() if name not in SAMPLER_SOCKETS}


def check_settings(**values) -> None:
    """The DiT Sampler's own checks, reported as this node's."""
    try:
        check_sampler_values(**values)
    except NodeInputError as exc:
        raise NodeInputError(SETTINGS_NODE, str(exc).removeprefix(f"{exc.node}: ")) from None


class AVGenSamplerSettings:
    DESCRIPTION = ("The settings of AVGen DiT Sampler (seed, steps, schedule, guidance, sampler) for a node that "
                   "samples many times itself, such as AVGen Long Video (chunk k gets seed + k; every chunk starts "
                   "from noise, so there is no denoise).")
    CATEGORY = "AVGen/sampling"
    FUNCTION = "settings"
    RETURN_TYPES = (SAMPLER_SETTINGS,)
    RETURN_NAMES = ("sampler",)
    OUTPUT_TOOLTIPS = ("The sampler settings (connect to AVGen Long Video).",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": _sampler_widgets()}

    @classmethod
    def VALIDATE_INPUTS(cls, seed=None, steps=None, schedule=None, video_cfg=None, audio_cfg=None, video_stg=None,
                        audio_stg=None, stg_blocks=None, video_modality=None, audio_modality=None, video_rescale=None,
                        audio_rescale=None, sampler=None):
        return validation_result(check_settings, seed=seed, steps=steps, schedule=schedule, denoise=1.0,
                                 video_cfg=video_cfg, audio_cfg=audio_cfg, video_stg=video_stg, audio_stg=audio_stg,
                                 stg_blocks=stg_blocks, video_modality=video_modality, audio_modality=audio_modality,
                                 video_rescale=video_rescale, audio_rescale=audio_rescale, sampler=sampler)

    def settings(self, **values):
        check_settings(denoise=1.0, **{name: value for name, value in values.items() if name != "batched_passes"})
        return (SamplerSettings(dict(values)),)


# --- the job: what to generate, chunk by chunk --------------------------------------------------------------


@dataclass(frozen=True)
class GivenSound:
    """A dub's voice track: `waveform` (C, N) at `sample_rate` as given (encoded per chunk), and `saved` (C', M)
    at `saved_rate`: the same sound fitted for AAC and to the clip's length, written to the file."""

    waveform: torch.Tensor
    sample_rate: int
    saved: torch.Tensor
    saved_rate: int


@dataclass(frozen=True)
class Previous:
    """What a chunk takes from the one before it: that chunk's first frame `start`, its decoded frames from
    `frames_start` on (the ones the next chunk may pin) and its sampled audio latent."""

    start: int
    frames_start: int
    frames: torch.Tensor
    audio: torch.Tensor


@dataclass
class LongVideoJob:
    """Everything one long-video run needs, checked: the models, the chunk template, the plan and the shots."""

    model: object
    video_vae: object
    audio_vae: object
    template: AVLatent
    settings: dict
    spans: list[ShotSpan]
    plan: list[ChunkPlan]
    shots: tuple[Shot, ...]
    conditionings: list[Conditioning]  # one per span
    given: GivenSound | None
    notes: list[str]

    @property
    def fps(self) -> float:
        return self.template.fps

    def sample_rate(self) -> int:
        """Sample rate of the soundtrack written: the given voice track's, else the vocoder's."""
        return self.given.saved_rate if self.given is not None else int(self.audio_vae.vocoder.sample_rate)

    def segments(self) -> Iterator[Segment]:
        """The clip's frames and sound, in order, a block at a time (see the module doc)."""
        stitcher = ChunkStitcher(self.plan, self.fps, None if self.given else self.sample_rate())
        previous: Previous | None = None
        for chunk in self.plan:
            comfy_adapter.check_interrupted()
            latent = self.chunk_latent(chunk, previous)
            values = {**self.settings, "seed": (int(self.settings["seed"]) + chunk.index) % (MAX_SEED + 1)}
            out = AVGenSampler().sample(self.model, self.conditionings[chunk.shot], latent, denoise=1.0,
                                        preview_vae=self.video_vae, **values)["result"][0]
            frames = AVGenVideoDecode().decode(self.video_vae, out, *DECODE_TILING)[0]
            sound = None if self.given else _decoded_sound(self.audio_vae, out)
            log.info("%s: chunk %d/%d: frames %d-%d (shot %d, %s)", NODE, chunk.index + 1, len(self.plan),
                     chunk.start, chunk.start + chunk.frames - 1, chunk.shot + 1, chunk.join)
            for segment in stitcher.add(chunk, frames, sound):
                yield self._with_given_sound(segment)
            following = self.plan[chunk.index + 1].start if chunk.index + 1 < len(self.plan) else chunk.end
            kept_from = min(max(following, chunk.start), chunk.end)
            previous = Previous(chunk.start, kept_from, frames[kept_from - chunk.start:chunk.end - chunk.start].clone(),
                                out.audio)
            del frames, sound, out, latent
            release_freed_memory()
        for segment in stitcher.finish():
            yield self._with_given_sound(segment)

    def _with_given_sound(self, segment: Segment) -> Segment:
        if self.given is None:
            return segment
        rate, first = self.given.saved_rate, segment.first_frame
        lo, hi = (round(f * rate / self.fps) for f in (first, first + segment.frames.shape[0]))
        return Segment(first, segment.frames, self.given.saved[:, lo:hi])

    def chunk_latent(self, chunk: ChunkPlan, previous: Previous | None) -> AVLatent:
        """The AV latent chunk `chunk` is sampled from."""
        template, fps = self.template, self.fps
        (lat_f, lat_h, lat_w), audio_frames = latent_shape_for(chunk.frames, template.height, template.width, fps,
                                                               template.scale_factors)
        latent = template.replace(
            video=template.video.new_zeros(1, template.video.shape[1], lat_f, lat_h, lat_w),
            audio=template.audio.new_zeros(1, template.audio.shape[1], audio_frames, template.audio.shape[3]),
            pixel_frames=chunk.frames, conditionings=template.conditionings if chunk.index == 0 else ())
        reference = None  # the chunk's first picture, for a camera guide
        if chunk.pins_picture:
            offset = chunk.start - previous.frames_start
            pixels = previous.frames[offset:offset + chunk.overlap]
            encoded, source = encode_overlap(NODE, self.video_vae, pixels, latent)
            latent = latent.replace(conditionings=(LatentIndexConditioning(encoded, latent_idx=0, source=source),))
            reference = pixels[:1]
        if self.given is not None:
            latent = self._given_sound(chunk, latent)
        elif chunk.keep_sound:
            audio, masks = continued_audio(previous.audio, audio_offset(chunk.start - previous.start, fps),
                                           chunk.overlap, fps, audio_frames, chunk.frames / fps)
            latent = latent.replace(audio=audio, audio_conditionings=masks)
        shot = self.shots[chunk.shot] if self.shots else None
        if shot is not None and shot.keyframe is not None and chunk.first_of_shot:
            latent, reference = self._keyframe(chunk, shot, latent, reference)
        if shot is not None and shot.camera_path is not None:
            latent = self._camera_guide(chunk, shot, latent, reference)
        return latent

    def _given_sound(self, chunk: ChunkPlan, latent: AVLatent) -> AVLatent:
        """The voice track over the chunk, encoded and kept exactly."""
        rate = self.given.sample_rate
        lo, hi = (round(f * rate / self.fps) for f in (chunk.start, chunk.start + chunk.frames))
        piece = {"waveform": self.given.waveform[None, :, lo:hi], "sample_rate": rate}
        encoded = AVGenAudioEncode().encode(self.audio_vae, piece, latent, True)
        return (encoded["result"] if isinstance(encoded, dict) else encoded)[0]

    def _keyframe(self, chunk: ChunkPlan, shot: Shot, latent: AVLatent, reference):
        """The shot's keyframe: the first frame of a shot that starts afresh, the frame a sound-only overlap ends
        on, or the last frame of the first chunk of a shot reached smoothly; (latent, picture at frame 0)."""
        source = PixelSource(compressed(shot.keyframe, KEYFRAME_CRF), "crop")
        encoded = encode_source(self.video_vae, source, latent.height, latent.width)
        if chunk.join == FRESH:
            frame = 0
        elif chunk.join == SOUND:
            frame = chunk.overlap
        else:
            frame = chunk.end - chunk.start - 1
        for item in latent.conditionings:
            taken = key_frame_range(item)
            if taken and taken[0] <= frame < taken[1]:
                raise NodeInputError(NODE, f"shot {chunk.shot + 1}'s keyframe and the latent's first frame (or "
                                           f"keyframe) both pin frame {frame}: drop one of them")
        item = LatentIndexConditioning(encoded, latent_idx=0, source=source) if frame == 0 else \
            KeyframeConditioning(encoded, frame_idx=frame, source=source)
        picture = source.frames if frame == 0 else reference
        return latent.replace(conditionings=(*latent.conditionings, item)), picture

    def _camera_guide(self, chunk: ChunkPlan, shot: Shot, latent: AVLatent, reference) -> AVLatent:
        if reference is None:
            note = (f"chunk {chunk.index + 1} (shot {chunk.shot + 1}) has no picture to start its camera guide from "
                    "(the shot starts afresh without a keyframe): generated unguided")
            if note not in self.notes:
                self.notes.append(note)
            log.info("%s: %s", NODE, note)
            return latent
        span = self.spans[chunk.shot]
        path = shot_camera_path(shot.camera_path, span.end - span.start, chunk.start - span.start, chunk.frames,
                                self.fps)
        guided = AVGenCameraGuide().guide(self.video_vae, latent, path, reference, "crop", CAMERA_PLANE_DISTANCE,
                                          DEPTH_KINDS[0], 1.0, 4.0, 1.0)
        return guided["result"][0]


def release_freed_memory() -> None:
    """Hand the heap pages freed by the last chunk back to the system (glibc's malloc_trim; nothing elsewhere), so
    the resident memory of a long run is what it holds, not what fragmented arenas kept."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def aligned_stride(fps: float, step: int) -> int:
    """The smallest chunk stride (a multiple of `step` frames) that is a whole number of audio latent frames at
    `fps` (24 fps: 24 frames = 1 s; 25 fps: 8 frames; 30 fps: 24 frames)."""
    per_latent = Fraction(fps).limit_denominator(1001) / Fraction(AUDIO_LATENTS_PER_SECOND)  # pixel frames
    return math.lcm(step, per_latent.numerator)


def shot_camera_path(path: CameraPath, shot_frames: int, first: int, count: int, fps: float) -> CameraPath:
    """The cameras of shot frames [first, first + count) with `path` stretched over the shot's `shot_frames`
    (linear between the path's frames; frames before the shot or after it keep its first / last camera)."""
    frames = torch.arange(first, first + count, dtype=torch.float64).clamp(0, shot_frames - 1)
    where = frames / max(shot_frames - 1, 1) * (path.frames - 1)
    low = where.floor().long().clamp(max=path.frames - 1)
    high = (low + 1).clamp(max=path.frames - 1)
    weight = (where - low).unsqueeze(-1)

    def blend(values: torch.Tensor) -> torch.Tensor:
        values = values.to(torch.float64)
        shaped = values if values.ndim == 2 else values.unsqueeze(-1)
        mixed = shaped[low] * (1 - weight) + shaped[high] * weight
        return mixed if values.ndim == 2 else mixed.squeeze(-1)

    return CameraPath(blend(path.positions), blend(path.angles), blend(path.fov), fps, path.label)


def _decoded_sound(audio_vae, latent: AVLatent) -> torch.Tensor:
    """The chunk's sound (C, N) at the vocoder's rate, exactly frames / fps long (as AVGen Audio Decode)."""
    vae, vocoder = audio_vae.vae, audio_vae.vocoder
    with torch.no_grad():
        mel = vae.decode(latent.audio.to(next(vae.parameters()).device))
        waveform = vocoder(mel.to(device=next(vocoder.parameters()).device, dtype=torch.float32)).float().cpu()
    return fit_duration(waveform, vocoder.sample_rate, latent.seconds)[0]


# --- checking the inputs --------------------------------------------------------------------------------------


def check_values(seconds=None, overlap_frames=None, sound=None, filename_prefix=None, crf=None) -> None:
    """The constant inputs' checks (None = linked); the chunk geometry is checked at run time against the latent."""
    within_widgets(NODE, AVGenLongVideo, seconds=seconds, overlap_frames=overlap_frames, sound=sound, crf=crf)
    if overlap_frames is not None and (overlap_frames - 1) % 8:
        lower = max(1, (overlap_frames - 1) // 8 * 8 + 1)
        raise NodeInputError(NODE, f"overlap_frames {overlap_frames} is not 8k+1 (the overlap is encoded as the start "
                                   f"of a clip): use {lower} or {lower + 8}")
    if filename_prefix is not None:
        try:
            comfy_adapter.check_filename_prefix(filename_prefix)
        except ValueError as exc:
            raise NodeInputError(NODE, f"filename_prefix: {exc}") from None


def _check_template(latent) -> AVLatent:
    latent = _check_latent(NODE, latent)
    if latent.video.shape[0] != 1:
        raise NodeInputError(NODE, f"latent has a batch of {latent.video.shape[0]}: a long video is made one clip at "
                                   "a time (batch_size 1)")
    if latent.has_video or latent.keep_video or latent.has_audio or latent.keep_audio or latent.audio_conditionings:
        raise NodeInputError(NODE, "latent must be an empty chunk (AVGen Empty AV Latent, optionally with a first "
                                   "frame or keyframes): for a dub connect the voice to this node's audio input "
                                   "instead of encoding it into the latent")
    return latent


def _check_settings(sampler) -> dict:
    if not isinstance(sampler, SamplerSettings):
        raise NodeInputError(NODE, f"sampler must come from AVGen Sampler Settings, got {type(sampler).__name__}")
    if sampler.values.get("schedule") == "distilled_stage2":
        raise NodeInputError(NODE, "the distilled_stage2 schedule refines a latent with content, but every chunk "
                                   "starts from noise: use dev, dev_token_shift or distilled")
    return dict(sampler.values)


def _given_sound(audio, frames: int, fps: float) -> GivenSound:
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise NodeInputError(NODE, "audio must be an AUDIO dict with 'waveform' (batch, channels, samples) and "
                                   "'sample_rate'")
    waveform, rate = audio["waveform"], audio["sample_rate"]
    if not isinstance(waveform, torch.Tensor) or waveform.ndim != 3 or 0 in waveform.shape:
        shape = tuple(waveform.shape) if isinstance(waveform, torch.Tensor) else type(waveform).__name__
        raise NodeInputError(NODE, f"audio waveform must be (batch, channels, samples), got {shape}")
    if waveform.shape[0] != 1:
        raise NodeInputError(NODE, f"audio holds a batch of {waveform.shape[0]} sounds: one voice track is expected")
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0 or int(rate) != rate:
        raise NodeInputError(NODE, f"audio sample_rate must be a positive whole number of Hz, got {rate!r}")
    rate, wave = int(rate), waveform[0].detach().to("cpu", torch.float32)
    needed = round(frames / fps * rate)
    if wave.shape[-1] < needed:
        raise NodeInputError(NODE, f"the audio lasts {wave.shape[-1] / rate:.3f} s, shorter than the clip's "
                                   f"{frames / fps:.3f} s ({frames} frames at {fps:g} fps): shorten the clip (seconds "
                                   "0 follows the audio) or give a longer voice track")
    saved, saved_rate = prepare_audio_for_aac(wave, rate, frames / fps)
    return GivenSound(wave, rate, saved, saved_rate)


def _length(seconds: float, shots: ShotList | None, audio, template: AVLatent) -> tuple[float | None, int]:
    """(shot seconds summed or None, clip frames) for the seconds widget (0 = automatic)."""
    fps = template.fps
    if shots is not None:
        total = shots.seconds
        if seconds and abs(seconds - total) * fps > 0.5:
            raise NodeInputError(NODE, f"seconds {seconds:g} differs from the shots' total {total:g} s: set seconds "
                                       "to 0 to follow the shots, or change the shots")
        return total, round(total * fps)
    if seconds:
        return None, round(seconds * fps)
    if audio is not None and isinstance(audio, dict) and isinstance(audio.get("sample_rate"), int) and \
            isinstance(audio.get("waveform"), torch.Tensor) and audio["waveform"].ndim == 3:
        return None, int(audio["waveform"].shape[-1] / audio["sample_rate"] * fps)
    return None, template.pixel_frames


def _shot_conditionings(shots: tuple[Shot, ...], conditioning: Conditioning, text_encoder, model) -> list:
    """One Conditioning per shot: its prompt encoded (the conditioning's own for an empty prompt), the
    conditioning's negative prompt kept."""
    prompts = [shot.prompt for shot in shots if shot.prompt]
    if prompts and text_encoder is None:
        raise NodeInputError(NODE, "the shots have prompts: connect text_encoder (AVGen Text Encoder Loader) to "
                                   "encode them")
    encoded = dict(zip(dict.fromkeys(prompts), encode_prompts(text_encoder, model, list(dict.fromkeys(prompts))))) \
        if prompts else {}
    result = []
    for shot in shots:
        if not shot.prompt:
            result.append(conditioning)
            continue
        video, audio = encoded[shot.prompt]
        result.append(Conditioning(video.to(model.device, model.dtype), audio.to(model.device, model.dtype),
                                   conditioning.negative_video, conditioning.negative_audio, shot.prompt,
                                   conditioning.negative_prompt, shot.prompt))
    return result


def _check_template_keys(template: AVLatent, first_chunk: ChunkPlan) -> None:
    for item in template.conditionings:
        taken = key_frame_range(item)
        if taken and taken[1] > first_chunk.frames:
            raise NodeInputError(NODE, f"the latent's keyframe at frames {taken[0]}..{taken[1] - 1} lies outside the "
                                       f"first chunk ({first_chunk.frames} frames): keys of the latent apply to the "
                                       "first chunk only")


def prepare_job(model, video_vae, audio_vae, conditioning, latent, sampler, seconds: float, overlap_frames: int,
                sound: str, shots: ShotList | None = None, text_encoder=None, audio=None) -> LongVideoJob:
    """The checked job of one AVGen Long Video run (NodeInputError for anything it cannot make)."""
    template = _check_template(latent)
    settings = _check_settings(sampler)
    if not isinstance(conditioning, Conditioning):
        raise NodeInputError(NODE, f"conditioning must come from AVGen Text Encode, got {type(conditioning).__name__}")
    if shots is not None and not isinstance(shots, ShotList):
        raise NodeInputError(NODE, f"shots must come from AVGen Shot, got {type(shots).__name__}")
    if shots is not None and not shots.shots:
        raise NodeInputError(NODE, "the shot list is empty: chain at least one AVGen Shot")
    fps, notes = template.fps, []
    _, frames = _length(float(seconds), shots, audio, template)
    try:
        if shots is not None:
            spans = shot_spans([s.seconds for s in shots.shots], [s.transition for s in shots.shots], fps,
                               template.scale_factors[0])
        else:
            spans = shot_spans([frames / fps], ["smooth"], fps, template.scale_factors[0])
        plan = plan_chunks(spans, template.pixel_frames, int(overlap_frames), sound, audio is not None,
                           template.scale_factors[0])
    except TimelineError as exc:
        raise NodeInputError(NODE, str(exc)) from None
    _check_template_keys(template, plan[0])
    given = _given_sound(audio, spans[-1].end, fps) if audio is not None else None
    if given is None and int(audio_vae.vocoder.sample_rate) not in AAC_SAMPLE_RATES:
        raise NodeInputError(NODE, f"the vocoder makes {audio_vae.vocoder.sample_rate} Hz sound, which AAC cannot "
                                   "store")
    stride = template.pixel_frames - int(overlap_frames)
    if not given and len(plan) > 1 and stride % aligned_stride(fps, template.scale_factors[0]):
        notes.append(f"chunks start {stride} frames ({stride / fps:.3f} s) apart, not a whole number of audio latent "
                     f"frames (40 ms): the carried sound can sit up to 20 ms off its picture at a seam; chunk minus "
                     f"overlap frames a multiple of {aligned_stride(fps, template.scale_factors[0])} avoids it")
    shot_items = shots.shots if shots is not None else ()
    conditionings = _shot_conditionings(shot_items, conditioning, text_encoder, model) if shots is not None else \
        [conditioning]
    return LongVideoJob(model, video_vae, audio_vae, template, settings, spans, plan, shot_items, conditionings,
                        given, notes)


# --- the node ---------------------------------------------------------------------------------------------------


def _preview_frame(frame: torch.Tensor) -> torch.Tensor:
    """(H, W, 3) -> at most PREVIEW_SIZE pixels on the long side."""
    scale = PREVIEW_SIZE / max(frame.shape[:2])
    if scale >= 1:
        return frame.float().clone()
    size = (max(1, round(frame.shape[0] * scale)), max(1, round(frame.shape[1] * scale)))
    return F.interpolate(frame.permute(2, 0, 1)[None].float(), size=size, mode="area")[0].permute(1, 2, 0)


def _metadata(prompt, extra_pnginfo) -> dict[str, str]:
    tags = {"prompt": json.dumps(prompt)} if prompt is not None else {}
    for key, value in (extra_pnginfo or {}).items():
        tags[str(key)] = json.dumps(value)
    return tags


class AVGenLongVideo:
    DESCRIPTION = (
        "Generates a clip of any length in chunks and streams it into an mp4 (H.264 + AAC) in the output folder, so "
        "memory stays at one chunk. Each chunk (the latent's size and length) continues the previous one from its "
        "last overlap_frames (pinned picture, kept sound) and the seams cross-fade; sample positions are absolute, "
        "so the sound neither clicks nor drifts. Optional: a shot list (AVGen Shot: prompts over time, cuts or "
        "smooth transitions, keyframes, camera moves) and a voice track (dub: the video follows the given audio, "
        "which is kept exactly and saved). Reports the A/V offset at the start and the end."
    )
    CATEGORY = "AVGen/timeline"
    FUNCTION = "generate"
    OUTPUT_NODE = True
    RETURN_TYPES = ("STRING", IMAGE, "FLOAT", "INT")
    RETURN_NAMES = ("path", "preview", "fps", "frames")
    OUTPUT_TOOLTIPS = (
        "Full path of the mp4 written (the whole clip is only in this file).",
        "One small frame per chunk (the first it shows), at most 256 pixels on the long side.",
        "The frame rate of the clip.",
        "The clip's frame count.",
    )

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The audio-video DiT."}),
                "video_vae": (VIDEO_VAE, {"tooltip": "The model's video VAE (decodes each chunk, encodes overlaps)."}),
                "audio_vae": (AUDIO_VAE, {"tooltip": "The model's audio VAE and vocoder."}),
                "conditioning": (CONDITIONING, {"tooltip": (
                    "Prompt and negative prompt of the clip (AVGen Text Encode). With shots, each shot's prompt "
                    "replaces the positive one over the shot (an empty shot prompt keeps it); the negative prompt "
                    "is used throughout.")}),
                "latent": (AV_LATENT, {"tooltip": (
                    "One chunk (AVGen Empty AV Latent): its width, height, fps and frames (the chunk length, 8k+1); "
                    "a first frame or keyframes on it apply to the first chunk.")}),
                "sampler": (SAMPLER_SETTINGS, {"tooltip": "How each chunk is sampled (AVGen Sampler Settings; chunk "
                                                          "k gets seed + k)."}),
                "seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": MAX_SECONDS, "step": 0.1, "tooltip": (
                    "Length of the clip; 0 = automatic: the shots' total, else the audio's length, else one chunk. "
                    "With shots it must be 0 or their total.")}),
                "overlap_frames": ("INT", {"default": 25, "min": 1, "max": 1025, "step": 8, "tooltip": (
                    "Frames each chunk shares with the one before (8k+1, shorter than a chunk): its picture is "
                    "pinned and its sound kept, and both cross-fade. Chunk minus overlap frames a multiple of 1 s "
                    "at 24 / 25 fps keeps the audio latent grid exact.")}),
                "sound": (list(SOUNDS), {"default": "continuous", "tooltip": (
                    "continuous: one soundtrack, carried across cuts too (the sound over the overlap before a cut "
                    "is kept). per_shot: each shot makes its own sound (a cut starts it afresh, with a 5 ms fade; a "
                    "smooth transition cross-fades it). Unused for a dub.")}),
                "filename_prefix": ("STRING", {"default": "AVGen/long_video", "tooltip": (
                    "File name prefix in the output folder; may hold sub-folders.")}),
                "crf": ("INT", {"default": 19, "min": 0, "max": 51, "tooltip": (
                    "H.264 quality: lower is better and larger (17-23 typical).")}),
            },
            "optional": {
                "shots": (SHOT_LIST, {"tooltip": "A shot list (the last AVGen Shot of a chain)."}),
                "text_encoder": (TEXT_ENCODER, {"tooltip": "Encodes the shots' prompts (AVGen Text Encoder Loader)."}),
                "audio": (AUDIO, {"tooltip": (
                    "Dub: a voice track (or any sound) the video follows. Each chunk's slice is encoded and kept "
                    "exactly (as AVGen Audio Encode with keep on), and the track itself is saved. It must last at "
                    "least as long as the clip.")}),
            },
            "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, seconds=None, overlap_frames=None, sound=None, filename_prefix=None, crf=None):
        return validation_result(check_values, seconds=seconds, overlap_frames=overlap_frames, sound=sound,
                                 filename_prefix=filename_prefix, crf=crf)

    def generate(self, model, video_vae, audio_vae, conditioning, latent, sampler, seconds: float,
                 overlap_frames: int, sound: str, filename_prefix: str, crf: int, shots=None, text_encoder=None,
                 audio=None, prompt=None, extra_pnginfo=None):
        check_values(seconds, overlap_frames, sound, filename_prefix, crf)
        job = prepare_job(model, video_vae, audio_vae, conditioning, latent, sampler, seconds, overlap_frames, sound,
                          shots, text_encoder, audio)
        rate, fps = job.sample_rate(), job.fps
        target = comfy_adapter.output_file(filename_prefix, "mp4")
        starts = {chunk.start + chunk.overlap for chunk in job.plan}
        previews, windows = [], SyncWindows(fps, rate, SYNC_WINDOW_SECONDS)
        channels = job.given.saved.shape[0] if job.given is not None else 2
        with Mp4Stream(target.path, job.template.height, job.template.width, fps, rate, channels, crf,
                       _metadata(prompt, extra_pnginfo)) as stream:
            for segment in job.segments():
                stream.add_frames(segment.frames)
                stream.add_audio(segment.audio)
                windows.add(segment.frames, segment.audio)
                previews += [_preview_frame(segment.frames[f - segment.first_frame]) for f in sorted(starts)
                             if 0 <= f - segment.first_frame < segment.frames.shape[0]]
            info = stream.close()
        head, tail = windows.measure()
        cuts = sum(span.transition == "cut" for span in job.spans)
        report = [f"saved {target.filename}: {info.frames} frames {info.width}x{info.height} at {fps:g} fps "
                  f"({info.frames / fps:.3f} s) in {len(job.plan)} chunks, {len(job.spans)} shot(s) ({cuts} cut(s)), "
                  f"{info.audio_samples} samples at {rate} Hz"
                  + (" from the given audio" if job.given is not None else ""),
                  f"start: {head.describe()}", f"end: {tail.describe()}", *job.notes]
        for line in report:
            log.info("%s: %s", NODE, line)
        preview = torch.stack(previews)
        return {"ui": {"images": [target.ui()], "animated": [True], "text": report},
                "result": (str(target.path), preview, float(fps), int(info.frames))}


NODE_CLASS_MAPPINGS = {SETTINGS_NODE: AVGenSamplerSettings, NODE: AVGenLongVideo}
NODE_DISPLAY_NAME_MAPPINGS = {SETTINGS_NODE: "AVGen Sampler Settings", NODE: "AVGen Long Video"}
