"""Deterministic measurements of "shapes & sounds" clips, for generated and ground-truth clips alike.

Video frames are float [F, H, W, 3] in 0..1. The foreground is what is far more saturated or brighter than any
background the dataset draws; the classifier compares it with the palette (colour by hue) and with rendered
templates of every shape (shape by best overlap), so it tolerates the blur of a small VAE.
"""
from __future__ import annotations

import colorsys
import functools

import numpy as np

from .dataset import COLOURS, SHAPES, STAR_OUTER, shape_sdf

CHROMA_MIN = 0.3  # foreground: max - min channel above this ...
BRIGHT_MIN = 0.76  # ... or the darkest channel above this (white); backgrounds stay below both
MAX_SHAPE_FRAMES = 6  # the shape classifier looks at this many evenly spread frames
MIN_AREA = 0.002  # a frame shows the shape when its foreground covers this share of the canvas
_PALETTE_HUES = {name: colorsys.rgb_to_hsv(*rgb)[0] for name, rgb in COLOURS.items() if name != "white"}


def foreground_score(frames: np.ndarray) -> np.ndarray:
    """Per pixel [F, H, W] score in 0..1: 1 where a pixel looks like a shape, 0 on any background."""
    frames = np.asarray(frames, dtype=np.float32)
    r, g, b = frames[..., 0], frames[..., 1], frames[..., 2]
    low = np.minimum(np.minimum(r, g), b)
    chroma = np.maximum(np.maximum(r, g), b) - low
    return np.clip(np.maximum(chroma / CHROMA_MIN, low / BRIGHT_MIN) * 2.0 - 1.0, 0.0, 1.0)


def foreground_masks(frames: np.ndarray) -> np.ndarray:
    """bool [F, H, W]: pixels of the shape (score >= 0.5), kept near the frame's main blob."""
    score = foreground_score(frames)
    masks = score >= 0.5
    height, width = masks.shape[1:]
    yy, xx = np.mgrid[0:height, 0:width]
    for f in range(len(masks)):
        weight = score[f] * masks[f]
        if weight.sum() <= 0:
            continue
        # Keep pixels within reach of the weighted median point: drops stray speckles far from the shape.
        cx, cy = _weighted_median(weight.sum(0)), _weighted_median(weight.sum(1))
        reach = 2.5 * np.sqrt(masks[f].sum() / np.pi) + 2
        masks[f] &= (xx - cx) ** 2 + (yy - cy) ** 2 <= reach ** 2
    return masks


def _weighted_median(weight: np.ndarray) -> float:
    """Index at which the cumulative 1-D `weight` reaches half its total."""
    cumulative = np.cumsum(weight)
    return float(np.searchsorted(cumulative, cumulative[-1] / 2))


def centroid_track(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centres [F, 2] pixel (x, y) of the shape's pixel centres (nan where absent), present bool [F])."""
    return _track(foreground_masks(frames))


def _track(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    height, width = masks.shape[1:]
    area = masks.sum((1, 2))
    present = area >= MIN_AREA * height * width
    centres = np.full((len(masks), 2), np.nan)
    yy, xx = np.mgrid[0:height, 0:width]
    for f in np.flatnonzero(present):
        centres[f] = (xx[masks[f]].mean() + 0.5, yy[masks[f]].mean() + 0.5)
    return centres, present


def hue(rgb: np.ndarray) -> np.ndarray:
    """Hue in 0..1 (HSV convention) of colours [..., 3]."""
    r, g, b = np.moveaxis(np.asarray(rgb, dtype=np.float64), -1, 0)
    high, low = np.maximum(np.maximum(r, g), b), np.minimum(np.minimum(r, g), b)
    span = np.where(high > low, high - low, 1.0)
    h = np.where(high == r, (g - b) / span, np.where(high == g, 2.0 + (b - r) / span, 4.0 + (r - g) / span))
    return np.mod(h / 6.0, 1.0)


def classify_colour(frames: np.ndarray) -> tuple[str, float]:
    """(palette colour name, confidence 0..1) of the shape's pixels over all frames; ("none", 0) if no shape."""
    frames = np.asarray(frames, dtype=np.float32)
    masks = foreground_masks(frames)
    if not masks.any():
        return "none", 0.0
    pixels = frames[masks]
    chroma = pixels.max(-1) - pixels.min(-1)
    white_votes = float((chroma < CHROMA_MIN).mean())
    if white_votes > 0.5:
        return "white", white_votes
    hues = hue(pixels[chroma >= CHROMA_MIN])
    names = list(_PALETTE_HUES)
    centres = np.array([_PALETTE_HUES[n] for n in names])
    distance = np.abs(hues[:, None] - centres[None])
    nearest = np.minimum(distance, 1.0 - distance).argmin(1)
    votes = np.bincount(nearest, minlength=len(names)) / len(nearest)
    best = int(votes.argmax())
    return names[best], float(votes[best]) * (1.0 - white_votes)


def classify_shape(frames: np.ndarray) -> tuple[str, float]:
    """(shape name, confidence = best mean overlap 0..1) by matching each frame's silhouette to templates."""
    masks = foreground_masks(frames)
    centres, present = _track(masks)
    if not present.any():
        return "none", 0.0
    shown = np.flatnonzero(present)
    shown = shown[np.linspace(0, len(shown) - 1, min(len(shown), MAX_SHAPE_FRAMES)).round().astype(int)]
    scores = np.zeros(len(SHAPES))
    for f in shown:
        scores += _overlaps(masks[f], centres[f])
    scores /= len(shown)
    best = int(scores.argmax())
    return SHAPES[best], float(scores[best])


@functools.lru_cache(maxsize=None)
def _template_area(shape: str) -> float:
    """Area of `shape` with radius 1 (counted on a 100-per-unit grid)."""
    grid = (np.arange(400) + 0.5 - 200) / 100.0
    dx, dy = np.meshgrid(grid, grid)
    return float((shape_sdf(shape, dx, dy, 1.0) <= 0).sum()) / 100.0 ** 2


def _overlaps(mask: np.ndarray, centre: np.ndarray) -> list[float]:
    """Per shape: best intersection over union of a silhouette with that shape of the same area, centred on the
    silhouette, at a few scales around that size."""
    area = mask.sum()
    reach = 1.1 * STAR_OUTER * np.sqrt(area / min(_template_area(s) for s in SHAPES)) + 2
    ys, xs = np.nonzero(mask)
    x0, x1 = int(min(xs.min(), centre[0] - reach)), int(max(xs.max() + 1, centre[0] + reach))
    y0, y1 = int(min(ys.min(), centre[1] - reach)), int(max(ys.max() + 1, centre[1] + reach))
    dx, dy = np.meshgrid(np.arange(x0, x1) + 0.5 - centre[0], np.arange(y0, y1) + 0.5 - centre[1])
    window = np.zeros(dx.shape, dtype=bool)  # the mask on this window (parts outside the frame stay empty)
    h, w = mask.shape
    window[max(-y0, 0):min(h, y1) - y0, max(-x0, 0):min(w, x1) - x0] = mask[max(y0, 0):y1, max(x0, 0):x1]
    scores = []
    for shape in SHAPES:
        radius = np.sqrt(area / _template_area(shape))
        best = 0.0
        for factor in (0.9, 1.0, 1.1):
            template = shape_sdf(shape, dx, dy, radius * factor) <= 0
            best = max(best, float((template & window).sum() / (template | window).sum()))
        scores.append(best)
    return scores


def motion_direction(frames: np.ndarray, min_travel: float = 0.06) -> str:
    """"left" | "right" | "up" | "down" | "bounce" | "static" | "none" from the shape's centroid track.

    bounce: the track reverses on some axis by at least `min_travel` of the canvas on both sides of the turn.
    """
    centres, present = centroid_track(frames)
    if present.sum() < 2:
        return "none"
    height, width = np.asarray(frames).shape[1:3]
    track = centres[present] / np.array([width, height])
    for axis in (0, 1):
        path = track[:, axis]
        for turn in (path.argmax(), path.argmin()):
            if min(abs(path[turn] - path[0]), abs(path[turn] - path[-1])) >= min_travel:
                return "bounce"
    dx, dy = track[-1] - track[0]
    if max(abs(dx), abs(dy)) < min_travel:
        return "static"
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def event_frames(frames: np.ndarray, min_speed: float = 0.008) -> list[tuple[float, str]]:
    """Visual events as (frame index (fractional for bounces), "appear" | "bounce"), sorted by time.

    appear: the first frame showing the shape after frames without it. bounce: a turn of the centroid on one
    axis with speed >= `min_speed` canvas/frame on both sides, placed where lines fitted before/after meet.
    """
    centres, present = centroid_track(frames)
    height, width = np.asarray(frames).shape[1:3]
    events = []
    shown = np.flatnonzero(present)
    if len(shown) and shown[0] > 0:
        events.append((float(shown[0]), "appear"))
    # Bounces on the longest run of consecutive frames that show the shape.
    runs = np.split(shown, np.flatnonzero(np.diff(shown) > 1) + 1) if len(shown) else []
    for run in runs:
        if len(run) < 3:
            continue
        for axis, size in ((0, width), (1, height)):
            path = centres[run, axis] / size
            events += [(float(run[0]) + t, "bounce") for t in _turns(path, min_speed)]
    return sorted(events)


def _turns(path: np.ndarray, min_speed: float) -> list[float]:
    """Fractional indices where a 1-D track reverses direction."""
    steps = np.diff(path)
    turns = []
    for k in range(1, len(path) - 1):
        before, after = steps[k - 1], steps[k]
        is_peak = (path[k] >= path[k - 1] and path[k] > path[k + 1]) or (path[k] <= path[k - 1] and path[k] < path[k + 1])
        if not is_peak:
            continue
        # Slopes from up to two steps on each side of the turn, skipping the turn frame itself.
        slope_in = (path[k - 1] - path[max(k - 3, 0)]) / (k - 1 - max(k - 3, 0)) if k >= 2 else before
        slope_out = (path[min(k + 3, len(path) - 1)] - path[k + 1]) / (min(k + 3, len(path) - 1) - k - 1) \
            if k + 2 < len(path) else after
        if abs(slope_in) < min_speed or abs(slope_out) < min_speed or np.sign(slope_in) == np.sign(slope_out):
            continue
        # Lines through (k-1, path[k-1]) and (k+1, path[k+1]) with those slopes meet at t.
        t = (path[k + 1] - path[k - 1] + slope_in * (k - 1) - slope_out * (k + 1)) / (slope_in - slope_out)
        turns.append(float(np.clip(t, k - 1, k + 1)))
    return turns


def audio_onsets(audio: np.ndarray, sample_rate: int, min_rise_db: float = 9.0, min_gap: float = 0.06) -> list[float]:
    """Onset times in seconds of the percussive sounds in audio [C, N] or [N] (channels are averaged).

    An onset is a rise of the 4 ms RMS level by >= `min_rise_db` over its minimum in the preceding 10 ms, at a
    level within 26 dB of the loudest moment; its time is the first sample clearly above the level before it.
    """
    x = np.asarray(audio, dtype=np.float64)
    x = x.mean(0) if x.ndim == 2 else x
    hop = max(int(round(sample_rate / 1000)), 1)
    win = 4 * hop
    if len(x) < 2 * win:
        return []
    power = np.concatenate([[0.0], np.cumsum(x * x)])
    ends = np.arange(win, len(x) + 1, hop)
    rms = np.sqrt((power[ends] - power[ends - win]) / win)
    level = 20 * np.log10(rms + 1e-6)
    floor = np.array([level[max(i - 10, 0):max(i - 1, 1)].min() for i in range(len(level))])
    rise = level - floor
    loud = level >= level.max() - 26.0
    onsets = []
    for i in np.flatnonzero((rise >= min_rise_db) & loud):
        neighbourhood = rise[max(i - 30, 0):i + 31]
        if rise[i] < neighbourhood.max():
            continue
        t = _refine_onset(x, ends[i], win, sample_rate)
        if not onsets or t - onsets[-1] >= min_gap:
            onsets.append(t)
    return onsets


def _refine_onset(x: np.ndarray, end: int, win: int, sample_rate: int) -> float:
    """First sample of the window ending at `end` (and the window before) that stands well above the level
    just before it."""
    start = max(end - 3 * win, 0)
    before = x[max(start - 2 * win, 0):start]
    threshold = 4.0 * (np.sqrt(np.mean(before * before)) if len(before) else 0.0) + 1e-4
    above = np.flatnonzero(np.abs(x[start:end]) > threshold)
    return (start + (above[0] if len(above) else end - start)) / sample_rate


def match_events(video_times: list[float], audio_times: list[float], max_gap: float = 0.25) -> list[tuple[float, float]]:
    """Pairs (video time, nearest audio onset) for every video event with an onset within `max_gap` seconds."""
    pairs = []
    for t in video_times:
        if audio_times:
            nearest = min(audio_times, key=lambda a: abs(a - t))
            if abs(nearest - t) <= max_gap:
                pairs.append((t, nearest))
    return pairs


def sync_offset_ms(video_event_times: list[float], audio_onset_times: list[float], max_gap: float = 0.25) -> float:
    """Median (audio - video) time in ms over matched event pairs; nan when nothing matches."""
    pairs = match_events(video_event_times, audio_onset_times, max_gap)
    if not pairs:
        return float("nan")
    return float(np.median([1000.0 * (a - v) for v, a in pairs]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two images in 0..1 (inf when equal)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def keyframe_psnr(frames: np.ndarray, keyed_image: np.ndarray, index: int) -> float:
    """PSNR in dB of frame `index` of frames [F, H, W, 3] against the keyed image [H, W, 3]."""
    frames = np.asarray(frames)
    if not -len(frames) <= index < len(frames):
        raise ValueError(f"keyframe index {index} is outside the clip's {len(frames)} frames")
    if frames.shape[1:] != np.asarray(keyed_image).shape:
        raise ValueError(f"keyed image has shape {np.asarray(keyed_image).shape}, expected {frames.shape[1:]}")
    return psnr(frames[index], keyed_image)
