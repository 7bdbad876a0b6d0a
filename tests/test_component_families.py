"""Every file's components are told apart by release, and files of different releases are never combined silently.

An LTX-2 transformer decoded by an LTX-2.3 VAE gives noise (the latent spaces differ), and both VAEs have 128 latent
channels, so nothing fails by itself: the family must come from each component's own tensors (or the file's
model_version), for single files, split files with and without the released prefixes, and VAE-only files.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from golden import SHARED_GOLDEN
from reference import manifest
from safetensors import safe_open
from safetensors.torch import save_file

from comfyui_avgen.models.checkpoint import CheckpointError, CheckpointFile
from comfyui_avgen.models.family import inspect_checkpoint
from comfyui_avgen.models.ltx import open_ltx
from comfyui_avgen.nodes import comfy_adapter, model_cache
from comfyui_avgen.nodes.errors import NodeInputError
from comfyui_avgen.nodes.loaders import FROM_CHECKPOINT, AVGenCheckpointLoader

LTX2 = SHARED_GOLDEN / "ltx2" / "checkpoint.safetensors"
LTX23 = SHARED_GOLDEN / "ltx23" / "checkpoint.safetensors"
GOLDEN = {"ltx2": LTX2, "ltx23": LTX23}
TITLE = {"ltx2": r"LTX-2 \(19B\)", "ltx23": r"LTX-2.3 \(22B\)"}
OTHER = {"ltx2": "ltx23", "ltx23": "ltx2"}
TOLD_BY_WEIGHTS = ("transformer", "text_projection", "video_encoder", "video_decoder", "vocoder")


class ManifestCheckpoint(CheckpointFile):
    """The header of a released checkpoint (keys and shapes from the reference manifests), without tensors."""

    def __init__(self, variant: str):
        self.path = f"{variant}.safetensors"
        components = ("transformer", "text_connector", "video_vae_encoder", "video_vae_decoder", "audio_vae_encoder",
                      "audio_vae_decoder", "vocoder")
        self._shapes = {k: s for c in components for k, s in manifest(variant, c).items()}
        self._keys = list(self._shapes)
        self._key_set = set(self._keys)
        self.metadata = {}

    def shape(self, key):
        return self._shapes[key]


def read_all(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, json.loads(f.metadata()["config"])


def write_split(path: Path, family: str, keep: tuple[str, ...], strip: str = "", config: tuple[str, ...] = (),
                version: str | None = None) -> Path:
    """The tensors of golden `family` under the `keep` prefixes, `strip` removed from their keys, with the named
    config entries and model_version (none by default: split files often have no metadata)."""
    tensors, full_config = read_all(GOLDEN[family])
    part = {k.removeprefix(strip): v for k, v in tensors.items() if k.startswith(keep)}
    metadata = {"config": json.dumps({name: full_config[name] for name in config})} if config else {}
    if version:
        metadata["model_version"] = version
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(part, str(path), metadata)
    return path


@pytest.mark.parametrize("variant,family", [("ltx2_19b", "ltx2"), ("ltx23_22b", "ltx23")])
def test_released_layouts_tell_their_family_component_by_component(variant, family):
    info = inspect_checkpoint(ManifestCheckpoint(variant))
    assert {c: info.families.get(c) for c in TOLD_BY_WEIGHTS} == dict.fromkeys(TOLD_BY_WEIGHTS, family)
    assert info.family == family
    assert "audio_encoder" not in info.families  # identical audio VAE layouts in both releases, no model_version


@pytest.mark.parametrize("family", ["ltx2", "ltx23"])
def test_golden_single_files_tell_their_family_component_by_component(family):
    info = inspect_checkpoint(CheckpointFile(GOLDEN[family]))
    assert all(info.families[c] == family for c in TOLD_BY_WEIGHTS)


@pytest.mark.parametrize("strip", ["", "vae."], ids=["released-prefix", "bare-keys"])
@pytest.mark.parametrize("family", ["ltx2", "ltx23"])
def test_a_vae_only_file_of_the_other_release_is_refused_naming_both_files(tmp_path, family, strip):
    transformer = write_split(tmp_path / "dit.safetensors", family, ("model.diffusion_model.", "text_embedding_"),
                              config=("transformer",))
    vae = write_split(tmp_path / "vae.safetensors", OTHER[family], ("vae.",), strip=strip)
    assert inspect_checkpoint(CheckpointFile(vae)).families["video_decoder"] == OTHER[family]
    with pytest.raises(CheckpointError) as caught:
        open_ltx([transformer, vae])
    message = str(caught.value)
    assert "different model families" in message
    assert re.search(rf"{transformer} holds the {TITLE[family]} .*transformer; {vae} holds the "
                     rf"{TITLE[OTHER[family]]} video decoder, video encoder", message), message


@pytest.mark.parametrize("keep,component", [(("vocoder.",), "vocoder"),
                                            (("text_embedding_projection.",), "text projection")])
def test_other_split_components_of_the_other_release_are_refused(tmp_path, keep, component):
    transformer = write_split(tmp_path / "dit.safetensors", "ltx2", ("model.diffusion_model.",), config=("transformer",))
    other = write_split(tmp_path / "part.safetensors", "ltx23", keep)
    with pytest.raises(CheckpointError, match=rf"part.safetensors holds the LTX-2.3 \(22B\) {component}"):
        open_ltx([transformer, other])


def test_audio_vae_follows_the_files_model_version(tmp_path):
    """Both releases share the audio VAE layout: a file without model_version is accepted, one that says 2.3 is not."""
    transformer = write_split(tmp_path / "dit.safetensors", "ltx2", ("model.diffusion_model.",), config=("transformer",))
    unlabelled = write_split(tmp_path / "audio.safetensors", "ltx2", ("audio_vae.",), config=("audio_vae",))
    assert open_ltx([transformer, unlabelled]).family == "ltx2"
    labelled = write_split(tmp_path / "audio23.safetensors", "ltx23", ("audio_vae.",), version="2.3.0")
    with pytest.raises(CheckpointError, match=r"audio23.safetensors holds the LTX-2.3 \(22B\) audio decoder, audio "
                                              r"encoder, audio statistics"):
        open_ltx([transformer, labelled])


def test_same_release_split_files_build_each_part_from_its_own_files_config(tmp_path):
    transformer = write_split(tmp_path / "dit.safetensors", "ltx23", ("model.diffusion_model.", "text_embedding_"),
                              config=("transformer", "vae"))
    vae = write_split(tmp_path / "vae.safetensors", "ltx23", ("vae.",), strip="vae.", config=("vae",))
    model = open_ltx([transformer, vae])
    assert model.family == "ltx23" and model.has("video_decoder")
    assert model.config["vae"] == read_all(LTX23)[1]["vae"]
    latent = torch.zeros(1, model.config["vae"]["latent_channels"], 2, 1, 1)
    assert model.load_video_vae(torch.float32, parts=("decoder",)).decode(latent).shape[2] == 9


def test_version_and_weights_that_disagree_inside_one_file_are_refused(tmp_path):
    vae = write_split(tmp_path / "vae.safetensors", "ltx2", ("vae.",), version="2.3.0")
    with pytest.raises(CheckpointError, match=r"model_version 2.3.0 but the video \w+ weights have the LTX-2 \(19B\)"):
        inspect_checkpoint(CheckpointFile(vae))


LTX25 = SHARED_GOLDEN.parent / "golden_next" / "ltx25"
LTX25_FILES = {
    "transformer": {"transformer", "video_connector", "audio_connector"},
    "transformer_kv_cacheable": {"transformer", "video_connector", "audio_connector"},
    "video_vae": {"video_encoder", "video_diffusion_decoder", "video_statistics"},
    "duration_head": {"duration_head"},
    "text_encoder": {"text_projection"},
}


@pytest.mark.parametrize("name", sorted(LTX25_FILES))
def test_ltx25_split_files_are_told_apart(name):
    info = inspect_checkpoint(CheckpointFile(LTX25 / f"{name}.safetensors"))
    assert set(info.components) == LTX25_FILES[name]
    assert info.family == "ltx25" and set(info.families.values()) == {"ltx25"}


def test_ltx25_transformer_and_vae_open_together_and_refuse_23_files(tmp_path):
    model = open_ltx([LTX25 / "transformer.safetensors", LTX25 / "video_vae.safetensors"])
    assert model.family == "ltx25" and model.has("transformer") and model.has("video_diffusion_decoder")
    assert not model.has("video_decoder") and model.config["vae"]["_class_name"] == "CausalDiffusionVAE"
    vae23 = write_split(tmp_path / "vae23.safetensors", "ltx23", ("vae.",), config=("vae",), version="2.3.0")
    with pytest.raises(CheckpointError, match=r"different model families.*transformer.safetensors holds the "
                                              r"LTX-2.5 \(22B\).*vae23.safetensors holds the LTX-2.3 \(22B\)"):
        open_ltx([LTX25 / "transformer.safetensors", vae23])
    with pytest.raises(CheckpointError, match=r"different model families.*LTX-2.3 \(22B\).*LTX-2.5 \(22B\) video "
                                              r"diffusion decoder"):
        open_ltx([LTX23, LTX25 / "video_vae.safetensors"])


def test_the_23_layout_belongs_to_the_release_its_file_names(tmp_path):
    conv25 = write_split(tmp_path / "conv25.safetensors", "ltx23", ("vae.",), config=("vae",), version="2.5.0")
    assert open_ltx(conv25).families["video_decoder"] == "ltx25"  # the 2.5 conv-decoder VAE keeps 2.3's layout
    open_ltx([LTX25 / "transformer.safetensors", conv25])
    tensors, config = read_all(LTX25 / "transformer.safetensors")
    stamped = tmp_path / "dit_claims_23.safetensors"
    save_file(tensors, stamped, metadata={"config": json.dumps(config), "model_version": "2.3.0"})
    with pytest.raises(CheckpointError, match=r"model_version 2.3.0 but the transformer weights have the LTX-2.5"):
        inspect_checkpoint(CheckpointFile(stamped))


def test_releases_after_25_are_refused(tmp_path):
    vae = write_split(tmp_path / "vae26.safetensors", "ltx23", ("vae.",), version="2.6.0")
    with pytest.raises(CheckpointError, match="model_version 2.6.0 .*after LTX-2.5.*not supported yet"):
        open_ltx(vae)


@pytest.fixture
def models_dir(tmp_path):
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "ltx-2-19b.safetensors").symlink_to(LTX2)
    write_split(root / "vae" / "ltx-2.3-video-vae.safetensors", "ltx23", ("vae.",), config=("vae",))
    write_split(root / "vae" / "ltx-2-audio-vae.safetensors", "ltx2", ("audio_vae.", "vocoder."),
                config=("audio_vae", "vocoder"))
    write_split(root / "vae" / "ltx-2.3-vocoder.safetensors", "ltx23", ("audio_vae.", "vocoder."),
                config=("audio_vae", "vocoder"))
    model_cache.release()
    with comfy_adapter.configured(models_dir=root):
        yield root
    model_cache.release()


def test_loader_node_refuses_a_vae_of_the_other_release(models_dir):
    with pytest.raises(NodeInputError, match=r"AVGenCheckpointLoader: .*different model families.*ckpt_name "
                                             r"'ltx-2-19b.safetensors' holds the LTX-2 \(19B\) .*transformer; vae_name "
                                             r"'ltx-2.3-video-vae.safetensors' holds the LTX-2.3 \(22B\) video decoder"):
        AVGenCheckpointLoader().load("ltx-2-19b.safetensors", "ltx-2.3-video-vae.safetensors", "fp32", "cpu")
    with pytest.raises(NodeInputError, match=r"audio_vae_name 'ltx-2.3-vocoder.safetensors' holds the LTX-2.3 "
                                             r"\(22B\) vocoder"):
        AVGenCheckpointLoader().load("ltx-2-19b.safetensors", FROM_CHECKPOINT, "fp32", "cpu",
                                     audio_vae_name="ltx-2.3-vocoder.safetensors")


def test_loader_node_accepts_split_files_of_one_release(models_dir):
    model, video_vae, audio_vae = AVGenCheckpointLoader().load(
        "ltx-2-19b.safetensors", FROM_CHECKPOINT, "fp32", "cpu", audio_vae_name="ltx-2-audio-vae.safetensors")
    assert model.family == "ltx2" and "ltx-2-audio-vae" in audio_vae.label
    assert audio_vae.vocoder.sample_rate == 24000
