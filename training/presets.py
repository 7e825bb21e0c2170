"""Training presets: the reference ("seed") recipe and the default model.

A preset fixes the signal contract (STFT, magnitude representation, what the network
outputs), the network builder and the training objective. Hyperparameters that the
command line can override live in ``TrainConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Literal

import keras

from denoise_core.signal import SignalSpec
from denoise_core.streaming import output_lookahead
from training.data.stats import SEED_SPEC
from training.models.bandnet import BandConfig, build_bandnet, receptive_future
from training.models.default import DefaultConfig, build_default
from training.models.seed import FRAME_MULTIPLE as SEED_FRAME_MULTIPLE
from training.models.seed import build_seed

Objective = Literal["features_mse", "signal"]


@dataclass(frozen=True)
class Preset:
    name: str
    signal: SignalSpec
    objective: Objective
    build: Callable[[SignalSpec, dict[str, Any]], keras.Model]
    #: defaults for TrainConfig fields this preset changes
    defaults: dict[str, Any] = field(default_factory=dict)
    #: frames after t that the output at frame t depends on, from the model options (None: not bounded by design)
    lookahead: Callable[[dict[str, Any]], int | None] = lambda options: None
    #: the network's options where the command line does not override them (key by key)
    model_options: dict[str, Any] = field(default_factory=dict)

    def options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """The preset's model options with ``overrides`` on top."""
        return {**self.model_options, **overrides}

    def output_lookahead(self, options: dict[str, Any]) -> int | None:
        """Frames after t that the output at frame t depends on: the network's, or a deep
        filter's taps where they reach further."""
        net = self.lookahead(options)
        return None if net is None else output_lookahead(net, self.signal)


def _build_seed(spec: SignalSpec, options: dict[str, Any]) -> keras.Model:
    return build_seed(spec.n_freq, width=float(options.get("width", 1.0)))


def _build_default(spec: SignalSpec, options: dict[str, Any]) -> keras.Model:
    known = DefaultConfig.__dataclass_fields__
    cfg = DefaultConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items() if k in known})
    return build_default(spec.n_freq, cfg, complex_mask=spec.output == "complex_mask")


def _options(cls: type, options: dict[str, Any]) -> Any:
    """A config dataclass from JSON model options (lists become tuples; unknown keys are an error)."""
    unknown = sorted(set(options) - set(cls.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown model options {unknown}; known: {sorted(cls.__dataclass_fields__)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


def _build_band(spec: SignalSpec, options: dict[str, Any]) -> keras.Model:
    return build_bandnet(spec.n_freq, _options(BandConfig, options), complex_mask=spec.output == "complex_mask", sample_rate=spec.sample_rate,
                         df_bins=spec.df_bins, df_order=spec.df_order, df_past=spec.df_past)


def _band_lookahead(options: dict[str, Any]) -> int | None:
    return receptive_future(_options(BandConfig, options))


_DEFAULT = Preset(
    name="default",
    signal=SignalSpec(n_fft=512, hop_length=256, magnitude="compressed", compress_exponent=0.3, output="mask", frame_multiple=1),
    objective="signal",
    build=_build_default,
    # batches of eight 2-s crops, cosine over the time budget, negative SI-SDR + 1500 x compressed-magnitude MSE,
    # speech augmentation, speakers drawn more evenly, synthetic rain under half the mixtures, the epoch with
    # the best validation SI-SDR kept (how each came in: docs/default-preset-history.md)
    defaults={"batch_size": 8, "steps_per_epoch": 200, "lr": 1e-3, "lr_schedule": "cosine-time", "mag_loss_weight": 1500.0,
              "crop_seconds": 2.0,
              "mixer_options": {"speech_speed_prob": 0.5, "speech_eq_prob": 0.5, "speaker_balance": 0.5, "synthetic_noise_prob": 0.5},
              "monitor": "val_wave_si_sdr_db"},
)

PRESETS: dict[str, Preset] = {
    "seed": Preset(
        name="seed",
        signal=replace(SEED_SPEC, output="magnitude", frame_multiple=SEED_FRAME_MULTIPLE),
        objective="features_mse",
        build=_build_seed,
    ),
    "default": _DEFAULT,
    # the default network and training with a complex mask (magnitude-loss weight 500)
    "complex": replace(
        _DEFAULT,
        name="complex",
        signal=replace(_DEFAULT.signal, output="complex_mask"),
        defaults={**_DEFAULT.defaults, "mag_loss_weight": 500.0},
    ),
}

# The band network (training.models.bandnet): ERB-compressed bands, a complex mask, two frames
# of lookahead; negative SI-SDR plus the multi-resolution compressed spectral loss; a cosine over
# steps; the checkpoint with the best validation quality score (training.quality).
_BAND = Preset(
    name="band",
    signal=replace(_DEFAULT.signal, output="complex_mask"),
    objective="signal",
    build=_build_band,
    defaults={"batch_size": 8, "steps_per_epoch": 500, "epochs": 140, "val_limit": 48, "lr": 2e-3, "lr_schedule": "cosine-steps",
              "warmup_steps": 1000, "patience": 1000, "mag_loss_weight": 0.0, "wave_loss": "si_sdr+spectral",
              "spectral_weight": 100.0, "crop_seconds": 2.0, "quality_every": 10,
              "mixer_options": _DEFAULT.defaults["mixer_options"], "monitor": "val_wave_si_sdr_db"},
    lookahead=_band_lookahead,
)
PRESETS["band"] = _BAND
# the same with a magnitude mask on the noisy phase
PRESETS["band-mask"] = replace(_BAND, name="band-mask", signal=replace(_BAND.signal, output="mask"))
# the band network with causal time-frequency context blocks (dilations 1 and 2) after each
# encoder level and ReLU activations, trained as the band preset is
PRESETS["band-ctx"] = replace(_BAND, name="band-ctx", model_options={"context": [1, 2], "activation": "relu"})
# the offline model: band-ctx with a third context block per encoder level (dilation 4), a
# 256-wide temporal path and centred temporal kernels (no lookahead bound), trained with
# negative SI-SDR plus 1500 x the compressed-magnitude MSE
PRESETS["band-offline"] = replace(
    _BAND,
    name="band-offline",
    defaults={**_BAND.defaults, "wave_loss": "si_sdr", "mag_loss_weight": 1500.0},
    model_options={"context": [1, 2, 4], "activation": "relu", "bottleneck": 256, "lookahead": None},
)
# band-offline with a deep filter (five complex taps over frames t-2..t+2) on the lowest 65
# bins (0-2 kHz) in place of the complex mask there
PRESETS["band-offline-df"] = replace(
    PRESETS["band-offline"],
    name="band-offline-df",
    signal=replace(_BAND.signal, df_bins=65, df_order=5, df_lookahead=2),
)
# band-offline-df with the PESQ-style perceptual term (training.perceptual_loss) added to its
# waveform loss, 20 times
PRESETS["band-offline-df-pesq"] = replace(
    PRESETS["band-offline-df"],
    name="band-offline-df-pesq",
    defaults={**PRESETS["band-offline-df"].defaults, "perceptual_weight": 20.0},
)
# band-offline-df-pesq with separable context blocks (a depthwise time-frequency convolution,
# then a 1x1 one across channels)
PRESETS["band-offline-df-sep-pesq"] = replace(
    PRESETS["band-offline-df-pesq"],
    name="band-offline-df-sep-pesq",
    model_options={**PRESETS["band-offline-df-pesq"].model_options, "context_separable": True},
)
# band-offline-df with the deep filter on the lowest 129 bins (0-4 kHz): the taps of the bins
# past the linear ones are computed per band and spread to bins as the mask is
PRESETS["band-offline-df4k"] = replace(
    PRESETS["band-offline-df"],
    name="band-offline-df4k",
    signal=replace(PRESETS["band-offline-df"].signal, df_bins=129),
)
# the streaming model: band-offline's network and loss with two frames of lookahead and a
# magnitude mask on the noisy phase
PRESETS["band-stream"] = replace(
    PRESETS["band-offline"],
    name="band-stream",
    signal=replace(_BAND.signal, output="mask"),
    model_options={**PRESETS["band-offline"].model_options, "lookahead": 2},
)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
