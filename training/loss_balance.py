"""How much each term of the signal objective steers training: ``python -m training.loss_balance --run DIR``.

The default objective is negative SI-SDR on the waveform plus ``mag_loss_weight`` times
the MSE on compressed magnitudes. The two terms live on very different scales, so the
weight only means something next to their gradients. For a run's recipe this prints,
on fresh training batches, each term's value and the global norm of its gradient with
respect to the network's weights, at initialisation and at the run's best checkpoint,
and the weight at which the two gradient norms would be equal.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from denoise_core.signal import SignalSpec
from training.datasets import Dataset, MixerConfig, OnTheFlyMixer
from training.graph import negative_si_sdr_loss, signal_training_model
from training.presets import get_preset
from training.train import TrainConfig


def gradient_norms(model: keras.Model, inputs: dict[str, Any], targets: dict[str, Any]) -> dict[str, float]:
    """Values and gradient norms of the waveform (negative SI-SDR) and magnitude (MSE) terms, unweighted."""
    with tf.GradientTape(persistent=True) as tape:
        out = model(inputs, training=True)
        wave = tf.reduce_mean(negative_si_sdr_loss(targets["wave"], out["wave"]))
        mag = tf.reduce_mean(tf.square(targets["mag"] - out["mag"]))
    g_wave = tf.linalg.global_norm(tape.gradient(wave, model.trainable_variables))
    g_mag = tf.linalg.global_norm(tape.gradient(mag, model.trainable_variables))
    del tape
    return {"wave_loss": float(wave), "mag_mse": float(mag), "wave_grad_norm": float(g_wave), "mag_grad_norm": float(g_mag),
            "equal_weight": float(g_wave / g_mag) if float(g_mag) > 0 else float("inf")}


def measure(run: Path, data: Dataset, batches: int, batch_size: int | None = None) -> dict[str, dict[str, float]]:
    """Mean term values and gradient norms over ``batches`` batches, at initialisation and at the best checkpoint."""
    config = json.loads((run / "config.json").read_text())
    train_cfg = config["train"]
    spec = SignalSpec.from_dict(config["signal"])
    preset = get_preset(config["preset"])
    mixer = OnTheFlyMixer(data.split("train"), data.noise("train"), spec, batch_size or train_cfg["batch_size"], 12345,
                          MixerConfig.from_options(train_cfg["crop_seconds"], train_cfg.get("mixer_options") or {}),
                          noise_sources=data.noise_sources("train"))
    stream = iter(mixer)
    fixed = [next(stream) for _ in range(batches)]
    results: dict[str, dict[str, float]] = {}
    for label, weights in (("initial", None), ("best checkpoint", run / "best.weights.h5")):
        keras.utils.set_random_seed(train_cfg.get("seed", 0))
        model = signal_training_model(preset.build(spec, train_cfg.get("model_options") or {}), spec)
        if weights is not None:
            if not weights.exists():
                continue
            model.load_weights(str(weights))
        rows = [gradient_norms(model, x, y) for x, y in fixed]
        results[label] = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.loss_balance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path, help="run directory of a signal-objective (default preset) run")
    p.add_argument("--data", default="build/dataset", type=Path, help="dataset directory the run was trained on")
    p.add_argument("--batches", type=int, default=2, help="fresh training batches to average over (default 2)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the run's batch size")
    args = p.parse_args(argv)
    config = json.loads((args.run / "config.json").read_text())
    if get_preset(config["preset"]).objective != "signal":
        raise SystemExit(f"{args.run} is a {config['preset']!r} run: only the signal objective has two loss terms")
    weight = config["train"].get("mag_loss_weight", TrainConfig.mag_loss_weight)
    print(f"run {args.run} (mag_loss_weight {weight:g})")
    print(f"{'weights':<16} {'-SI-SDR':>9} {'mag MSE':>10} {'|grad wave|':>12} {'|grad mag|':>11} {'equal weight':>13} {'mag share':>10}")
    for label, r in measure(args.run, Dataset.open(args.data), args.batches, args.batch_size).items():
        share = weight * r["mag_grad_norm"] / (r["wave_grad_norm"] + weight * r["mag_grad_norm"])
        print(f"{label:<16} {r['wave_loss']:>9.3f} {r['mag_mse']:>10.5f} {r['wave_grad_norm']:>12.4g} {r['mag_grad_norm']:>11.4g} "
              f"{r['equal_weight']:>13.4g} {share:>10.3g}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
