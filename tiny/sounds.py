"""Percussive event sounds of the "shapes & sounds" data: pitch from the shape, timbre from the colour.

Every sound starts with a sharp attack exactly at its event time, so audio onsets and video events line up.
"""
from __future__ import annotations

import numpy as np

# Fundamental frequency in Hz and the caption word for it, per shape.
PITCH = {
    "square": (220.0, "deep"),
    "triangle": (330.0, "low"),
    "circle": (495.0, "mid"),
    "ring": (660.0, "high"),
    "star": (990.0, "bright"),
}

# Per colour: caption noun, partials as (frequency ratio, amplitude), noise share, decay time in seconds.
# Decays are short so that a sound has faded (< 20 %) before the next event 4 frames later can start.
TIMBRE = {
    "red": ("drum", ((1.0, 1.0), (1.6, 0.35)), 0.55, 0.05),
    "orange": ("gong", ((1.0, 1.0), (1.48, 0.6), (2.13, 0.45), (2.94, 0.3)), 0.0, 0.1),
    "yellow": ("chime", ((1.0, 1.0), (2.76, 0.5), (5.4, 0.25)), 0.0, 0.09),
    "green": ("pluck", tuple((float(k), 1.0 / k) for k in range(1, 7)), 0.05, 0.06),
    "cyan": ("whistle", ((1.0, 1.0),), 0.0, 0.08),
    "blue": ("bell", ((1.0, 1.0), (2.0, 0.6), (3.0, 0.4), (4.2, 0.25)), 0.0, 0.1),
    "purple": ("buzz", tuple((float(k), 1.0 / k) for k in range(1, 10, 2)), 0.0, 0.07),
    "white": ("click", ((1.0, 0.5), (3.0, 0.2)), 0.8, 0.03),
}

DECAY_LENGTHS = 7.0  # a sound lasts this many decay times (its envelope ends below 1e-3)
ATTACK_SECONDS = 0.002
TRANSIENT_SECONDS = 0.004  # a short noise burst at every onset: the "hit"


def event_sound(shape: str, colour: str, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 [n] sound for one event of `shape` in `colour`; peak amplitude about 0.5."""
    base, _ = PITCH[shape]
    _, partials, noise_share, decay = TIMBRE[colour]
    n = int(round(DECAY_LENGTHS * decay * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    nyquist = sample_rate / 2
    tone = np.zeros(n)
    for ratio, amplitude in partials:
        if base * ratio < nyquist * 0.9:
            tone += amplitude * np.sin(2 * np.pi * base * ratio * t)
    tone /= max(np.abs(tone).max(), 1e-9)
    noise = rng.standard_normal(n)
    noise /= np.abs(noise).max()
    mixed = (1.0 - noise_share) * tone + noise_share * noise
    attack = np.clip(t / ATTACK_SECONDS, 0.0, 1.0)
    mixed += 0.4 * noise * np.exp(-t / (TRANSIENT_SECONDS / 3))
    envelope = attack * np.exp(-t / decay)
    return (0.5 * mixed * envelope).astype(np.float32)


def mix_events(events: list[tuple[float, float, str, str]], samples: int, sample_rate: int,
               rng: np.random.Generator, floor_noise: float = 0.002) -> np.ndarray:
    """Stereo float32 [2, samples] track of a faint noise floor plus one sound per event.

    events: (time in seconds, horizontal position 0 (left) .. 1 (right) for panning, shape, colour).
    """
    track = (floor_noise * rng.standard_normal((2, samples))).astype(np.float32)
    for time, pan, shape, colour in events:
        start = int(round(time * sample_rate))
        if start >= samples:
            continue
        sound = event_sound(shape, colour, sample_rate, rng)[: samples - start]
        angle = float(np.clip(pan, 0.0, 1.0)) * np.pi / 2
        # Constant-power panning, kept away from hard left/right so both channels carry every onset.
        left, right = 0.35 + 0.65 * np.cos(angle), 0.35 + 0.65 * np.sin(angle)
        track[0, start:start + len(sound)] += left * sound
        track[1, start:start + len(sound)] += right * sound
    return np.clip(track, -1.0, 1.0)
