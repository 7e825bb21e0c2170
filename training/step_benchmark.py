"""Time training steps of a preset: ``python -m training.step_benchmark [--preset NAME ...] [--model-options JSON ...]``.

On a CPU-only machine the training budget is wall-clock time, so the number of
optimiser steps a design gets is part of its quality. This prints, for each
``--model-options`` JSON given, the parameter count and the mean seconds per
training step on fresh batches from the dataset's mixer (data preparation timed
apart), with the preset's own loss or the one ``--wave-loss`` names. Each ``--preset`` is timed with each ``--model-options``. Nothing else should run on the machine while it measures.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Iterator

import keras

from training.datasets import Dataset, MixerConfig, OnTheFlyMixer
from training.graph import signal_training_model
from training.presets import get_preset
from training.train import PRECISIONS, build_network, compile_signal_model, resolve_spec


def step_model(data: Dataset, preset_name: str, options: dict[str, Any], batch_size: int, crop_seconds: float, jit_compile: bool = False,
               wave_loss_kind: str | None = None, precision: str = "float32",
               perceptual_weight: float | None = None) -> tuple[keras.Model, keras.Model, Iterator[Any]]:
    """The preset's compiled training model (model options overridden by ``options``, the preset's
    waveform loss or ``wave_loss_kind``, plus the preset's or ``perceptual_weight`` times the
    perceptual term), its network, and a stream of training batches."""
    preset = get_preset(preset_name)
    spec = resolve_spec(preset, data)
    mixer = OnTheFlyMixer(data.split("train"), data.noise("train"), spec, batch_size, 0, MixerConfig.from_options(crop_seconds, preset.defaults.get("mixer_options", {})),
                          noise_sources=data.noise_sources("train"))
    net = build_network(preset, spec, 1.0, preset.options(options), precision)
    model = signal_training_model(net, spec)
    d = preset.defaults
    perceptual = d.get("perceptual_weight", 0.0) if perceptual_weight is None else perceptual_weight
    compile_signal_model(model, d["lr"], d["mag_loss_weight"], jit_compile=jit_compile, wave_loss_kind=wave_loss_kind or d.get("wave_loss", "si_sdr"),
                         spectral_weight=d.get("spectral_weight", 100.0), perceptual_weight=perceptual)
    return model, net, iter(mixer)


def time_steps(data: Dataset, options: dict[str, Any], batch_size: int, crop_seconds: float, steps: int, jit_compile: bool = False,
               preset_name: str = "default", wave_loss_kind: str | None = None, precision: str = "float32",
               perceptual_weight: float | None = None) -> dict[str, Any]:
    """Parameters, data seconds per batch and training seconds per step for ``options``,
    with the preset's waveform loss or ``wave_loss_kind`` (and the preset's or ``perceptual_weight``
    times the perceptual term), the network under the dtype policy ``precision``."""
    model, net, stream = step_model(data, preset_name, options, batch_size, crop_seconds, jit_compile, wave_loss_kind, precision, perceptual_weight)
    started = time.perf_counter()
    batches = [next(stream) for _ in range(4)]
    data_seconds = (time.perf_counter() - started) / len(batches)
    preset = get_preset(preset_name)
    options = preset.options(options)
    loss = wave_loss_kind or preset.defaults.get("wave_loss", "si_sdr")
    model.train_on_batch(*batches[0])  # trace and warm up
    started = time.perf_counter()
    for i in range(steps):
        model.train_on_batch(*batches[i % len(batches)])
    step_seconds = (time.perf_counter() - started) / steps
    return {"preset": preset_name, "options": options, "parameters": int(net.count_params()), "data_s_per_batch": data_seconds, "train_s_per_step": step_seconds,
            "wave_loss": loss, "precision": precision}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.step_benchmark", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="build/dataset", help="dataset directory from `python -m training.data build`")
    p.add_argument("--preset", action="append", default=None, help="preset to time; repeat to compare (default: default)")
    p.add_argument("--model-options", type=json.loads, action="append", default=None,
                   help="JSON model-config overrides; repeat to compare designs (default: the preset as is)")
    p.add_argument("--batch-size", type=int, default=get_preset("default").defaults["batch_size"])
    p.add_argument("--crop-seconds", type=float, default=get_preset("default").defaults["crop_seconds"])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--jit-compile", action="store_true", help="compile the training step with XLA (Keras leaves it off on CPU-only machines; the trainer does not use it)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: one per core), as training.train --threads")
    p.add_argument("--wave-loss", choices=["si_sdr", "si_sdr+spectral"], default=None,
                   help="time every row with this waveform loss instead of each preset's own (how much of a step the loss is)")
    p.add_argument("--perceptual-weight", type=float, default=None,
                   help="weight of the PESQ-style perceptual term in every row's waveform loss, as training.train "
                        "--perceptual-weight (default: each preset's own)")
    p.add_argument("--precision", action="append", choices=PRECISIONS, default=None,
                   help="the network's dtype policy, as training.train --precision (default: float32); repeat to compare")
    args = p.parse_args(argv)
    if args.threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    data = Dataset.open(args.data)
    own = "each preset's own"
    perceptual = "" if args.perceptual_weight is None else f" + {args.perceptual_weight:g} x perceptual"
    print(f"wave loss: {args.wave_loss or own}{perceptual}; TensorFlow intra-op threads: {args.threads or 'one per core'}")
    print(f"{'preset':<12} {'model options':<50} {'precision':<14} {'parameters':>10} {'data s/batch':>12} {'train s/step':>12}")
    for preset in args.preset or ["default"]:
        for options in args.model_options or [{}]:
            for precision in args.precision or ["float32"]:
                r = time_steps(data, options, args.batch_size, args.crop_seconds, args.steps, args.jit_compile, preset, args.wave_loss, precision,
                                 args.perceptual_weight)
                print(f"{preset:<12} {json.dumps(r['options']):<50} {precision:<14} {r['parameters']:>10} {r['data_s_per_batch']:>12.3f} "
                      f"{r['train_s_per_step']:>12.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
