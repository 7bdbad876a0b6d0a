"""What a checkpoint file holds: model family, version and which components under which key prefix.

Released single files hold every LTX component under fixed prefixes (`model.diffusion_model.`, `vae.`,
`audio_vae.`, `vocoder.`, `text_embedding_projection.`, `duration_head.`). Split files (transformer-only,
VAE-only, ...; LTX-2.5 is released only as split files) may keep those prefixes or drop them. Files that belong
elsewhere (a Gemma text encoder, a LoRA, a latent upscaler, a video-only LTX-Video checkpoint) are recognised so
the error can say where they go.

Each component also gets its family from its own tensors where the releases differ in layout (transformer,
text projection, video VAE, vocoder, the 2.5 diffusion decoder and duration head), else from the file's
`model_version`, so that files of different releases are never combined silently: their latent spaces differ and
the result would be noise. LTX-2.5 keeps the 2.3 layout of most components; such a component takes the release
its file names (by `model_version`, or by a component only 2.5 has).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .checkpoint import CheckpointError, CheckpointFile

FAMILIES = ("ltx2", "ltx23", "ltx25")
FAMILY_TITLES = {"ltx2": "LTX-2 (19B)", "ltx23": "LTX-2.3 (22B)", "ltx25": "LTX-2.5 (22B)"}
# A component with this family's layout may belong to these later releases too (their files say which).
LATER_SAME_LAYOUT = {"ltx23": ("ltx25",)}
DIT_PREFIX = "model.diffusion_model."
CONNECTOR_TREES = ("video_embeddings_connector.", "audio_embeddings_connector.")

# component -> (prefix in released single files, a key (after the prefix) that proves the component is there)
COMPONENT_MARKERS = {
    "transformer": (DIT_PREFIX, "audio_adaln_single.linear.weight"),
    "text_projection": ("text_embedding_projection.", None),
    "video_connector": (DIT_PREFIX + "video_embeddings_connector.", "learnable_registers"),
    "audio_connector": (DIT_PREFIX + "audio_embeddings_connector.", "learnable_registers"),
    "video_encoder": ("vae.encoder.", "conv_in.conv.weight"),
    "video_decoder": ("vae.decoder.", "conv_in.conv.weight"),
    "video_diffusion_decoder": ("vae.decoder.", "conv_in_x_t.weight"),
    "video_statistics": ("vae.per_channel_statistics.", "mean-of-means"),
    "audio_encoder": ("audio_vae.encoder.", "conv_in.conv.weight"),
    "audio_decoder": ("audio_vae.decoder.", "conv_in.conv.weight"),
    "audio_statistics": ("audio_vae.per_channel_statistics.", "mean-of-means"),
    "vocoder": ("vocoder.", None),
    "duration_head": ("duration_head.", "mlp_out.weight"),
}


@dataclass
class CheckpointInfo:
    """Family, version and component prefixes of one LTX checkpoint file."""

    file: CheckpointFile
    family: str | None
    version: tuple[int, ...] | None
    components: dict[str, str] = field(default_factory=dict)  # component -> key prefix in this file
    families: dict[str, str] = field(default_factory=dict)  # component -> family, where it can be told

    @property
    def config(self) -> dict:
        return self.file.config

    def prefix(self, component: str) -> str:
        if component not in self.components:
            have = ", ".join(sorted(self.components)) or "none"
            raise CheckpointError(f"{self.file.path} has no {component.replace('_', ' ')} weights (it holds: {have})")
        return self.components[component]


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """'2.3.0' -> (2, 3, 0); '2.3.rc1' and '2.3-rc1' -> (2, 3); None / unparsable -> None (the official code then
    assumes 2.0). Hyphens count as dots, as in the official `detect_model_version`."""
    if not text:
        return None
    parts = []
    for piece in str(text).replace("-", ".").split("."):
        if not re.fullmatch(r"\d+", piece):
            break
        parts.append(int(piece))
    return tuple(parts) or None


def family_for_version(ckpt: CheckpointFile) -> str | None:
    """The family the file's `model_version` names (None without one); CheckpointError for releases after 2.5.

    2.4 counts as 2.5: the official code switches its 2.5 behaviour at 2.4 (`detect_params`)."""
    version = parse_version(ckpt.metadata.get("model_version"))
    if version is None:
        return None
    if version >= (2, 6):
        raise CheckpointError(
            f"{ckpt.path}: model_version {ckpt.metadata['model_version']} (after LTX-2.5) is not supported yet"
        )
    if version >= (2, 4):
        return "ltx25"
    return "ltx23" if version >= (2, 3) else "ltx2"


def is_gemma4_file(ckpt: CheckpointFile) -> bool:
    """A Gemma 4 text encoder (LTX-2.5): `gemma_config` metadata or Gemma 4's per-layer `layer_scalar`."""
    return "gemma_config" in ckpt.metadata or any(
        re.match(r"(model\.)?(language_model\.)?(model\.)?layers\.\d+\.layer_scalar$", k) for k in ckpt.keys())


def _foreign_kind(ckpt: CheckpointFile) -> str | None:
    """Name the kind of a file that is not an LTX audio-video checkpoint, with where it belongs."""
    keys = ckpt.keys()
    if is_gemma4_file(ckpt):
        return "a Gemma 4 text encoder (LTX-2.5: put it in text_encoders/ and use the AVGen text encoder loader)"
    if any(".lora_A." in k or ".lora_down." in k or ".lora_B." in k or ".lora_up." in k for k in keys):
        return "a LoRA (put it in loras/ and use the AVGen LoRA node)"
    if any(re.match(r"(language_model\.)?model\.layers\.\d+\.self_attn\.q_norm\.weight$", k) for k in keys) or any(
        k.startswith("language_model.model.") for k in keys
    ):
        return "a Gemma 3 text encoder (put it in text_encoders/ and use the AVGen text encoder loader)"
    if any(k.startswith("initial_conv.") for k in keys) and any(k.startswith("final_conv.") for k in keys):
        return "an LTX latent upscaler (put it in latent_upscale_models/)"
    if any(k.endswith("adaln_single.linear.weight") for k in keys) and not any(
        k.endswith("audio_adaln_single.linear.weight") for k in keys
    ):
        return "a video-only LTX-Video checkpoint (AVGen needs an LTX-2 / LTX-2.3 audio-video checkpoint)"
    return None


# Split files may drop the leading part of a prefix; conv_in rank tells a bare video VAE (Conv3d) from a bare
# audio VAE (Conv2d).
_BARE_CONV_RANK = {"video_encoder": 5, "video_decoder": 5, "audio_encoder": 4, "audio_decoder": 4}


def _find_prefix(ckpt: CheckpointFile, name: str, released_prefix: str, marker: str | None) -> str | None:
    """The prefix under which a component lives in this file: the released one, or a shorter one that a split
    file may use (e.g. `transformer_blocks.` with no `model.diffusion_model.`)."""
    parts = released_prefix.rstrip(".").split(".")
    candidates = [".".join(parts[i:]) + "." for i in range(len(parts))]
    if name == "transformer":
        candidates.append("")
    if name.endswith("_statistics"):  # a bare `per_channel_statistics.` is decided by its VAE (see below)
        candidates = candidates[:1]
    for prefix in candidates:
        if marker is None:
            found = prefix == released_prefix and ckpt.has_prefix(prefix)
        else:
            found = prefix + marker in ckpt
            rank = _BARE_CONV_RANK.get(name)
            if found and rank and prefix != released_prefix:
                found = len(ckpt.shape(prefix + marker)) == rank
        if found:
            return prefix
    return None


def _family_from_keys(ckpt: CheckpointFile, dit_prefix: str) -> str:
    gated = any(k.startswith(dit_prefix + "transformer_blocks.0.") and "to_gate_logits" in k for k in ckpt.keys())
    prompt_adaln = dit_prefix + "prompt_adaln_single.linear.weight" in ckpt
    caption = dit_prefix + "caption_projection.linear_1.weight" in ckpt
    if (gated or prompt_adaln) and not caption:
        return "ltx23"
    if caption and not (gated or prompt_adaln):
        return "ltx2"
    raise CheckpointError(
        f"{ckpt.path}: the transformer keys mix LTX-2 (caption_projection) and LTX-2.3 (gated attention, prompt "
        "AdaLN) layouts; the file is damaged or not an LTX-2 family checkpoint"
    )


def inspect_checkpoint(ckpt: CheckpointFile) -> CheckpointInfo:
    """Recognise an LTX-2 family file; raise a `CheckpointError` that says what the file is otherwise."""
    components: dict[str, str] = {}
    for name, (released, marker) in COMPONENT_MARKERS.items():
        prefix = _find_prefix(ckpt, name, released, marker)
        if prefix is not None:
            components[name] = prefix
    if "vocoder" not in components and "conv_pre.weight" in ckpt and "transformer" not in components:
        components["vocoder"] = ""
    for group in ("video", "audio"):
        parts = ("encoder", "decoder", "diffusion_decoder") if group == "video" else ("encoder", "decoder")
        bare = [components[f"{group}_{part}"] for part in parts if f"{group}_{part}" in components
                and components[f"{group}_{part}"] != COMPONENT_MARKERS[f"{group}_{part}"][0]]
        if bare and f"{group}_statistics" not in components:
            root = bare[0][: bare[0].rindex("coder.") - 2]  # what precedes `encoder.` / `decoder.`
            prefix = f"{root}per_channel_statistics."
            if ckpt.has_prefix(prefix):
                components[f"{group}_statistics"] = prefix
    if not components:
        foreign = _foreign_kind(ckpt)
        keys = ckpt.keys()
        sample = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
        what = f"it looks like {foreign}" if foreign else f"{len(keys)} keys ({sample})"
        raise CheckpointError(f"{ckpt.path} is not an LTX-2 / LTX-2.3 / LTX-2.5 model file: {what}")
    claimed = family_for_version(ckpt) or ("ltx25" if is_gemma4_file(ckpt) else None)
    version = parse_version(ckpt.metadata.get("model_version"))
    families = component_families(ckpt, components, claimed)
    return CheckpointInfo(ckpt, one_family([(ckpt.path, families)]), version, components, families)


# --- the family of each component --------------------------------------------------------------------------------

# (volume, channel factor) of each resampling step of the released video VAEs: the decoder's depth-to-space steps
# in run order (upsampling volume, channel divisor), the encoder's space-to-depth steps (downsampling volume, channel
# multiplier). LTX-2 upsamples all three axes at once in every step; LTX-2.3 has separate space and time steps, and
# its encoder's last step keeps the channel count. (Block lists: ../shared/reference/ltx2_facts.md 4.2.)
RELEASED_VAE_STEPS = {
    ("video_decoder", "ltx2"): ((8, 2), (8, 2), (8, 2)),
    ("video_decoder", "ltx23"): ((8, 2), (8, 1), (2, 2), (4, 2)),
    ("video_encoder", "ltx2"): ((4, 2), (2, 2), (8, 2), (8, 2)),
    ("video_encoder", "ltx23"): ((4, 2), (2, 2), (8, 2), (8, 1)),
}


def _block_input_channels(ckpt: CheckpointFile, blocks: str, index: int, prefix: str) -> int | None:
    """Channels entering block `index` of `blocks` (e.g. `vae.decoder.up_blocks`), or conv_out past the last."""
    for key in (f"{blocks}.{index}.res_blocks.0.conv1.conv.weight", f"{blocks}.{index}.conv.conv.weight"):
        if key in ckpt:
            return ckpt.shape(key)[1]
    if not ckpt.has_prefix(f"{blocks}.{index}."):
        key = f"{prefix}conv_out.conv.weight"
        return ckpt.shape(key)[1] if key in ckpt else None
    return None


def video_vae_steps(ckpt: CheckpointFile, prefix: str, decoder: bool) -> tuple[tuple[int, int], ...] | None:
    """The resampling steps of a video encoder / decoder under `prefix`, read from the conv shapes (None when
    the layout is not the LTX block layout)."""
    blocks = prefix + ("up_blocks" if decoder else "down_blocks")
    steps, index = [], 0
    while ckpt.has_prefix(f"{blocks}.{index}."):
        key = f"{blocks}.{index}.conv.conv.weight"
        if key in ckpt:
            conv_out, conv_in = ckpt.shape(key)[:2]
            after = _block_input_channels(ckpt, blocks, index + 1, prefix)
            if not after:
                return None
            ratios = (conv_out / after, conv_in / after) if decoder else (after / conv_out, after / conv_in)
            if any(r != int(r) or r < 1 for r in ratios):
                return None
            steps.append(tuple(int(r) for r in ratios))
        index += 1
    return tuple(steps)


def _video_vae_family(ckpt: CheckpointFile, component: str, prefix: str) -> str | None:
    steps = video_vae_steps(ckpt, prefix, decoder=component == "video_decoder")
    return next((family for (part, family), released in RELEASED_VAE_STEPS.items()
                 if part == component and released == steps), None)


def _has_ltx25_dit_options(ckpt: CheckpointFile, prefix: str) -> bool:
    """The DiT options only LTX-2.5 files use: the keyframe embedding, feed-forward layers without biases."""
    block = prefix + "transformer_blocks.0.ff.net.2."
    return prefix + "keyframes_abs_pos_embedding" in ckpt or (block + "weight" in ckpt and block + "bias" not in ckpt)


def _structural_family(ckpt: CheckpointFile, component: str, prefix: str) -> str | None:
    """The family a component's own tensors show, or None when both releases share its layout."""
    if component == "transformer":
        family = _family_from_keys(ckpt, prefix)
        return "ltx25" if family == "ltx23" and _has_ltx25_dit_options(ckpt, prefix) else family
    if component in ("video_diffusion_decoder", "duration_head"):
        return "ltx25"
    if component == "text_projection":
        if prefix + "aggregate_embed.weight" in ckpt:
            return "ltx2"  # one projection for both modalities (feature extractor V1)
        return "ltx23" if prefix + "video_aggregate_embed.weight" in ckpt else None
    if component in ("video_encoder", "video_decoder"):
        return _video_vae_family(ckpt, component, prefix)
    if component == "vocoder":
        if prefix + "conv_pre.weight" in ckpt:
            return "ltx2"  # HiFi-GAN at 24 kHz
        return "ltx23" if ckpt.has_prefix(prefix + "bwe_generator.") else None  # BigVGAN + bandwidth extension
    return None


def component_families(ckpt: CheckpointFile, components: dict[str, str], claimed: str | None) -> dict[str, str]:
    """{component: family} from each component's tensors, else the family the file's model_version claims (or,
    without one, a component only a later release has); a component whose tensors contradict the model_version is
    an error. A component whose layout a later release kept belongs to the release its file names."""
    structural = {c: _structural_family(ckpt, c, prefix) for c, prefix in components.items()}
    version = ckpt.metadata.get("model_version")
    claim = f"metadata says model_version {version}" if version else "the file holds LTX-2.5-only weights"
    if claimed is None and "ltx25" in structural.values():
        claimed = "ltx25"
    families = {}
    for component, family in structural.items():
        if family and claimed in LATER_SAME_LAYOUT.get(family, ()):
            family = claimed
        if family and claimed and family != claimed:
            raise CheckpointError(
                f"{ckpt.path}: {claim} but the {component.replace('_', ' ')} weights have the "
                f"{FAMILY_TITLES[family]} layout"
            )
        if family or claimed:
            families[component] = family or claimed
    return families


def _describe_components(components: list[str]) -> str:
    return ", ".join(c.replace("_", " ") for c in sorted(components))


def one_family(sources: list[tuple[str, dict[str, str]]]) -> str | None:
    """The one family of components used together; `sources` = (file, {component: family}) for each file.
    CheckpointError naming which file holds which family's components when they differ."""
    found = {family for _, families in sources for family in families.values()}
    if len(found) <= 1:
        return found.pop() if found else None
    held = []
    for label, families in sources:
        for family in sorted(set(families.values())):
            parts = [c for c, f in families.items() if f == family]
            held.append(f"{label} holds the {FAMILY_TITLES[family]} {_describe_components(parts)}")
    raise CheckpointError(
        "the files are from different model families and cannot be used together (the result would be noise): "
        + "; ".join(held) + ". Use the files released together with your transformer."
    )
