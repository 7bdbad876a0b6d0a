"""Small procedural example inputs for the shipped workflows (workflows/inputs/), each well under 200 kB.

* image: a sunset over hills, 768x512 JPEG (image -> audio + video);
* audio: a 6 s drum-and-melody loop at 120 bpm, stereo FLAC 22.05 kHz (audio -> video);
* video: a red ball bouncing on a floor, 768x512, 121 frames at 24 fps, H.264 + AAC with a knock at every
  bounce, so sound and motion line up (video -> audio);
* keyframes: the sunset hills at three times of day, 768x512 JPEGs (first / middle / last keyframes);
* depth: a ball rolling toward the camera as a depth estimator shows it (near bright), 384x256, 121 frames
  (depth control);
* pose: five key poses of a person raising the arms, OpenPose JSON on a 768x512 canvas (pose control).
Everything is computed from formulas (no randomness), so rebuilding gives the same pictures and sounds.
"""
from __future__ import annotations

import json
import math
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


def sunset_image(width: int = WIDTH, height: int = HEIGHT, sun: tuple[float, float] = (0.62, 0.55),
                 top: tuple[int, int, int] = (40, 50, 120), horizon: tuple[int, int, int] = (250, 150, 80)
                 ) -> Image.Image:
    """Sky from `top` to `horizon` colour, the sun at `sun` (fractions of width / height), three hill ridges."""
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    top, horizon = np.array(top), np.array(horizon)
    sky = (top + (horizon - top) * y**1.5) * np.ones((1, width, 1))
    image = Image.fromarray(sky.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    sun_x, sun_y, radius = width * sun[0], height * sun[1], height * 0.12
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


# Keyframes: the same hills from late afternoon to dusk, the sun sinking (first / middle / last frame).
KEY_NAMES = ("avgen_example_key_first.jpg", "avgen_example_key_middle.jpg", "avgen_example_key_last.jpg")
KEY_SKIES = (((0.30, 0.25), (70, 120, 200), (240, 210, 150)), ((0.50, 0.45), (50, 70, 150), (250, 170, 90)),
             ((0.70, 0.68), (20, 20, 60), (200, 80, 60)))


def write_keyframes(paths) -> None:
    for path, (sun, top, horizon) in zip(paths, KEY_SKIES):
        sunset_image(sun=sun, top=top, horizon=horizon).save(path, format="JPEG", quality=85)


# Depth control: a ball rolling toward the camera across a floor in front of a wall, as a depth estimator
# would show it (disparity: near = bright), 384x256 grey, FRAMES frames at FPS.
DEPTH_NAME = "avgen_example_depth.mp4"
DEPTH_WIDTH, DEPTH_HEIGHT = 384, 256


def depth_frame(frame: int, width: int = DEPTH_WIDTH, height: int = DEPTH_HEIGHT) -> np.ndarray:
    """(H, W, 3) uint8: wall at distance 8, floor from the horizon (y = 0.45) to distance 1.5 at the bottom,
    a ball of radius 0.5 rolling on it from distance 7 to 2.5; grey = 255 * 1.5 / distance."""
    y = (np.arange(height)[:, None] + 0.5) / height
    x = (np.arange(width)[None, :] + 0.5) / width
    horizon = 0.45
    floor = np.where(y > horizon, 1.5 * (1 - horizon) / np.maximum(y - horizon, 1e-6), np.inf)
    distance = np.minimum(np.full((height, width), 8.0), floor)
    progress = frame / (FRAMES - 1)
    ball_distance = 7.0 - 4.5 * progress
    centre_x = 0.3 + 0.4 * progress
    focal = 1.5 * (1 - horizon)  # camera 1 unit above the floor: the floor at distance d is at horizon + focal / d
    radius = focal * 0.5 / ball_distance
    centre_y = horizon + focal * 0.5 / ball_distance  # resting on the floor
    aspect = width / height
    inside = ((x - centre_x) * aspect) ** 2 + (y - centre_y) ** 2 <= radius ** 2
    distance = np.where(inside, np.minimum(distance, ball_distance), distance)
    grey = np.clip(255 * 1.5 / distance, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def write_depth_video(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=Fraction(FPS))
        video.width, video.height, video.pix_fmt = DEPTH_WIDTH, DEPTH_HEIGHT, "yuv420p"
        video.options = {"crf": "28", "preset": "medium", "threads": "1"}
        for index in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(depth_frame(index), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))


# Pose control: five key poses of one person on a 768x512 canvas (OpenPose JSON list, COCO-18 body + hands),
# for key positions 0, 0.25, 0.5, 0.75, 1 of the clip: arms down, right arm out, right hand up, left arm out,
# both hands up. The pose node interpolates between them.
POSE_NAME = "avgen_example_pose.json"
POSE_KEY_POSITIONS = "0, 0.25, 0.5, 0.75, 1"
_BODY_DOWN = [(384, 120), (384, 170), (344, 172), (330, 240), (324, 305), (424, 172), (438, 240), (444, 305),
              (360, 300), (356, 390), (352, 470), (408, 300), (412, 390), (416, 470), (374, 110), (394, 110),
              (362, 116), (406, 116)]
_RIGHT_OUT, _RIGHT_UP = [(344, 172), (280, 176), (216, 172)], [(344, 172), (300, 120), (310, 50)]
_LEFT_OUT, _LEFT_UP = [(424, 172), (488, 176), (552, 172)], [(424, 172), (468, 120), (458, 50)]


def _arm(body, joints, points):
    body = list(body)
    for joint, point in zip(joints, points):
        body[joint] = point
    return body


def _hand(wrist: tuple[float, float], direction: float) -> list[float]:
    """21 hand points fanning out from the wrist toward `direction` (radians), confidence 0.9."""
    points = [wrist]
    for finger in range(5):
        angle = direction + (finger - 2) * 0.3
        for joint in range(1, 5):
            reach = 8 + 9 * joint
            points.append((wrist[0] + reach * math.cos(angle), wrist[1] + reach * math.sin(angle)))
    return [round(v, 1) for x, y in points for v in (x, y, 0.9)]


def pose_keyframes() -> list[dict]:
    right, left = (2, 3, 4), (5, 6, 7)
    bodies = [_BODY_DOWN, _arm(_BODY_DOWN, right, _RIGHT_OUT), _arm(_BODY_DOWN, right, _RIGHT_UP),
              _arm(_arm(_BODY_DOWN, right, _RIGHT_UP), left, _LEFT_OUT),
              _arm(_arm(_BODY_DOWN, right, _RIGHT_UP), left, _LEFT_UP)]
    frames = []
    for body in bodies:
        hands = {}
        for name, (_, elbow, wrist) in (("hand_right_keypoints_2d", right), ("hand_left_keypoints_2d", left)):
            direction = math.atan2(body[wrist][1] - body[elbow][1], body[wrist][0] - body[elbow][0])
            hands[name] = _hand(body[wrist], direction)
        person = {"pose_keypoints_2d": [v for x, y in body for v in (x, y, 0.95)], **hands}
        frames.append({"people": [person], "canvas_width": WIDTH, "canvas_height": HEIGHT})
    return frames


def write_pose(path: Path) -> None:
    path.write_text(json.dumps(pose_keyframes(), indent=1) + "\n", encoding="utf-8")


def write_all(directory: Path) -> list[Path]:
    """Write every example input into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / IMAGE_NAME, directory / AUDIO_NAME, directory / VIDEO_NAME]
    for write, path in zip((write_image, write_audio, write_video), paths):
        write(path)
    keys = [directory / name for name in KEY_NAMES]
    write_keyframes(keys)
    write_depth_video(directory / DEPTH_NAME)
    write_pose(directory / POSE_NAME)
    return paths + keys + [directory / DEPTH_NAME, directory / POSE_NAME]
