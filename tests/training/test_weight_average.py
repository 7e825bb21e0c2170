"""The weight average (--ema-momentum) is what validation scores and what the best checkpoint keeps."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest

from training.train import TrainConfig, adam, callbacks


class LastTrainedWeights(keras.callbacks.Callback):
    """The weights as the last training step left them, before any swap at the epoch's end."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.weights = [w.copy() for w in self.model.get_weights()]


def fit_linear(tmp_path: Path, ema_momentum: float | None) -> tuple[keras.Model, list[np.ndarray], list[float], tuple]:
    """Three epochs of a linear regression with the trainer's callbacks.

    Returns the model, its last trained weights, the logged validation losses and the validation data.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=adam(0.05, ema_momentum=ema_momentum), loss="mse")
    cfg = TrainConfig(data="-", preset="default", out=str(tmp_path), epochs=3, ema_momentum=ema_momentum)
    last = LastTrainedWeights()
    model.fit(x, y, batch_size=32, epochs=3, validation_data=(x, y), callbacks=[last, *callbacks(cfg, tmp_path)], verbose=0)
    with open(tmp_path / "history.csv") as fh:
        val = [float(row["val_loss"]) for row in csv.DictReader(fh)]
    return model, last.weights, val, (x, y)


@pytest.mark.parametrize("ema_momentum", [None, 0.9])
def test_checkpoint_holds_the_validated_weights(tmp_path: Path, ema_momentum: float | None) -> None:
    model, trained, val, (x, y) = fit_linear(tmp_path, ema_momentum)
    assert val == sorted(val, reverse=True)  # still improving: the last epoch is the best checkpoint
    model.load_weights(str(tmp_path / "best.weights.h5"))
    assert model.evaluate(x, y, verbose=0) == pytest.approx(val[-1], rel=1e-4)  # what validation scored
    same = all(np.allclose(a, b, rtol=1e-6) for a, b in zip(trained, model.get_weights()))
    if ema_momentum is None:
        assert same
    else:  # the average, which lags the trained weights while the loss still falls
        assert not same
        assert model.evaluate(x, y, verbose=0) > linear_mse(trained, x, y)


def linear_mse(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    kernel, bias = weights
    return float(np.mean((x @ kernel + bias - y) ** 2))
