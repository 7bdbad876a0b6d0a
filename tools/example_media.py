"""Small procedural example inputs for the shipped workflows (workflows/inputs/), each well under 200 kB.

* image: a sunset over hills, 768x512 JPEG (image -> audio + video);
* audio: a 6 s drum-and-melody loop at 120 bpm, stereo FLAC 22.05 kHz (audio -> video);
* video: a red ball bouncing on a floor, 768x512, 121 frames at 24 fps, H.264 + AAC with a knock at every
  bounce, so sound and motion line up (video -> audio).
Everything is computed from formulas (no randomness), so rebuilding gives the same pictures and sounds.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

IMAGE_NAME = "avgen_example_image.jpg"
AUDIO_NAME = "avgen_example_audio.flac"
VIDEO_NAME = "avgen_example_video.mp4"
WIDTH, HEIGHT, FPS, FRAMES = 768, 512, 24, 121
AUDIO_RATE, AUDIO_SECONDS, BPM = 22050, 6.0, 120
VIDEO_AUDIO_RATE = 48000


def sunset_image(width: int = WIDTH, height: int = HEIGHT) -> Image.Image:
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    top, horizon = np.array([40, 50, 120]), np.array([250, 150, 80])
    sky = (top + (horizon - top) * y**1.5) * np.ones((1, width, 1))
    image = Image.fromarray(sky.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    sun_x, sun_y, radius = width * 0.62, height * 0.55, height * 0.12
    draw.ellipse([sun_x - radius, sun_y - radius, sun_x + radius, sun_y + radius], fill=(255, 220, 120))
    for layer, (color, base, amplitude, waves) in enumerate(
        [((90, 60, 90), 0.62, 0.06, 2.0), ((50, 40, 70), 0.74, 0.05, 3.1), ((25, 25, 40), 0.86, 0.04, 4.3)]
    ):
        xs = np.arange(width + 1)
        ridge = height * (base + amplitude * np.sin(xs / width * waves * np.pi + layer))
        draw.polygon([(0, height)] + [(int(x), float(r)) for x, r in zip(xs, ridge)] + [(width, height)], fill=color)
    return image


def drum_loop(rate: int = AUDIO_RATE, seconds: float = AUDIO_SECONDS, bpm: int = BPM) -> np.ndarray:
    """(2, samples) float32 in -1..1: kick on every beat, hi-hat on off-beats, a melody panned left-right."""
    t = np.arange(int(rate * seconds)) / rate
    beat = 60.0 / bpm
    phase = t % beat
    kick = np.sin(2 * np.pi * 55 * phase * (1 + 2 * np.exp(-phase * 30))) * np.exp(-phase * 9)
    off = (t + beat / 2) % beat
    hat = np.sin(2 * np.pi * 7000 * t) * np.sin(2 * np.pi * 5100 * t) * np.exp(-off * 60)
    notes = np.array([220.0, 261.63, 329.63, 392.0, 329.63, 261.63, 246.94, 196.0])
    index = (t // (beat / 2)).astype(int) % len(notes)
    note_phase = t % (beat / 2)
    melody = np.sin(2 * np.pi * notes[index] * t) * np.exp(-note_phase * 4)
    pan = 0.5 + 0.4 * np.sin(2 * np.pi * t / seconds)
    left = 0.55 * kick + 0.12 * hat + 0.3 * melody * (1 - pan)
    right = 0.55 * kick + 0.12 * hat + 0.3 * melody * pan
    return np.stack([left, right]).astype(np.float32)


def _ball_y(frame: int) -> tuple[float, bool]:
    """Ball height above the floor (0..1) and whether it touches the floor in this frame (bounce every 24 frames)."""
    cycle = frame % 24
    return 1.0 - ((cycle - 12) / 12.0) ** 2, cycle == 0


def ball_frame(frame: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    image = Image.new("RGB", (width, height), (70, 110, 160))
    draw = ImageDraw.Draw(image)
    floor = int(height * 0.8)
    draw.rectangle([0, floor, width, height], fill=(60, 120, 60))
    lift, _ = _ball_y(frame)
    radius = height * 0.08
    x = width * (0.15 + 0.7 * frame / (FRAMES - 1))
    y = floor - radius - lift * height * 0.55
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(220, 50, 40))
    return np.asarray(image)


def knocks(rate: int = VIDEO_AUDIO_RATE, frames: int = FRAMES, fps: int = FPS) -> np.ndarray:
    """(2, samples) float32: a short knock at every bounce frame."""
    t = np.arange(round(rate * frames / fps)) / rate
    audio = np.zeros_like(t)
    for frame in range(frames):
        if _ball_y(frame)[1]:
            start = frame / fps
            local = np.clip(t - start, 0, None)
            audio += (t >= start) * np.sin(2 * np.pi * 180 * local) * np.exp(-local * 40)
    return np.stack([audio, audio]).astype(np.float32) * 0.6


def _write_audio(container, stream, audio: np.ndarray, rate: int) -> None:
    block = 1024 if stream.codec_context.name == "aac" else 4096
    for start in range(0, audio.shape[1], block):
        chunk = np.ascontiguousarray(audio[:, start:start + block])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def write_image(path: Path) -> None:
    sunset_image().save(path, format="JPEG", quality=90)


def write_audio(path: Path) -> None:
    audio = drum_loop()
    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=AUDIO_RATE, layout="stereo")
        stream.codec_context.format = "s16"
        samples = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for start in range(0, samples.shape[1], 4096):
            chunk = np.ascontiguousarray(samples[:, start:start + 4096].T.reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            frame.sample_rate = AUDIO_RATE
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def write_video(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=Fraction(FPS))
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"crf": "30", "preset": "medium", "threads": "1"}
        audio = container.add_stream("aac", rate=VIDEO_AUDIO_RATE, layout="stereo")
        audio.bit_rate = 64000
        for index in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(ball_frame(index), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        _write_audio(container, audio, knocks(), VIDEO_AUDIO_RATE)


def write_all(directory: Path) -> list[Path]:
    """Write the three example inputs into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / IMAGE_NAME, directory / AUDIO_NAME, directory / VIDEO_NAME]
    for write, path in zip((write_image, write_audio, write_video), paths):
        write(path)
    return paths
