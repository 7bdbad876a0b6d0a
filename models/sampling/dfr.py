"""DFR (Diffusion Fidelity Rendering, the LTX-2.5 pipeline that renders generated keyframes): the segment grid of
its keyframe slots, the tiles of a temporal round, their stitch, and one temporal round.

Canvas: `num_frames - 1` pixel frames of content are padded up to a multiple of the segment length S (24 or 32,
whichever pads less; a tie takes 32); the slots sit at S, 2S, ..., N' - 1 (frame 0 is a standalone latent frame
already, the last frame is a slot).

Temporal round r (1, 2): the video latent is upsampled x2 in time (N -> 2(N - 1) + 1 pixel frames), the keyframes
of the previous pass move to 2x their frame (the seams) and the segments between seams are shared among
min(2^r, segments) tiles, contiguous runs, the larger runs first. Every tile but the first starts one segment early
(lead-in) so the seam it shares with its predecessor lies inside it. A tile is denoised on its own (video only, the
audio stream absent) from its slice of the upsampled latent re-noised to sigma 0.975, over the last 4 steps of the
distilled schedule with ancestral Euler (eta 0.5, step noise seeded seed + 1000 r + tile), conditioned on: the images
that fall inside it (tile-local frames), every seam inside it as a keyframe guide of strength 0.95 (the previous
pass's keyframe latent), and fresh generated slots at the middle of each of its segments (seeded with the nearest
latent frame). Conditioning RoPE time uses min(fps, 60). The stitch keeps the first tile whole and, of every later
tile, only the latent frames after the seam it shares with its predecessor. The next round's keyframes are the
seams plus the new mid-segment slots (a slot made by two tiles: the earlier tile's).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..positions import VIDEO_SCALE_FACTORS
from .ancestral import AncestralEuler
from .conditioning import (
    GeneratedKeyframeSlots, KeyframeConditioning, LatentIndexConditioning, apply_conditionings,
)
from .schedules import DISTILLED_SIGMAS
from .state import (
    VideoGrid, add_noise, draw_noise, generated_keyframe_latents, target_latent, video_state,
)
from .video_only import denoise_video_only

SEGMENT_LENGTHS = (24, 32)  # pixel frames between generated keyframes, the shorter one first
TILE_LEAD_SEGMENTS = 1
MAX_TEMPORAL_ROUNDS = 2
ANCHOR_STRENGTH = 0.95  # seam keyframes are guides just short of clean, so a tile can still settle its seam
TEMPORAL_ETA = 0.5
ROUND_SEED_STRIDE = 1000  # tile step noise: seed + 1000 * round + tile (no two tiles share their noise)
MAX_CONDITIONING_FPS = 60.0  # above it one latent frame's 8 pixel frames are too short in RoPE time
TEMPORAL_SIGMAS = DISTILLED_SIGMAS[4:]  # 0.975 ... 0: the temporal rounds' 4 steps


class DFRLayoutError(ValueError):
    """A clip, keyframe list or tile list that the DFR layout cannot use; the message says what it expected."""


@dataclass(frozen=True)
class DFRCanvas:
    """The padded clip of a DFR run: `frames` pixel frames (>= the request), keyframe slots every `segment`."""

    frames: int
    segment: int
    keyframes: tuple[int, ...]


def _padding(content_frames: int, segment: int) -> int:
    return -content_frames % segment


def segment_length(content_frames: int) -> int:
    """The segment length of SEGMENT_LENGTHS that pads `content_frames` (num_frames - 1) least; a tie takes the
    longer one."""
    if content_frames < 1:
        raise DFRLayoutError(f"a DFR clip needs at least 2 frames, got {content_frames + 1}")
    return min(sorted(SEGMENT_LENGTHS, reverse=True), key=lambda s: _padding(content_frames, s))


def dfr_canvas(num_frames: int, temporal_scale: int = VIDEO_SCALE_FACTORS[0]) -> DFRCanvas:
    """The canvas of a clip of `num_frames` (8k+1, at least 9) pixel frames."""
    if num_frames < 2 or (num_frames - 1) % temporal_scale:
        raise DFRLayoutError(f"a DFR clip has {temporal_scale}k+1 frames (k >= 1), got {num_frames}")
    content = num_frames - 1
    segment = segment_length(content)
    padded = content + _padding(content, segment)
    return DFRCanvas(padded + 1, segment, tuple(range(segment, padded + 1, segment)))


def evenly_spaced_keyframes(count: int, num_frames: int) -> tuple[int, ...]:
    """`count` interior frames of a clip of `num_frames`, evenly spaced, both ends excluded (round half to even,
    as torch.round)."""
    if count < 1 or num_frames < count + 2:
        raise DFRLayoutError(f"{count} evenly spaced keyframes need a clip of at least {count + 2} frames (both "
                             f"ends are excluded), got {num_frames}")
    spaced = torch.linspace(0, num_frames - 1, count + 2, dtype=torch.float64).round()
    return tuple(int(v) for v in spaced[1:-1])


def check_keyframe_frames(frames: Sequence[int], num_frames: int) -> tuple[int, ...]:
    """`frames` as a tuple when they are non-empty, strictly increasing and inside [0, num_frames)."""
    frames = tuple(int(f) for f in frames)
    if not frames:
        raise DFRLayoutError("no keyframe frames given")
    outside = [f for f in frames if not 0 <= f < num_frames]
    if outside:
        raise DFRLayoutError(f"keyframe frames {outside} are outside the clip's frames 0..{num_frames - 1}")
    if any(b <= a for a, b in itertools.pairwise(frames)):
        raise DFRLayoutError(f"keyframe frames must be strictly increasing, got {list(frames)}")
    return frames


@dataclass(frozen=True)
class TemporalTile:
    """One tile of a temporal round in the round's pixel / latent frames: pixels [pixel_start, pixel_end] (both
    included), latents [latent_start, latent_stop); `anchors` the seams inside it (pixel_start too, except for
    the first tile: frame 0 is no keyframe), `slots` the middles of its segments; the stitch drops its first
    `drop_latents` latent frames (its lead-in and the seam frame its predecessor keeps)."""

    pixel_start: int
    pixel_end: int
    latent_start: int
    latent_stop: int
    anchors: tuple[int, ...]
    slots: tuple[int, ...]
    drop_latents: int

    @property
    def latent_frames(self) -> int:
        return self.latent_stop - self.latent_start

    def local(self, frames: Sequence[int]) -> tuple[int, ...]:
        """Round frames as frames of the tile (0 = its first frame)."""
        return tuple(f - self.pixel_start for f in frames)


def _owned_runs(segments: int, tiles: int) -> list[int]:
    base, extra = divmod(segments, tiles)
    return [base + (index < extra) for index in range(tiles)]


def temporal_tiles(seams: Sequence[int], num_frames: int, num_tiles: int,
                   temporal_scale: int = VIDEO_SCALE_FACTORS[0]) -> tuple[TemporalTile, ...]:
    """The tiles of a round over `num_frames` pixel frames with keyframe `seams` (strictly increasing, the last
    one the last frame, segments whole latent frames and at least 2 of them); `num_tiles` is capped at the
    segment count."""
    seams = tuple(int(s) for s in seams)
    if not seams or seams[-1] != num_frames - 1:
        raise DFRLayoutError(f"the last keyframe must be the clip's last frame {num_frames - 1}, got "
                             f"{list(seams)} (keyframes on the DFR segment grid)")
    bounds = (0, *seams)
    for start, end in itertools.pairwise(bounds):
        if end - start < 2 * temporal_scale or (end - start) % temporal_scale:
            raise DFRLayoutError(f"keyframes {list(seams)}: segment {start}..{end} is not a whole number (>= 2) of "
                                 f"{temporal_scale}-frame latent frames")
    if num_tiles < 1:
        raise DFRLayoutError(f"a temporal round needs at least 1 tile, got {num_tiles}")
    tiles, owned_start = [], 0
    for index, owned in enumerate(_owned_runs(len(seams), min(num_tiles, len(seams)))):
        first = owned_start - TILE_LEAD_SEGMENTS if index else 0
        stop = owned_start + owned
        start_frame, end_frame = bounds[first], bounds[stop]
        handover = bounds[owned_start] // temporal_scale + (1 if index else 0)
        tiles.append(TemporalTile(
            pixel_start=start_frame, pixel_end=end_frame, latent_start=start_frame // temporal_scale,
            latent_stop=end_frame // temporal_scale + 1,
            anchors=tuple(b for b in bounds[first:stop + 1] if b),
            slots=tuple((a + b) // 2 for a, b in itertools.pairwise(bounds[first:stop + 1])),
            drop_latents=handover - start_frame // temporal_scale))
        owned_start = stop
    return tuple(tiles)


def stitch_tiles(latents: Sequence[torch.Tensor], tiles: Sequence[TemporalTile]) -> torch.Tensor:
    """The round's (B, C, F, H, W) latent from the tiles' latents (each (B, C, tile latent frames, H, W))."""
    if len(latents) != len(tiles) or not tiles:
        raise DFRLayoutError(f"stitching needs one latent per tile, got {len(latents)} for {len(tiles)} tiles")
    for latent, tile in zip(latents, tiles):
        if latent.ndim != 5 or latent.shape[2] != tile.latent_frames:
            raise DFRLayoutError(f"a tile over latent frames [{tile.latent_start}, {tile.latent_stop}) returned "
                                 f"shape {tuple(latent.shape)}")
    return torch.cat([latent[:, :, tile.drop_latents:] for latent, tile in zip(latents, tiles)], dim=2)


def nearest_latent_frames(video: torch.Tensor, frames: Sequence[int],
                          temporal_scale: int = VIDEO_SCALE_FACTORS[0]) -> torch.Tensor:
    """(B, C, K, H, W): for each pixel frame, the latent frame round(frame / scale) of `video` (clamped)."""
    last = video.shape[2] - 1
    index = [min(max(round(f / temporal_scale), 0), last) for f in frames]
    return video[:, :, index]


def merge_keyframes(*groups: tuple[Sequence[int], torch.Tensor]) -> GeneratedKeyframeSlots:
    """Keyframes (frames, (B, C, K, H, W) latents) from several groups as one slot item sorted by frame; a frame in
    several groups keeps the first group's latent."""
    chosen: dict[int, torch.Tensor] = {}
    for frames, latents in groups:
        if latents.shape[2] != len(frames):
            raise DFRLayoutError(f"{latents.shape[2]} keyframe latents for {len(frames)} frames")
        for k, frame in enumerate(frames):
            chosen.setdefault(int(frame), latents[:, :, k:k + 1])
    if not chosen:
        raise DFRLayoutError("no keyframes to carry into the next pass")
    order = sorted(chosen)
    return GeneratedKeyframeSlots(tuple(order), torch.cat([chosen[f] for f in order], dim=2))


def tile_images(images: Sequence, tile: TemporalTile, temporal_scale: int = VIDEO_SCALE_FACTORS[0]) -> list:
    """The image conditionings (single-image LatentIndexConditioning at latent 0, single-frame KeyframeConditioning)
    that fall inside `tile`, moved to its frames: an image at the tile's first frame replaces its first latent
    frame, any other is a keyframe guide."""
    placed = []
    for item in images:
        frame = 0 if isinstance(item, LatentIndexConditioning) else item.frame_idx
        if not tile.pixel_start <= frame <= tile.pixel_end:
            continue
        local = frame - tile.pixel_start
        if local == 0:
            placed.append(LatentIndexConditioning(item.latent, item.strength, 0, item.source))
        else:
            placed.append(KeyframeConditioning(item.latent, local, item.strength, 1, item.attention_strength,
                                               item.source))
    return placed


def check_round_images(images: Sequence) -> None:
    """DFRLayoutError unless every item is an image a temporal round can place (see `tile_images`)."""
    for item in images:
        single_first = isinstance(item, LatentIndexConditioning) and item.latent_idx == 0 and item.latent.shape[2] == 1
        single_key = isinstance(item, KeyframeConditioning) and item.num_pixel_frames == 1 and item.latent.shape[2] == 1
        if not (single_first or single_key):
            raise DFRLayoutError(f"a temporal round places single images only (a first frame or a one-frame key), "
                                 f"got a {type(item).__name__} of {item.latent.shape[2]} latent frame(s)")


@dataclass(frozen=True)
class TemporalRound:
    """What a round needs besides the model: the round number (1, 2), the playback fps after the upsample and the
    seed (tile noise and step noise)."""

    index: int
    fps: float
    seed: int

    def __post_init__(self):
        if not 1 <= self.index <= MAX_TEMPORAL_ROUNDS:
            raise DFRLayoutError(f"temporal rounds are numbered 1..{MAX_TEMPORAL_ROUNDS}, got {self.index}")

    def step_seed(self, tile: int) -> int:
        return int(self.seed) + ROUND_SEED_STRIDE * self.index + tile


@torch.no_grad()
def temporal_round(model, video: torch.Tensor, keyframes: GeneratedKeyframeSlots, images: Sequence,
                   context: torch.Tensor, plan: TemporalRound, *, device=None,
                   scale_factors: tuple[int, int, int] = VIDEO_SCALE_FACTORS,
                   on_step: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, GeneratedKeyframeSlots]:
    """Densify the x2 temporally upsampled latent `video` (B, C, F, H, W): returns the stitched latent (same shape)
    and the keyframes of the next pass (on the round's frames).

    `keyframes`: the previous pass's keyframes (frames on its own grid, `initial_latent` their latents);
    `images`: image conditionings on the round's frames (`check_round_images`); `context` (B, L, D) the positive
    video text context; `on_step(done, total)` runs after every denoising step.
    """
    if keyframes.initial_latent is None:
        raise DFRLayoutError("the keyframes carried into a temporal round need their latents")
    check_round_images(images)
    scale = scale_factors[0]
    batch, channels, latent_frames, height, width = video.shape
    seams = tuple(2 * f for f in keyframes.pixel_frames)
    seam_latents = dict(zip(seams, keyframes.initial_latent.split(1, dim=2)))
    tiles = temporal_tiles(seams, (latent_frames - 1) * scale + 1, 2 ** plan.index, scale)
    sigmas = torch.tensor(TEMPORAL_SIGMAS, dtype=torch.float32)
    total, done = len(tiles) * (sigmas.numel() - 1), 0
    noise_generator = torch.Generator("cpu").manual_seed(int(plan.seed))
    pieces, new_slots = [], []
    for index, tile in enumerate(tiles):
        tile_video = video[:, :, tile.latent_start:tile.latent_stop]
        items = [*tile_images(images, tile, scale),
                 *(KeyframeConditioning(seam_latents[f], f - tile.pixel_start, ANCHOR_STRENGTH) for f in tile.anchors)]
        if tile.slots:
            local = tile.local(tile.slots)
            items.append(GeneratedKeyframeSlots(local, nearest_latent_frames(tile_video, local, scale)))
        grid = VideoGrid(batch, channels, tile.latent_frames, height, width, min(plan.fps, MAX_CONDITIONING_FPS),
                         scale_factors)
        state = apply_conditionings(video_state(grid, tile_video, device), items)
        state = add_noise(state, draw_noise(state, noise_generator), float(sigmas[0]))
        step_seed = plan.step_seed(index)

        def step_done(_step: int) -> None:
            nonlocal done
            done += 1
            if on_step is not None:
                on_step(done, total)

        state = denoise_video_only(model, state, context, sigmas, AncestralEuler(step_seed, eta=TEMPORAL_ETA),
                                   torch.Generator("cpu").manual_seed(step_seed), on_step=step_done)
        pieces.append(target_latent(state).to(video.device))
        if tile.slots:
            new_slots.append((tile.slots, generated_keyframe_latents(state).to(video.device)))
    carried = merge_keyframes(*new_slots, (seams, keyframes.initial_latent.to(video.device)))
    return stitch_tiles(pieces, tiles), carried
