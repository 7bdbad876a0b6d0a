"""Joining decoded chunks of a long clip into one stream of frames and sound, a block at a time.

Chunks arrive in the order of their plan (models.timeline.ChunkPlan). Sample positions are absolute: pixel frame f
starts at sample round(f * rate / fps) of the whole clip, and a chunk's sample 0 is the one of its first frame, so
rounding never accumulates (no drift however many chunks), and the sound is exactly as long as the frames. Over
an overlap the picture cross-fades from the previous chunk to the next (join "crossfade") or stays the previous
chunk's (join "sound": a hard cut at the overlap's end), and the sound cross-fades in both cases, with the ramp of
AVGen Join, over the part of the overlap not shown yet (an overlap of more than half a chunk reaches into the
previous chunk's own overlap, shown when that chunk came). A fresh join (nothing shared) fades the sound out and
in over `declick_seconds`, so a cut between two different sounds makes no click. Only the part of a chunk that
the next one overlaps (and its last frame) is held back: memory is one chunk.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..models.timeline import FRESH, SOUND, ChunkPlan

DECLICK_SECONDS = 0.005


@dataclass(frozen=True)
class Segment:
    """Finished output: frames [first_frame, first_frame + F) (F, H, W, 3) and their sound (C, N) (None when the
    stitcher carries no sound)."""

    first_frame: int
    frames: torch.Tensor
    audio: torch.Tensor | None


def ramp(count: int) -> torch.Tensor:
    """(count,) weights of the second clip in a cross-fade, strictly between 0 and 1 (AVGen Join's)."""
    return torch.linspace(0.0, 1.0, count + 2)[1:-1]


class ChunkStitcher:
    """Feed `add(chunk, frames, audio)` in plan order, collect the returned segments, then `finish()`."""

    def __init__(self, plan: list[ChunkPlan], fps: float, sample_rate: int | None,
                 declick_seconds: float = DECLICK_SECONDS):
        self.plan, self.fps, self.rate = plan, float(fps), sample_rate
        self.declick = 0 if sample_rate is None else max(1, round(declick_seconds * sample_rate))
        self.next_index = 0
        self.held_start = 0
        self.held_frames: torch.Tensor | None = None
        self.held_audio: torch.Tensor | None = None

    def sample(self, frame: int) -> int:
        """First sample of pixel frame `frame` of the clip."""
        return round(frame * self.rate / self.fps)

    def _audio_span(self, audio: torch.Tensor, origin: int, first: int, last: int) -> torch.Tensor:
        """Samples of pixel frames [first, last) from a chunk's audio whose sample 0 is frame `origin`'s (padded by
        repeating the last sample when the decode came out a sample short)."""
        lo, hi = self.sample(first) - self.sample(origin), self.sample(last) - self.sample(origin)
        if audio.shape[-1] < hi:
            audio = torch.cat([audio, audio[:, -1:].expand(-1, hi - audio.shape[-1])], dim=-1)
        return audio[:, lo:hi]

    def add(self, chunk: ChunkPlan, frames: torch.Tensor, audio: torch.Tensor | None = None) -> list[Segment]:
        """Frames (chunk.frames, H, W, 3) and sound (C, N) of the next chunk of the plan; the segments now final.
        The chunk's last shown frame (and what the next chunk overlaps) is held back until the next one comes."""
        if chunk.index != self.next_index or chunk is not self.plan[chunk.index]:
            raise ValueError(f"chunk {chunk.index} added out of order: the stitcher expects chunk {self.next_index}")
        if frames.shape[0] != chunk.frames:
            raise ValueError(f"chunk {chunk.index} has {frames.shape[0]} frames, its plan {chunk.frames}")
        if (audio is None) != (self.rate is None):
            raise ValueError("give every chunk's sound exactly when the stitcher was made with a sample rate")
        self.next_index += 1
        fresh_cut = chunk.join == FRESH and chunk.index > 0
        if audio is not None and fresh_cut:
            audio = self._fade(audio, rising=True)
        out = self._join(chunk, frames, audio) if chunk.index > 0 else []
        start, shown_from = chunk.start, chunk.start + chunk.overlap
        following = self.plan[chunk.index + 1].start if chunk.index + 1 < len(self.plan) else chunk.end
        hold_from = max(shown_from, min(following, chunk.end - 1))
        if hold_from > shown_from:
            sound = None if audio is None else self._audio_span(audio, start, shown_from, hold_from)
            out.append(Segment(shown_from, frames[shown_from - start:hold_from - start], sound))
        self.held_start = hold_from  # copies: the rest of the chunk is freed once its segments are written
        self.held_frames = frames[hold_from - start:chunk.end - start].clone()
        self.held_audio = None if audio is None else self._audio_span(audio, start, hold_from, chunk.end).clone()
        return out

    def _join(self, chunk: ChunkPlan, frames: torch.Tensor, audio: torch.Tensor | None) -> list[Segment]:
        """The held part of the previous chunk, joined to `chunk`'s overlap. An overlap longer than the held part
        (more than half a chunk: it reaches into frames already shown) cross-fades over the held part only."""
        held_end = self.held_start + self.held_frames.shape[0]
        if chunk.start + chunk.overlap != held_end:
            raise ValueError(f"chunk {chunk.index} starts at frame {chunk.start} and shares {chunk.overlap} frames, "
                             f"but the previous one ends at frame {held_end}")
        fade_from = max(chunk.start, self.held_start)
        out, before = [], fade_from - self.held_start
        if before:
            sound = None
            if self.held_audio is not None:
                sound = self.held_audio[:, :self.sample(fade_from) - self.sample(self.held_start)]
                sound = self._fade(sound, rising=False) if chunk.join == FRESH else sound
            out.append(Segment(self.held_start, self.held_frames[:before], sound))
        if fade_from < held_end:
            old = self.held_frames[before:]
            picture = old
            if chunk.join != SOUND:
                weight = ramp(old.shape[0]).view(-1, 1, 1, 1)
                new = frames[fade_from - chunk.start:held_end - chunk.start].to(old.dtype)
                picture = old * (1 - weight) + new * weight
            sound = None
            if self.held_audio is not None:
                previous = self.held_audio[:, self.sample(fade_from) - self.sample(self.held_start):]
                following = self._audio_span(audio, chunk.start, fade_from, held_end).to(previous.dtype)
                weight = ramp(previous.shape[-1])
                sound = previous * (1 - weight) + following * weight
            out.append(Segment(fade_from, picture, sound))
        return out

    def _fade(self, sound: torch.Tensor, rising: bool) -> torch.Tensor:
        count = min(self.declick, sound.shape[-1])
        if count == 0:
            return sound
        weight = torch.linspace(0.0, 1.0, count + 1)[1:] if rising else torch.linspace(1.0, 0.0, count + 1)[:-1]
        sound = sound.clone()
        if rising:
            sound[:, :count] *= weight
        else:
            sound[:, -count:] *= weight
        return sound

    def finish(self) -> list[Segment]:
        """The last held frames (the end of the clip)."""
        if self.next_index != len(self.plan):
            raise ValueError(f"{len(self.plan) - self.next_index} chunk(s) of the plan were never added")
        if self.held_frames is None or self.held_frames.shape[0] == 0:
            return []
        segment = Segment(self.held_start, self.held_frames, self.held_audio)
        self.held_frames = self.held_audio = None
        return [segment]
