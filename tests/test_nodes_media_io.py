"""AVGenLoadImage / AVGenLoadAudio / AVGenLoadVideo over the input directory, and `avgen run --input-dir`."""
from __future__ import annotations

import json
import os
import sys
import types
import wave

import numpy as np
import pytest
import torch
from PIL import Image

from comfyui_avgen.cli import main
from comfyui_avgen.media.audio_io import AUDIO_EXTENSIONS
from comfyui_avgen.media.image_io import IMAGE_EXTENSIONS
from comfyui_avgen.media.video_io import VIDEO_EXTENSIONS, write_mp4
from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.media_io import NO_IMAGES, AVGenLoadAudio, AVGenLoadImage, AVGenLoadVideo
from comfyui_avgen.runner.widgets import widget_values_to_inputs


def _wav(path, samples: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(samples.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.T.astype("<i2").tobytes())


@pytest.fixture
def input_dir(tmp_path):
    root = tmp_path / "input"
    root.mkdir()
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., 1], rgba[..., 3] = 255, 64
    Image.fromarray(rgba, "RGBA").save(root / "b.png")
    Image.new("RGB", (8, 6), (1, 2, 3)).save(root / "a.jpg")
    _wav(root / "tone.wav", (np.ones((1, 1600)) * 8192).astype(np.int16), 16000)
    ramp = torch.linspace(0, 1, 25)[:, None, None, None].expand(25, 32, 48, 3)
    write_mp4(root / "clip.mp4", ramp, 25.0, 0.2 * torch.ones(2, 24000), 24000)
    write_mp4(root / "silent.mp4", ramp[:9], 12.0)
    (root / "broken.mp4").write_bytes(b"\x00" * 64)
    (root / "notes.txt").write_text("not media")
    with comfy_adapter.configured(input_dir=root):
        yield root


def _with_examples(names, extensions):
    return sorted({*names, *comfy_adapter.example_inputs(extensions)})


def test_combos_list_the_input_files_with_upload_buttons(input_dir):
    image = AVGenLoadImage.INPUT_TYPES()["required"]["image"]
    assert image[0] == _with_examples(["a.jpg", "b.png"], IMAGE_EXTENSIONS) and image[1]["image_upload"] is True
    audio = AVGenLoadAudio.INPUT_TYPES()["required"]["audio"]
    assert audio[0] == _with_examples(["broken.mp4", "clip.mp4", "silent.mp4", "tone.wav"],
                                      AUDIO_EXTENSIONS | VIDEO_EXTENSIONS)
    video = AVGenLoadVideo.INPUT_TYPES()["required"]["video"]
    assert video[0] == _with_examples(["broken.mp4", "clip.mp4", "silent.mp4"], VIDEO_EXTENSIONS)
    assert video[1]["video_upload"] is True


def test_upload_button_value_in_saved_workflows_is_skipped():
    """The frontend saves the upload button's value after every other widget (optional ones included)."""
    inputs = widget_values_to_inputs(AVGenLoadVideo, ["clip.mp4", 5, 2, 3, "image"])
    assert inputs == {"video": "clip.mp4", "frame_limit": 5, "skip_first_frames": 2, "select_every_nth": 3}


def test_empty_input_folder_shows_a_placeholder_that_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(comfy_adapter, "EXAMPLE_INPUTS_DIR", tmp_path / "no examples")
    with comfy_adapter.configured(input_dir=tmp_path / "nothing"):
        assert AVGenLoadImage.INPUT_TYPES()["required"]["image"][0] == [NO_IMAGES]
        message = AVGenLoadImage.VALIDATE_INPUTS(NO_IMAGES)
        assert message.startswith("AVGenLoadImage: no file selected for image: put one in")
        with pytest.raises(NodeInputError, match="no file selected"):
            AVGenLoadImage().load(NO_IMAGES)


def test_load_image_returns_comfy_image_and_mask(input_dir):
    image, mask = AVGenLoadImage().load("b.png")
    assert image.shape == (1, 6, 8, 3) and image.dtype == torch.float32
    assert torch.all(image[..., 1] == 1.0) and torch.all(image[..., 0] == 0.0)
    torch.testing.assert_close(mask, torch.full((1, 6, 8), 1 - 64 / 255))
    image, mask = AVGenLoadImage().load("a.jpg")
    assert image.shape == (1, 6, 8, 3) and not mask.any()


def test_load_audio_returns_comfy_audio(input_dir):
    (audio,) = AVGenLoadAudio().load("tone.wav")
    assert audio["sample_rate"] == 16000 and audio["waveform"].shape == (1, 1, 1600)
    torch.testing.assert_close(audio["waveform"], torch.full((1, 1, 1600), 0.25))
    (from_video,) = AVGenLoadAudio().load("clip.mp4")
    assert from_video["sample_rate"] == 24000 and from_video["waveform"].shape[:2] == (1, 2)


def test_load_video_frames_audio_fps_and_options(input_dir):
    frames, audio, fps = AVGenLoadVideo().load("clip.mp4")
    assert frames.shape == (25, 32, 48, 3) and fps == 25.0
    assert audio["sample_rate"] == 24000 and audio["waveform"].shape == (1, 2, 24000)
    assert frames[0].mean() < 0.05 and frames[-1].mean() > 0.95

    part, part_audio, part_fps = AVGenLoadVideo().load("clip.mp4", frame_limit=3, skip_first_frames=4,
                                                       select_every_nth=2)
    torch.testing.assert_close(part, frames[4:10:2])
    assert part_fps == 12.5 and part_audio["waveform"].shape == (1, 2, round(3 * 2 / 25 * 24000))


def test_video_without_audio_gets_silence_of_its_length(input_dir):
    frames, audio, fps = AVGenLoadVideo().load("silent.mp4", select_every_nth=2)
    assert frames.shape[0] == 5 and fps == 6.0
    assert audio["sample_rate"] == 48000 and audio["waveform"].shape == (1, 2, round(5 / 6 * 48000))
    assert not audio["waveform"].any()


def test_missing_unreadable_and_escaping_files_are_named_errors(input_dir):
    for node, name in ((AVGenLoadImage, "image"), (AVGenLoadAudio, "audio"), (AVGenLoadVideo, "video")):
        message = node.VALIDATE_INPUTS(**{name: "missing.file"})
        assert message.startswith(f"{node.__name__}: {name}: input file 'missing.file' not found in")
        with pytest.raises(NodeInputError, match=f"{node.__name__}: {name}: input file 'missing.file' not found"):
            node().load("missing.file")
        assert node.VALIDATE_INPUTS(**{name: "clip.mp4" if name != "image" else "a.jpg"}) is True
    Image.new("RGB", (4, 4)).save(input_dir.parent / "outside.png")
    with pytest.raises(NodeInputError, match="'../outside.png' not found"):  # never leaves the input folder
        AVGenLoadImage().load("../outside.png")
    with pytest.raises(NodeInputError, match="AVGenLoadVideo: video: cannot read .*broken.mp4"):
        AVGenLoadVideo().load("broken.mp4")
    with pytest.raises(NodeInputError, match="AVGenLoadAudio: audio: cannot read .*broken.mp4"):
        AVGenLoadAudio().load("broken.mp4")
    with pytest.raises(NodeInputError, match="AVGenLoadImage: image: cannot read .*notes.txt' as an image"):
        AVGenLoadImage().load("notes.txt")
    with pytest.raises(NodeInputError, match="AVGenLoadVideo: video: .*tone.wav' has no video stream"):
        AVGenLoadVideo().load("tone.wav")
    with pytest.raises(NodeInputError, match="AVGenLoadVideo: video: .*clip.mp4.: no frames left after skipping 100"):
        AVGenLoadVideo().load("clip.mp4", skip_first_frames=100)


def test_is_changed_follows_the_file(input_dir):
    before = AVGenLoadImage.IS_CHANGED("a.jpg")
    assert before == AVGenLoadImage.IS_CHANGED("a.jpg")
    stat = os.stat(input_dir / "a.jpg")
    os.utime(input_dir / "a.jpg", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert AVGenLoadImage.IS_CHANGED("a.jpg") != before
    assert AVGenLoadVideo.IS_CHANGED("clip.mp4", frame_limit=2) == AVGenLoadVideo.IS_CHANGED("clip.mp4")


def test_cli_run_reads_from_input_dir_and_saves_to_output_dir(input_dir, tmp_path, capsys):
    workflow = {
        "1": {"class_type": "AVGenLoadVideo", "inputs": {"video": "clip.mp4"}},
        "2": {"class_type": "AVGenAudioSyncSave", "inputs": {
            "images": ["1", 0], "audio": ["1", 1], "fps": ["1", 2], "filename_prefix": "copy", "crf": 23}},
    }
    path = tmp_path / "workflow.json"
    path.write_text(json.dumps(workflow))
    out = tmp_path / "out"
    assert main(["run", str(path), "--input-dir", str(input_dir), "--output-dir", str(out)]) == 0
    assert (out / "copy_00001_.mp4").is_file()
    assert "audio-video offset" in capsys.readouterr().out

    workflow["1"]["inputs"]["video"] = "missing.mp4"
    path.write_text(json.dumps(workflow))
    assert main(["run", str(path), "--input-dir", str(input_dir), "--output-dir", str(out)]) == 1
    assert "input file 'missing.mp4' not found" in capsys.readouterr().err


def test_input_dir_comes_from_env_standalone_and_from_comfyui_inside(tmp_path, monkeypatch):
    monkeypatch.setenv("AVGEN_INPUT_DIR", str(tmp_path / "env"))
    with comfy_adapter.configured():
        assert comfy_adapter.input_directory() == tmp_path / "env"
    (tmp_path / "comfy_input").mkdir()
    Image.new("RGB", (4, 2)).save(tmp_path / "comfy_input" / "x.png")
    folder_paths = types.ModuleType("folder_paths")
    folder_paths.get_input_directory = lambda: str(tmp_path / "comfy_input")
    folder_paths.get_annotated_filepath = lambda name: str(tmp_path / "comfy_input" / name.removesuffix(" [input]"))
    monkeypatch.setitem(sys.modules, "folder_paths", folder_paths)
    assert comfy_adapter.in_comfyui()
    assert AVGenLoadImage.INPUT_TYPES()["required"]["image"][0] == _with_examples(["x.png"], IMAGE_EXTENSIONS)
    assert AVGenLoadImage().load("x.png [input]")[0].shape == (1, 2, 4, 3)
    with pytest.raises(NodeInputError, match="AVGenLoadImage: image: input file 'y.png' not found"):
        AVGenLoadImage().load("y.png")


def test_the_workflows_example_inputs_load_without_copying_and_a_users_file_wins(tmp_path):
    """The shipped workflows name example files that come with the pack: an empty input folder still runs them,
    and a user's file of the same name is the one loaded (nothing is copied or overwritten)."""
    with comfy_adapter.configured(input_dir=tmp_path / "input"):
        assert AVGenLoadImage.VALIDATE_INPUTS("avgen_example_image.jpg") is True
        image, _ = AVGenLoadImage().load("avgen_example_image.jpg")
        assert image.shape[1:] == (512, 768, 3)
        (audio,) = AVGenLoadAudio().load("avgen_example_audio.flac")
        assert audio["waveform"].shape[-1] > 0
        (tmp_path / "input").mkdir()
        Image.new("RGB", (4, 2)).save(tmp_path / "input" / "avgen_example_image.jpg")
        assert AVGenLoadImage().load("avgen_example_image.jpg")[0].shape == (1, 2, 4, 3)
        with pytest.raises(NodeInputError, match="input file 'avgen_example_missing.jpg' not found"):
            AVGenLoadImage().load("avgen_example_missing.jpg")
    assert sorted(p.name for p in (tmp_path / "input").iterdir()) == ["avgen_example_image.jpg"]
