"""The procedural "shapes & sounds" dataset: one coloured shape moving over a textured background, with sounds.

A clip is described by a `ClipSpec` (everything random is drawn by `sample_spec(seed, split)`, deterministically)
and rendered at any size / frame count by `render_clip`. Geometry is in canvas fractions (x right, y down) and
time in seconds; event times are chosen on the 24 fps frame grid so that at 24 fps every event lands on a frame.
Events: an appearance (linear motions: the shape pops in) or a wall hit (bounce); each one makes a sound whose
onset is exactly at the event time. Held-out shape/colour/motion combinations are never drawn for "train".
"""
from __future__ import annotations

import colorsys
import math
import re
from dataclasses import dataclass

import numpy as np

from .sounds import PITCH, TIMBRE, mix_events

SHAPES = ("circle", "square", "triangle", "star", "ring")
COLOURS = {  # well separated hues (and white), far more saturated/bright than any background
    "red": (0.92, 0.12, 0.10),
    "orange": (1.00, 0.55, 0.05),
    "yellow": (0.95, 0.90, 0.10),
    "green": (0.10, 0.80, 0.20),
    "cyan": (0.10, 0.85, 0.90),
    "blue": (0.12, 0.25, 0.95),
    "purple": (0.70, 0.12, 0.92),
    "white": (0.97, 0.97, 0.97),
}
MOTIONS = ("left", "right", "up", "down", "bounce")
BACKGROUNDS = {"noise": "noisy", "stripes": "striped", "gradient": "gradient", "checker": "checkered"}
CAMERAS = ("static", "pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out")
SPLITS = ("train", "heldout")

NOMINAL_FPS = 24.0  # event times are multiples of 1 / NOMINAL_FPS
SAFE_SECONDS = 1.05  # linear motions stay inside the canvas at least this long (25 frames at 24 fps)
STAR_OUTER = 1.15  # outer radius of the star (and the wall margin) in units of the shape radius


def _is_heldout(shape: str, colour: str, motion: str) -> bool:
    # A fixed modular rule: 1/6 of the combinations; every shape/colour pair keeps >= 3 training motions.
    return (SHAPES.index(shape) + list(COLOURS).index(colour) + 2 * MOTIONS.index(motion)) % 6 == 0


HELDOUT_COMBINATIONS = tuple((s, c, m) for s in SHAPES for c in COLOURS for m in MOTIONS if _is_heldout(s, c, m))
TRAIN_COMBINATIONS = tuple((s, c, m) for s in SHAPES for c in COLOURS for m in MOTIONS if not _is_heldout(s, c, m))


@dataclass(frozen=True)
class ClipSpec:
    """All parameters of one clip. Positions/velocities in canvas fractions (per second), radius in units of
    min(width, height), times in seconds."""

    seed: int
    split: str
    shape: str
    colour: str
    motion: str
    background: str
    camera: str
    rgb: tuple[float, float, float]  # the colour with a small jitter
    radius: float
    start: tuple[float, float]  # centre at t = 0 (bounce: the unfolded coordinate, see `centre_at`)
    velocity: tuple[float, float]
    appear_time: float  # 0 for bounces (visible from the first frame)
    camera_speed: float  # pans: canvas fractions per second; zooms: log-scale per second
    texture_seed: int

    @property
    def margin(self) -> float:
        return STAR_OUTER * self.radius

    @property
    def caption(self) -> str:
        pitch, timbre = PITCH[self.shape][1], TIMBRE[self.colour][0]
        subject = f"a {self.colour} {self.shape}"
        ground = f"over a {BACKGROUNDS[self.background]} background"
        if self.motion == "bounce":
            text = f"{subject} bounces off the walls {ground}, a {pitch} {timbre} sounds at each bounce"
        else:
            text = f"{subject} appears and moves {self.motion} {ground}, a {pitch} {timbre} sounds when it appears"
        if self.camera != "static":
            kind, direction = self.camera.split("_")
            text += f", as the camera {kind}s {direction}"
        return text


def _vocabulary() -> tuple[str, ...]:
    words = {",", "a", "an", "the", "over", "background", "bounces", "off", "walls", "sounds", "at", "each",
             "bounce", "appears", "and", "moves", "when", "it", "as", "camera", "pans", "zooms", "in", "out"}
    words.update(SHAPES, COLOURS, MOTIONS[:4], BACKGROUNDS.values())
    words.update(p[1] for p in PITCH.values())
    words.update(t[0] for t in TIMBRE.values())
    return tuple(sorted(words))


VOCABULARY = _vocabulary()
_WORD = re.compile(r"\w+|[^\w\s]+")


def caption_words(text: str) -> list[str]:
    """Lower-cased words and punctuation of a caption, split like a whitespace/punctuation pre-tokenizer."""
    return _WORD.findall(text.lower())


def sample_spec(seed: int, split: str = "train") -> ClipSpec:
    """Draws a clip's parameters from `seed` (deterministic); "heldout" only draws HELDOUT_COMBINATIONS."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng([int(seed), SPLITS.index(split), 0x5A5])
    combos = TRAIN_COMBINATIONS if split == "train" else HELDOUT_COMBINATIONS
    shape, colour, motion = combos[int(rng.integers(len(combos)))]
    rgb = tuple(float(v) for v in np.clip(np.array(COLOURS[colour]) + rng.uniform(-0.04, 0.04, 3), 0.0, 1.0))
    radius = float(rng.uniform(0.14, 0.19))
    margin = STAR_OUTER * radius
    if motion == "bounce":
        start, velocity = _sample_bounce(rng, margin)
        appear_time = 0.0
    else:
        start, velocity = _sample_linear(rng, margin, motion)
        appear_time = int(rng.integers(2, 7)) / NOMINAL_FPS
    background = list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    camera = "static" if rng.random() < 0.65 else CAMERAS[1 + int(rng.integers(len(CAMERAS) - 1))]
    camera_speed = float(rng.uniform(0.3, 0.45) if camera.startswith("zoom") else rng.uniform(0.15, 0.25))
    return ClipSpec(int(seed), split, shape, colour, motion, background, camera, rgb, radius, start, velocity,
                    appear_time, camera_speed, int(rng.integers(2**31)))


def _sample_linear(rng, margin, motion):
    lo, hi = margin, 1.0 - margin
    speed = float(rng.uniform(0.4, 0.52))
    along = float(rng.uniform(lo, hi - speed * SAFE_SECONDS))
    across = float(rng.uniform(lo, hi))
    sign = 1.0 if motion in ("right", "down") else -1.0
    along = along if sign > 0 else 1.0 - along
    if motion in ("left", "right"):
        return (along, across), (sign * speed, 0.0)
    return (across, along), (0.0, sign * speed)


def _sample_bounce(rng, margin):
    """Per active axis: a first wall hit on frame 3..12 and a period of 9..16 frames (at 24 fps)."""
    lo, hi = margin, 1.0 - margin
    span = hi - lo
    while True:
        mode = ("diagonal", "diagonal", "horizontal", "vertical")[int(rng.integers(4))]
        start, velocity, hit_frames = [], [], []
        for axis in (0, 1):
            if (mode == "horizontal" and axis == 1) or (mode == "vertical" and axis == 0):
                start.append(float(rng.uniform(lo, hi)))
                velocity.append(0.0)
                continue
            period = int(rng.integers(9, 17))
            first = int(rng.integers(3, min(13, period)))
            speed = span * NOMINAL_FPS / period
            wall, v = (lo, -speed) if rng.random() < 0.5 else (hi, speed)
            start.append(wall - v * first / NOMINAL_FPS)
            velocity.append(v)
            hit_frames.append(set(range(first, 64, period)))
        if len(hit_frames) < 2 or min(abs(a - b) for a in hit_frames[0] for b in hit_frames[1]) >= 4:
            return tuple(start), tuple(velocity)


def _fold(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflects an unfolded coordinate into [lo, hi] (a triangle wave)."""
    span = hi - lo
    w = np.mod(u - lo, 2 * span)
    return lo + np.where(w <= span, w, 2 * span - w)


def centre_at(spec: ClipSpec, times: np.ndarray) -> np.ndarray:
    """Shape centre [T, 2] (x, y in canvas fractions) at `times` seconds."""
    t = np.asarray(times, dtype=np.float64)[:, None]
    raw = np.asarray(spec.start)[None] + np.asarray(spec.velocity)[None] * t
    lo, hi = spec.margin, 1.0 - spec.margin
    return _fold(raw, lo, hi) if spec.motion == "bounce" else np.clip(raw, lo, hi)


def wall_hit_times(spec: ClipSpec, until: float) -> list[tuple[float, int]]:
    """(time, axis) of every wall hit in [0, until] seconds (bounce motion only)."""
    if spec.motion != "bounce":
        return []
    lo, span = spec.margin, 1.0 - 2 * spec.margin
    hits = []
    for axis in (0, 1):
        u0, v = spec.start[axis], spec.velocity[axis]
        if v == 0.0:
            continue
        # u0 + v t = lo + n * span for integer n.
        n_first, n_last = sorted(((u0 - lo) / span, (u0 + v * until - lo) / span))
        for n in range(math.ceil(n_first - 1e-9), math.floor(n_last + 1e-9) + 1):
            t = (lo + n * span - u0) / v
            if -1e-9 < t <= until + 1e-9:
                grid = t * NOMINAL_FPS  # snap float error back onto the 24 fps grid the sampler chose
                hits.append((round(grid) / NOMINAL_FPS if abs(grid - round(grid)) < 1e-6 else t, axis))
    return sorted(hits)


def camera_transform(spec: ClipSpec, times: np.ndarray) -> np.ndarray:
    """Per time [T, 3]: (offset x, offset y, zoom) of the view over the background world (canvas units):
    the pixel at canvas point p shows world point centre + (p - centre) / zoom + offset."""
    t = np.asarray(times, dtype=np.float64)
    out = np.zeros((len(t), 3))
    out[:, 2] = 1.0
    direction = {"pan_left": (0, -1), "pan_right": (0, 1), "pan_up": (1, -1), "pan_down": (1, 1)}
    if spec.camera in direction:
        axis, sign = direction[spec.camera]
        out[:, axis] = sign * spec.camera_speed * t
    elif spec.camera.startswith("zoom"):
        out[:, 2] = np.exp((1 if spec.camera == "zoom_in" else -1) * spec.camera_speed * t)
    return out


@dataclass
class Clip:
    """A rendered clip. frames: float32 [F, H, W, 3] in 0..1; audio: float32 [2, N] in -1..1;
    events: (frame index (float), "appear" | "bounce", shape, colour); centres: float [F, 2] pixels (x, y);
    visible: bool [F]."""

    frames: np.ndarray
    audio: np.ndarray
    events: list[tuple[float, str, str, str]]
    caption: str
    spec: ClipSpec
    fps: float
    sample_rate: int
    centres: np.ndarray
    visible: np.ndarray


def render_clip(spec: ClipSpec, width: int = 128, height: int = 128, frames: int = 17, fps: float = 24.0,
                sample_rate: int = 16000) -> Clip:
    """Renders `spec` as video [frames, height, width, 3] and stereo audio of round(frames / fps * rate) samples."""
    if width < 16 or height < 16 or frames < 1 or fps <= 0 or sample_rate <= 0:
        raise ValueError(f"expected width, height >= 16, frames >= 1, fps > 0, sample_rate > 0; got "
                         f"{width}x{height}, {frames} frames, {fps} fps, {sample_rate} Hz")
    times = np.arange(frames) / fps
    video = _background(spec, width, height, times)
    centres = centre_at(spec, times) * np.array([width, height])
    visible = times >= spec.appear_time - 1e-9
    radius_px = spec.radius * min(width, height)
    for f in np.flatnonzero(visible):
        _paint_shape(video[f], spec.shape, centres[f], radius_px, np.asarray(spec.rgb, dtype=np.float32))
    events, sounds = [], []
    last = (frames - 1) / fps
    if spec.motion != "bounce" and visible.any() and visible.argmax() > 0:
        f = int(visible.argmax())
        events.append((float(f), "appear", spec.shape, spec.colour))
        sounds.append((f / fps, centres[f, 0] / width, spec.shape, spec.colour))
    for t, _ in wall_hit_times(spec, last):
        x = centre_at(spec, np.array([t]))[0, 0]
        events.append((round(t * fps, 6), "bounce", spec.shape, spec.colour))
        sounds.append((t, x, spec.shape, spec.colour))
    samples = int(round(frames / fps * sample_rate))
    audio = mix_events(sounds, samples, sample_rate, np.random.default_rng([spec.texture_seed, 1]))
    return Clip(video, audio, events, spec.caption, spec, float(fps), int(sample_rate), centres, visible)


def _background(spec: ClipSpec, width: int, height: int, times: np.ndarray) -> np.ndarray:
    """Low-contrast, low-saturation procedural texture seen through the camera: float32 [F, H, W, 3]."""
    rng = np.random.default_rng([spec.texture_seed, 0])
    scale = float(min(width, height))
    px = (np.arange(width, dtype=np.float32) + 0.5) / scale
    py = (np.arange(height, dtype=np.float32) + 0.5) / scale
    cx, cy = width / scale / 2, height / scale / 2
    cam = camera_transform(spec, times).astype(np.float32)
    u = cx + (px[None, None, :] - cx) / cam[:, 2, None, None] + cam[:, 0, None, None]  # [F, 1, W]
    v = cy + (py[None, :, None] - cy) / cam[:, 2, None, None] + cam[:, 1, None, None]  # [F, H, 1]
    kind = spec.background
    if kind == "noise":
        pattern = np.zeros((len(times), height, width), dtype=np.float32)
        total = 0.0
        for _ in range(5):
            amp, freq, angle, phase = rng.uniform(0.4, 1.0), rng.uniform(1.5, 5.0), rng.uniform(0, np.pi), rng.uniform(0, 6.3)
            pattern += amp * np.sin(2 * np.pi * freq * (np.cos(angle) * u + np.sin(angle) * v) + phase)
            total += amp
        pattern /= total * 0.6
    elif kind == "stripes":
        freq, angle, phase = rng.uniform(3.0, 6.0), rng.uniform(0, np.pi), rng.uniform(0, 6.3)
        pattern = np.tanh(2.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * u + np.sin(angle) * v) + phase)) / np.tanh(2.5)
        pattern = 0.8 * pattern + 0.2 * _ripple(rng, u, v)  # a faint cross texture: camera motion shows on both axes
    elif kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        ramp = 2.0 * (np.cos(angle) * (u - cx) + np.sin(angle) * (v - cy))
        pattern = 0.7 * ramp + 0.3 * _ripple(rng, u, v)
    else:  # checker
        freq, p1, p2 = rng.uniform(2.0, 4.0), rng.uniform(0, 6.3), rng.uniform(0, 6.3)
        pattern = np.tanh(3.0 * np.sin(2 * np.pi * freq * u + p1) * np.sin(2 * np.pi * freq * v + p2)) / np.tanh(3.0)
    pattern = np.clip(pattern, -1.0, 1.0)
    base, amp = rng.uniform(0.22, 0.40), rng.uniform(0.08, 0.14)
    tint = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), 1.0, 1.0), dtype=np.float32)
    saturation = rng.uniform(0.04, 0.15)
    value = (base + amp * pattern).astype(np.float32)
    return value[..., None] * ((1 - saturation) + saturation * tint)


def _ripple(rng: np.random.Generator, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A soft two-dimensional wave pattern in -1..1."""
    fu, fv, pu, pv = rng.uniform(1.5, 3.0), rng.uniform(1.5, 3.0), rng.uniform(0, 6.3), rng.uniform(0, 6.3)
    return np.sin(2 * np.pi * fu * u + pu) * np.sin(2 * np.pi * fv * v + pv)


def _polygon(shape: str) -> np.ndarray:
    """Vertices [K, 2] of a polygon shape in units of the radius (y down, pointing up)."""
    if shape == "square":
        a = 0.85
        return np.array([[-a, -a], [a, -a], [a, a], [-a, a]])
    if shape == "triangle":
        angles = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return 1.15 * np.stack([np.cos(angles), np.sin(angles)], 1)
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5  # star
    radii = np.where(np.arange(10) % 2 == 0, STAR_OUTER, 0.5)
    return radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], 1)


def _polygon_sdf(px: np.ndarray, py: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) from points to a simple polygon."""
    dist = np.full(px.shape, np.inf)
    inside = np.zeros(px.shape, dtype=bool)
    for (ax, ay), (bx, by) in zip(verts, np.roll(verts, -1, axis=0)):
        ex, ey = bx - ax, by - ay
        h = np.clip(((px - ax) * ex + (py - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        dist = np.minimum(dist, np.hypot(px - ax - h * ex, py - ay - h * ey))
        crosses = (ay > py) != (by > py)
        x_at = ax + (py - ay) * ex / np.where(ey == 0, 1.0, ey)
        inside ^= crosses & (px < x_at)
    return np.where(inside, -dist, dist)


def shape_sdf(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance in pixels of offsets (dx, dy) from the centre to `shape` of `radius` pixels."""
    if shape == "circle":
        return np.hypot(dx, dy) - radius
    if shape == "ring":
        return np.abs(np.hypot(dx, dy) - 0.775 * radius) - 0.225 * radius
    return _polygon_sdf(dx / radius, dy / radius, _polygon(shape)) * radius


def _paint_shape(frame: np.ndarray, shape: str, centre: np.ndarray, radius: float, rgb: np.ndarray) -> None:
    """Alpha-blends an anti-aliased `shape` into frame [H, W, 3] in place."""
    height, width = frame.shape[:2]
    reach = STAR_OUTER * radius + 2
    x0, x1 = max(int(centre[0] - reach), 0), min(int(math.ceil(centre[0] + reach)), width)
    y0, y1 = max(int(centre[1] - reach), 0), min(int(math.ceil(centre[1] + reach)), height)
    if x0 >= x1 or y0 >= y1:
        return
    dx = (np.arange(x0, x1) + 0.5 - centre[0])[None, :]
    dy = (np.arange(y0, y1) + 0.5 - centre[1])[:, None]
    dx, dy = np.broadcast_arrays(dx, dy)
    alpha = np.clip(0.5 - shape_sdf(shape, dx, dy, radius), 0.0, 1.0).astype(np.float32)[..., None]
    patch = frame[y0:y1, x0:x1]
    patch *= 1.0 - alpha
    patch += alpha * rgb
