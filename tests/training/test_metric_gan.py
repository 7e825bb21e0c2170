"""The learned PESQ critic: its targets are real PESQ, it learns them, it trains beside the
network, and a run with it resumes with the critic's state."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

pytestmark = pytest.mark.training

from tests.training.pipeline_helpers import history_epochs, run, tiny_signal_run  # noqa: E402
from training.metric_gan import MetricGANModel, build_critic, critic_features, pesq_targets  # noqa: E402

SR = 16000


def speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Voiced bursts: a harmonic tone under a syllable-rate envelope (PESQ finds utterances in it)."""
    t = np.arange(int(seconds * SR)) / SR
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k, f0 in ((1, 180.0), (2, 180.0), (3, 180.0)))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t + seed), 0.0, None)
    return (0.3 * voice * envelope).astype(np.float32)


def test_targets_are_scaled_wideband_pesq_and_nan_without_speech() -> None:
    from pesq import pesq

    clean = np.stack([speech_like(), speech_like(), np.zeros(2 * SR, dtype=np.float32)])
    noise = np.random.default_rng(0).normal(0, 0.05, clean.shape).astype(np.float32)
    other = clean + noise
    scores = pesq_targets(clean, other)
    assert np.isnan(scores[2])  # silence: no utterance to score
    want = (pesq(SR, clean[0].astype(np.float64), other[0].astype(np.float64), "wb") - 1.0) / 3.5
    np.testing.assert_allclose(scores[0], want, rtol=1e-5)
    assert 0.0 <= scores[0] < pesq_targets(clean[:1], clean[:1] + 0.1 * noise[:1])[0] <= 1.0  # less noise, higher


def test_the_critic_learns_to_tell_clean_from_noisy() -> None:
    keras.utils.set_random_seed(0)
    critic = build_critic(channels=(4, 8), hidden=8)
    clean = np.stack([speech_like(seed=s) for s in range(4)])
    noisy = clean + np.random.default_rng(1).normal(0, 0.1, clean.shape).astype(np.float32)
    c, n = critic_features(tf.constant(clean)), critic_features(tf.constant(noisy))
    x = tf.concat([tf.stack([c, c], -1), tf.stack([c, n], -1)], 0)
    y = np.concatenate([np.ones(4), pesq_targets(clean, noisy)]).astype(np.float32)[:, None]
    critic.compile(keras.optimizers.Adam(1e-2), "mse")
    before = critic.evaluate(x, y, verbose=0)
    critic.fit(x, y, epochs=60, verbose=0)
    assert critic.evaluate(x, y, verbose=0) < 0.2 * before
    on_clean, on_noisy = np.asarray(critic(x))[:4], np.asarray(critic(x))[4:]
    assert on_clean.min() > on_noisy.max()


def tiny_generator() -> keras.Model:
    """A stand-in signal model with the training model's interface: a learnable gain on the noisy wave."""
    noisy = keras.Input(shape=(None,), name="noisy")
    gain = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", name="gain")
    wave = keras.layers.Lambda(lambda w: w[..., 0], name="wave")(gain(keras.ops.expand_dims(noisy, -1)))
    return keras.Model(noisy, {"wave": wave}, name="tiny")


@pytest.mark.parametrize("warmup,moves", [(0, True), (100, False)])
def test_each_step_updates_the_critic_and_the_network_only_after_its_warm_up(warmup: int, moves: bool) -> None:
    keras.utils.set_random_seed(0)
    model = MetricGANModel(tiny_generator(), weight=1.0, warmup_steps=warmup, critic=build_critic((4,), 4))
    model.compile(keras.optimizers.Adam(1e-2), loss={"wave": lambda y, p: 0.0 * keras.ops.mean(p)})
    clean = np.stack([speech_like(seed=s) for s in range(2)])
    noisy = clean + np.random.default_rng(2).normal(0, 0.1, clean.shape).astype(np.float32)
    critic_before = [w.copy() for w in model.critic.get_weights()] if model.critic.built else None
    logs = model.fit(noisy, {"wave": clean}, batch_size=2, epochs=3, verbose=0).history
    assert all(np.isfinite(logs[k]).all() for k in ("critic_loss", "adversarial_loss", "pesq_wb"))
    assert 1.0 <= logs["pesq_wb"][-1] <= 4.5
    assert model.critic_optimizer.iterations.numpy() == 3
    assert critic_before is not None and any(np.abs(a - b).max() > 0 for a, b in zip(model.critic.get_weights(), critic_before))
    # only the critic's term reaches the gain (the compiled loss is zero): it moves once the critic counts
    gain = float(model.generator.get_layer("gain").get_weights()[0][0, 0])
    assert (gain != 1.0) is moves


def test_a_batch_without_speech_logs_no_pesq() -> None:
    keras.utils.set_random_seed(0)
    model = MetricGANModel(tiny_generator(), weight=1.0, critic=build_critic((4,), 4))
    model.compile(keras.optimizers.Adam(1e-2), loss={"wave": "mse"})
    silence = np.zeros((2, 2 * SR), dtype=np.float32)
    noise = np.random.default_rng(3).normal(0, 0.01, silence.shape).astype(np.float32)
    logs = model.fit(noise, {"wave": silence}, batch_size=2, epochs=1, verbose=0).history
    assert np.isnan(logs["pesq_wb"][-1]) and np.isfinite(logs["critic_loss"][-1])


def test_a_run_with_the_critic_trains_and_resumes_with_its_state(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tiny_signal_run("band", tiny_dataset, tmp_path_factory, "--critic-weight", "5", "--critic-warmup-steps", "1")
    config = json.loads((out / "config.json").read_text())["train"]
    assert config["critic_weight"] == 5.0 and config["critic_warmup_steps"] == 1
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"critic_loss", "adversarial_loss", "pesq_wb"} <= set(header)
    # a second epoch resumes from the backup, the critic's optimiser with it
    options = json.dumps({"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2, 1]})
    proc = run("-m", "training.train", "--data", str(tiny_dataset), "--preset", "band", "--out", str(out), "--epochs", "2",
               "--steps-per-epoch", "2", "--batch-size", "4", "--val-limit", "4", "--quality-every", "1", "--model-options", options,
               "--critic-weight", "5", "--critic-warmup-steps", "1")
    assert history_epochs(out) == [0, 1]
    assert "Epoch 2/2" in proc.stdout and "Epoch 1/2" not in proc.stdout


def test_saved_weights_hold_the_critic_and_its_optimiser(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    clean = np.stack([speech_like(seed=s) for s in range(2)])
    noisy = clean + np.random.default_rng(2).normal(0, 0.1, clean.shape).astype(np.float32)

    def trained(epochs: int) -> MetricGANModel:
        model = MetricGANModel(tiny_generator(), weight=1.0, critic=build_critic((4,), 4))
        model.compile(keras.optimizers.Adam(1e-2), loss={"wave": "mse"})
        model.fit(noisy, {"wave": clean}, batch_size=2, epochs=epochs, verbose=0)
        return model

    model, fresh = trained(3), trained(1)
    model.save_weights(tmp_path / "backup.weights.h5")
    fresh.load_weights(tmp_path / "backup.weights.h5")
    assert fresh.critic_optimizer.iterations.numpy() == 3
    for mine, theirs in zip(fresh.critic.get_weights(), model.critic.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(fresh.critic_optimizer.variables, model.critic_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
