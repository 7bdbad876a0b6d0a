"""Vocoder configuration read from the checkpoint's `config["vocoder"]` metadata.

Two layouts exist:
* LTX-2 (flat dict): one HiFi-GAN generator (`resblock "1"`), output at `output_sampling_rate` (24 kHz).
* LTX-2.3 (nested `{"vocoder": ..., "bwe": ...}`): a BigVGAN-v2 generator (`resblock "AMP1"`, SnakeBeta) at the
  BWE's `input_sampling_rate` (16 kHz), followed by a bandwidth extension to `output_sampling_rate` (48 kHz)
  whose own BigVGAN-v2 generator has no final activation.
* `{"type": "griffin_lim", ...}` (AVGen-Tiny): no generator; the mel is inverted and its phase recovered by
  Griffin-Lim with the STFT of the audio VAE front end (`GriffinLimConfig`).

Missing keys take the defaults of the official configurator; unsupported behaviour flags raise ValueError.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

# The generators' first conv takes stereo log-mel flattened to channels: 2 channels x 64 mel bins.
STEREO_MEL_CHANNELS = 128
# `config["vocoder"]["type"]`: absent (a generator network, the released layouts) or "griffin_lim".
GENERATOR_TYPE = "generator"
GRIFFIN_LIM_TYPE = "griffin_lim"


SNAKE_ACTIVATIONS = ("snake", "snakebeta")  # BigVGAN-v2: periodic activation without / with its own amplitude


def _require(cfg: dict, key: str, expected, where: str) -> None:
    value = cfg.get(key, expected)
    if value != expected:
        raise ValueError(f"{where}: {key}={value!r} is not supported (expected {expected!r})")


def _dilations(cfg: dict, where: str) -> tuple[tuple[int, int, int], ...]:
    """`resblock_dilation_sizes`: the three dilations each resblock uses (the official blocks read the first
    three of each list, so longer lists are cut)."""
    sizes = cfg.get("resblock_dilation_sizes", ((1, 3, 5),) * 3)
    if any(len(ds) < 3 for ds in sizes):
        raise ValueError(f"{where}: every resblock needs 3 dilations, got resblock_dilation_sizes={sizes}")
    return tuple(tuple(int(d) for d in ds[:3]) for ds in sizes)


@dataclass(frozen=True)
class GeneratorConfig:
    """One mel -> waveform generator (HiFi-GAN or BigVGAN-v2).

    `final_activation` is "tanh", "clamp" (to [-1, 1]) or None (raw output, used by the BWE generator);
    `activation` the periodic activation of a BigVGAN generator ("snake" or "snakebeta").
    """

    upsample_initial_channel: int
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    resblock: str
    final_activation: str | None
    use_bias_at_final: bool
    output_sampling_rate: int
    activation: str = "snake"

    @classmethod
    def from_dict(
        cls, cfg: dict, where: str, apply_final_activation: bool = True, output_sampling_rate: int | None = None
    ) -> "GeneratorConfig":
        """Read one generator dict; `output_sampling_rate` overrides the dict's own value (BWE layout)."""
        if not isinstance(cfg, dict):
            raise ValueError(f"{where}: expected a dict, got {type(cfg).__name__}")
        _require(cfg, "stereo", True, where)
        resblock = cfg.get("resblock", "1")
        if resblock not in ("1", "AMP1"):
            raise ValueError(f"{where}: resblock={resblock!r} is not supported (expected '1' or 'AMP1')")
        activation = cfg.get("activation", "snake")
        if resblock == "AMP1" and activation not in SNAKE_ACTIVATIONS:
            raise ValueError(f"{where}: activation={activation!r} is not supported (expected one of "
                             f"{', '.join(SNAKE_ACTIVATIONS)})")
        if apply_final_activation:
            final_activation = "tanh" if cfg.get("use_tanh_at_final", True) else "clamp"
        else:
            final_activation = None
        config = cls(
            upsample_initial_channel=int(cfg.get("upsample_initial_channel", 1024)),
            upsample_rates=tuple(int(r) for r in cfg.get("upsample_rates", (6, 5, 2, 2, 2))),
            upsample_kernel_sizes=tuple(int(k) for k in cfg.get("upsample_kernel_sizes", (16, 15, 8, 4, 4))),
            resblock_kernel_sizes=tuple(int(k) for k in cfg.get("resblock_kernel_sizes", (3, 7, 11))),
            resblock_dilation_sizes=_dilations(cfg, where),
            resblock=resblock,
            final_activation=final_activation,
            use_bias_at_final=bool(cfg.get("use_bias_at_final", True)),
            output_sampling_rate=int(
                output_sampling_rate if output_sampling_rate is not None else cfg.get("output_sampling_rate", 24000)
            ),
            activation=activation,
        )
        config._validate(where)
        return config

    def _validate(self, where: str) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError(f"{where}: {len(self.upsample_rates)} upsample_rates but "
                             f"{len(self.upsample_kernel_sizes)} upsample_kernel_sizes")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError(f"{where}: {len(self.resblock_kernel_sizes)} resblock_kernel_sizes but "
                             f"{len(self.resblock_dilation_sizes)} resblock_dilation_sizes")
        for i, (rate, kernel) in enumerate(zip(self.upsample_rates, self.upsample_kernel_sizes)):
            if kernel < rate:
                raise ValueError(f"{where}: upsample_kernel_sizes[{i}]={kernel} is smaller than its rate {rate} "
                                 "(the transposed conv would need negative padding)")
        if self.resblock == "AMP1" and any(k % 2 == 0 for k in self.resblock_kernel_sizes):
            raise ValueError(f"{where}: AMP1 resblock_kernel_sizes must be odd (symmetric padding keeps the "
                             f"length), got {self.resblock_kernel_sizes}")
        if self.channels(len(self.upsample_rates) - 1) < 1:  # channels halve (rounding down) at every stage
            raise ValueError(f"{where}: upsample_initial_channel {self.upsample_initial_channel} leaves no channel "
                             f"after {len(self.upsample_rates)} halvings")

    def channels(self, stage: int) -> int:
        """Channels after upsampling stage `stage` (stage -1 = after conv_pre)."""
        return self.upsample_initial_channel // 2 ** (stage + 1)

    @property
    def final_channels(self) -> int:
        return self.channels(len(self.upsample_rates) - 1)

    @property
    def samples_per_frame(self) -> int:
        """Output samples per input frame (product of the upsample rates). Exact when every kernel - rate is
        even; an upsampling stage with an odd difference adds one sample (L -> L * rate + 1), as upstream."""
        return math.prod(self.upsample_rates)

    @property
    def exact_lengths(self) -> bool:
        """Whether every upsampling stage multiplies the length exactly by its rate."""
        return all((k - r) % 2 == 0 for r, k in zip(self.upsample_rates, self.upsample_kernel_sizes))


@dataclass(frozen=True)
class BandwidthExtensionConfig:
    """Signal parameters of the LTX-2.3 bandwidth extension (causal STFT + log-mel of the low-rate output)."""

    input_sampling_rate: int
    output_sampling_rate: int
    hop_length: int
    n_fft: int
    num_mels: int

    @classmethod
    def from_dict(cls, cfg: dict) -> "BandwidthExtensionConfig":
        try:
            config = cls(
                input_sampling_rate=int(cfg["input_sampling_rate"]),
                output_sampling_rate=int(cfg["output_sampling_rate"]),
                hop_length=int(cfg["hop_length"]),
                n_fft=int(cfg["n_fft"]),
                num_mels=int(cfg["num_mels"]),
            )
        except KeyError as exc:
            raise ValueError(f"vocoder.bwe config lacks {exc.args[0]!r}") from exc
        if config.output_sampling_rate % config.input_sampling_rate:
            raise ValueError(f"vocoder.bwe: output rate {config.output_sampling_rate} is not an integer multiple "
                             f"of input rate {config.input_sampling_rate}")
        if 2 * config.num_mels != STEREO_MEL_CHANNELS:
            raise ValueError(f"vocoder.bwe: num_mels={config.num_mels} but the generator input is stereo "
                             f"x 64 mel bins")
        return config

    @property
    def upsample_ratio(self) -> int:
        return self.output_sampling_rate // self.input_sampling_rate


@dataclass(frozen=True)
class VocoderConfig:
    """The whole vocoder: `generator` alone (LTX-2) or `generator` + `bwe` + `bwe_generator` (LTX-2.3)."""

    generator: GeneratorConfig
    bwe: BandwidthExtensionConfig | None = None
    bwe_generator: GeneratorConfig | None = None

    @classmethod
    def from_checkpoint_config(cls, config: dict) -> "VocoderConfig":
        """Read `config["vocoder"]` of a decoded checkpoint `config` metadata entry."""
        cfg = config.get("vocoder") if isinstance(config, dict) else None
        if not isinstance(cfg, dict):
            raise ValueError("checkpoint config has no 'vocoder' dict (is this an LTX-2 single-file checkpoint?)")
        if cfg.get("type", GENERATOR_TYPE) != GENERATOR_TYPE:
            raise ValueError(f"vocoder type {cfg['type']!r} has no generator network (see GriffinLimConfig)")
        if "bwe" not in cfg:
            _require(cfg, "resblock", "1", "vocoder")
            return cls(generator=GeneratorConfig.from_dict(cfg, "vocoder"))
        bwe_cfg = cfg["bwe"]
        if not isinstance(bwe_cfg, dict) or not isinstance(cfg.get("vocoder"), dict):
            raise ValueError("vocoder config with 'bwe' needs dicts 'vocoder' and 'bwe'")
        for where, sub in (("vocoder.vocoder", cfg["vocoder"]), ("vocoder.bwe", bwe_cfg)):
            _require(sub, "resblock", "AMP1", where)
        bwe = BandwidthExtensionConfig.from_dict(bwe_cfg)
        bwe_generator = GeneratorConfig.from_dict(
            bwe_cfg, "vocoder.bwe", apply_final_activation=False, output_sampling_rate=bwe.output_sampling_rate
        )
        if bwe_generator.samples_per_frame != bwe.hop_length * bwe.upsample_ratio or not bwe_generator.exact_lengths:
            raise ValueError(f"vocoder.bwe: the BWE generator's residual must match the resampled waveform: its "
                             f"upsample rates give {bwe_generator.samples_per_frame} samples per frame (hop_length x "
                             f"ratio is {bwe.hop_length * bwe.upsample_ratio}) and every upsample_kernel_sizes - "
                             f"upsample_rates must be even, got {bwe_generator.upsample_kernel_sizes}")
        return cls(
            generator=GeneratorConfig.from_dict(
                cfg["vocoder"], "vocoder.vocoder", output_sampling_rate=bwe.input_sampling_rate
            ),
            bwe=bwe,
            bwe_generator=bwe_generator,
        )

    @property
    def sample_rate(self) -> int:
        """Sample rate of the final waveform in Hz."""
        return self.bwe.output_sampling_rate if self.bwe else self.generator.output_sampling_rate

    @property
    def samples_per_frame(self) -> int:
        """Final waveform samples per input mel frame."""
        ratio = self.bwe.upsample_ratio if self.bwe else 1
        return self.generator.samples_per_frame * ratio


@dataclass(frozen=True)
class GriffinLimConfig:
    """Griffin-Lim vocoding of the audio VAE's log-mel: its STFT and mel parameters plus the iteration settings.

    Output at `sampling_rate` (the mel's own rate), `hop_length` samples per mel frame.
    """

    sampling_rate: int = 16000
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 160
    n_mels: int = 64
    mel_fmin: float = 0.0
    mel_fmax: float = 8000.0
    n_iter: int = 32
    momentum: float = 0.99

    @classmethod
    def from_checkpoint_config(cls, config: dict) -> "GriffinLimConfig":
        """Read `config["vocoder"]` (with `"type": "griffin_lim"`) of a decoded checkpoint `config` entry."""
        cfg = config.get("vocoder") if isinstance(config, dict) else None
        if not isinstance(cfg, dict) or cfg.get("type") != GRIFFIN_LIM_TYPE:
            raise ValueError(f"checkpoint config has no vocoder dict with type {GRIFFIN_LIM_TYPE!r}")
        _require(cfg, "stereo", True, "vocoder")
        values = {f.name: (int if f.type == "int" else float)(cfg[f.name]) for f in fields(cls) if f.name in cfg}
        config = cls(**values)
        if 2 * config.n_mels != STEREO_MEL_CHANNELS:
            raise ValueError(f"vocoder: n_mels={config.n_mels}, the audio VAE makes 64-bin stereo log-mels")
        if not 0 <= config.momentum < 1 or config.n_iter < 1:
            raise ValueError(f"vocoder: need n_iter >= 1 and 0 <= momentum < 1, got {config.n_iter}, "
                             f"{config.momentum}")
        return config

    @property
    def sample_rate(self) -> int:
        return self.sampling_rate

    @property
    def samples_per_frame(self) -> int:
        return self.hop_length
