"""Re-estimate BatchNorm statistics after training: ``python -m training.batchnorm --run DIR``.

Keras keeps BatchNorm's inference statistics as a moving average with momentum 0.99,
so they trail the weights by hundreds of steps. On this CPU the seed recipe gets few
steps in its budget, and its inference-mode output lags the training-mode one by far
(the validation loss the recipe's checkpointing and learning-rate schedule watch is then
measured on stale statistics). Replacing the moving statistics by
the average batch statistics of the final weights over the training split removes the lag
without touching a weight. The seed trainer does it after restoring the best checkpoint;
this command does it to a finished run's ``model.keras`` and rescores it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import keras
import numpy as np

from denoise_core.signal import SignalSpec
from training.datasets import Dataset, seed_arrays


def reestimate_batchnorm(model: keras.Model, inputs: np.ndarray, batch_size: int = 16) -> int:
    """Set each BatchNormalization layer's moving mean/variance to its batch statistics averaged
    over ``inputs`` (training-mode normalisation, dropout off). Returns the number of layers."""
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return 0
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    saved = [layer.momentum for layer in norms], [layer.rate for layer in drops]
    sums = {id(layer): [np.zeros(layer.moving_mean.shape), np.zeros(layer.moving_variance.shape)] for layer in norms}
    total = 0
    try:
        for layer in norms:
            layer.momentum = 0.0  # the moving statistics become the last batch's
        for layer in drops:
            layer.rate = 0.0
        for start in range(0, len(inputs), batch_size):
            batch = inputs[start : start + batch_size]
            model(batch, training=True)
            for layer in norms:
                sums[id(layer)][0] += len(batch) * np.asarray(layer.moving_mean)
                sums[id(layer)][1] += len(batch) * np.asarray(layer.moving_variance)
            total += len(batch)
    finally:
        for layer, momentum in zip(norms, saved[0]):
            layer.momentum = momentum
        for layer, rate in zip(drops, saved[1]):
            layer.rate = rate
    for layer in norms:
        layer.moving_mean.assign(sums[id(layer)][0] / total)
        layer.moving_variance.assign(sums[id(layer)][1] / total)
    return len(norms)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.batchnorm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=Path, help="finished seed run directory (holds model.keras)")
    p.add_argument("--data", type=Path, default=None, help="dataset directory (default: the run's)")
    args = p.parse_args(argv)
    from training.train import seed_mse_by_split  # the trainer imports this module

    config = json.loads((args.run / "config.json").read_text())
    if config["preset"] != "seed":
        raise SystemExit(f"{args.run} is a {config['preset']!r} run: only the seed recipe uses BatchNorm")
    result_file = args.run / "result.json"
    result = json.loads(result_file.read_text())
    if result.get("batchnorm_reestimated"):
        print(f"{args.run}: BatchNorm statistics were already re-estimated")
        return 0
    spec = SignalSpec.from_dict(config["signal"])
    data = Dataset.open(args.data or config["train"]["data"])
    net = keras.models.load_model(args.run / "model.keras", compile=False)
    net.compile(loss="mse", metrics=[keras.metrics.MeanSquaredError(name="mse")])
    splits = {name: data.split(name) for name in ("train", "val", "test")}
    x = {name: seed_arrays(a.noisy, spec) for name, a in splits.items()}
    y = {name: seed_arrays(a.clean, spec) for name, a in splits.items()}
    batch_size = config["train"]["batch_size"]
    layers = reestimate_batchnorm(net, x["train"], batch_size)
    metrics = seed_mse_by_split(net, x, y, batch_size)
    net.save(str(args.run / "model.keras"))
    result.update({"metrics_before_batchnorm": result.get("metrics"), "metrics": metrics, "batchnorm_reestimated": layers})
    result_file.write_text(json.dumps(result, indent=2))
    print(f"re-estimated {layers} BatchNorm layers; seed MSE  "
          + "  ".join(f"{k.removesuffix('_mse')} {result['metrics_before_batchnorm'][k]:.4f} -> {v:.4f}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
