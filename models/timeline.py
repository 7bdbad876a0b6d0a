"""The chunk plan of a long clip: which frames each generated chunk covers, how it joins the chunk before it, and
which of its frames are shown.

Frames are absolute pixel frame indices of the whole clip. A shot covers [start, end); shot k starts at
round(t_k * fps) for the summed durations t_k of the shots before it. A chunk covers [start, start + frames)
(frames = 8k+1, at most the chunk size) and is shown up to `end` (<= start + frames: the last chunk of a shot is
generated to the next 8k+1 count and cut at the shot's end). A chunk joins the one before it in one of three ways:

* crossfade (inside a shot, or a smooth transition into the next shot): it starts `overlap` frames before the
  previous chunk's end; those frames are the previous chunk's last shown frames, pinned (decoded and encoded again
  as the start of a clip), and picture and sound cross-fade over them;
* sound (a hard cut with one continuous soundtrack): it starts `overlap` frames before the cut with a fresh
  picture; only the sound over the overlap is carried over (and cross-faded), the picture cuts at the boundary;
* fresh (the first chunk, or a hard cut with sound per shot): it starts at the previous end, nothing shared.

An overlap is never longer than the previous chunk's shown frames (a short shot before it shortens it to the
longest 8k+1 count that fits).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

TRANSITIONS = ("smooth", "cut")
SOUNDS = ("continuous", "per_shot")
FRAME_STEP = 8  # pixel frames per latent frame (counts are 8k+1)
CROSSFADE, SOUND, FRESH = "crossfade", "sound", "fresh"


class TimelineError(ValueError):
    """A shot list, length or chunk geometry that cannot be planned."""


@dataclass(frozen=True)
class ShotSpan:
    """Shot `index` covers pixel frames [start, end); `transition` is how it begins (first / smooth / cut)."""

    index: int
    start: int
    end: int
    transition: str


@dataclass(frozen=True)
class ChunkPlan:
    """One generated chunk: frames [start, start + frames), shown up to `end`, sharing its first `overlap` frames
    with the previous chunk by `join` (crossfade / sound / fresh); `keep_sound` carries the previous chunk's audio
    latent over the overlap (the sound is generated anew there otherwise)."""

    index: int
    shot: int
    start: int
    frames: int
    end: int
    overlap: int
    join: str
    keep_sound: bool
    first_of_shot: bool

    @property
    def pins_picture(self) -> bool:
        return self.join == CROSSFADE


def grid_ceil(frames: int, step: int = FRAME_STEP) -> int:
    """The smallest 8k+1 count >= `frames` (>= 1)."""
    return step * max(0, math.ceil((frames - 1) / step)) + 1


def grid_floor(frames: int, step: int = FRAME_STEP) -> int:
    """The largest 8k+1 count <= `frames` (`frames` >= 1)."""
    return step * ((frames - 1) // step) + 1


def shot_spans(seconds: list[float], transitions: list[str], fps: float, step: int = FRAME_STEP) -> list[ShotSpan]:
    """Frame ranges of shots lasting `seconds` each; `transitions[k]` leads from shot k into shot k + 1 (the last
    one is unused). TimelineError for an empty list, an unknown transition or a shot shorter than one latent frame
    (`step` pixel frames)."""
    if not seconds:
        raise TimelineError("the shot list is empty: chain at least one AVGen Shot")
    if len(transitions) != len(seconds):
        raise TimelineError(f"{len(seconds)} shots but {len(transitions)} transitions")
    bad = [t for t in transitions if t not in TRANSITIONS]
    if bad:
        raise TimelineError(f"transition must be one of {', '.join(TRANSITIONS)}, got {bad[0]!r}")
    spans, elapsed = [], 0.0
    for index, length in enumerate(seconds):
        start, end = round(elapsed * fps), round((elapsed + length) * fps)
        if end - start < step:
            raise TimelineError(f"shot {index + 1} lasts {length:g} s = {end - start} frames at {fps:g} fps, shorter "
                                f"than one latent frame ({step} frames = {step / fps:.3f} s): make it longer")
        spans.append(ShotSpan(index, start, end, "first" if index == 0 else transitions[index - 1]))
        elapsed += length
    return spans


def _join(shot: ShotSpan, first_of_shot: bool, sound: str, given_sound: bool) -> tuple[str, bool]:
    """(join, keep_sound) of a chunk that is not the clip's first."""
    carry = sound == "continuous" and not given_sound
    if not first_of_shot:
        return CROSSFADE, not given_sound
    if shot.transition == "smooth":
        return CROSSFADE, carry
    return (SOUND, True) if carry else (FRESH, False)


def plan_chunks(spans: list[ShotSpan], chunk_frames: int, overlap: int, sound: str = "continuous",
                given_sound: bool = False, step: int = FRAME_STEP) -> list[ChunkPlan]:
    """The chunks that cover `spans` (see the module doc). `chunk_frames` and `overlap` are 8k+1 counts with
    overlap < chunk_frames; `given_sound`: the sound is given (dub), so no chunk keeps generated sound and a cut
    starts fresh."""
    if sound not in SOUNDS:
        raise TimelineError(f"sound must be one of {', '.join(SOUNDS)}, got {sound!r}")
    for name, value in (("chunk frames", chunk_frames), ("overlap_frames", overlap)):
        if value < 1 or (value - 1) % step:
            raise TimelineError(f"{name} {value} is not 8k+1 (1, 9, 17, ...)")
    if overlap >= chunk_frames:
        raise TimelineError(f"overlap_frames {overlap} is not shorter than a chunk ({chunk_frames} frames, the "
                            f"latent's length): lower the overlap or make the latent longer")
    chunks: list[ChunkPlan] = []
    for shot in spans:
        first_of_shot = True
        while (chunks[-1].end if chunks else 0) < shot.end:
            previous = chunks[-1] if chunks else None
            join, keep = (FRESH, False) if previous is None else _join(shot, first_of_shot, sound, given_sound)
            shared = 0 if join == FRESH else min(overlap, grid_floor(previous.end - previous.start, step))
            start = (previous.end if previous else shot.start) - shared
            frames = min(chunk_frames, grid_ceil(shot.end - start, step))
            if shared:
                frames = max(frames, shared + step)
            chunks.append(ChunkPlan(len(chunks), shot.index, start, frames, min(start + frames, shot.end), shared,
                                    join, keep, first_of_shot))
            first_of_shot = False
    return chunks
