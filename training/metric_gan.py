"""A learned PESQ critic for training the signal networks (after MetricGAN+, Fu et al. 2021).

A small convolutional discriminator reads the compressed magnitude spectrograms of the clean
and of another wave and estimates their wideband PESQ, scaled to [0, 1]. It is trained on the
real PESQ of the network's outputs (computed on the CPU each step) and of the clean wave itself
(1). The network then has a further loss term: the squared distance of the critic's estimate
for its output from 1, the best PESQ. :class:`MetricGANModel` runs both updates in each
training step; validation, checkpoints and export see the signal network alone.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from training.losses import stft, unit_rms

#: wideband PESQ's range, mapped to [0, 1]
PESQ_MIN, PESQ_MAX = 1.0, 4.5
N_FFT, HOP = 512, 256
SAMPLE_RATE = 16000


def pesq_targets(clean: np.ndarray, other: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Wideband PESQ of each ``other`` row against the ``clean`` row, scaled to [0, 1]; NaN where
    PESQ finds no speech in the clean row."""
    from pesq import NoUtterancesError, pesq

    scores = np.full(clean.shape[0], np.nan, dtype=np.float32)
    for i, (ref, deg) in enumerate(zip(clean, other)):
        try:
            scores[i] = (pesq(sample_rate, ref.astype(np.float64), deg.astype(np.float64), "wb") - PESQ_MIN) / (PESQ_MAX - PESQ_MIN)
        except NoUtterancesError:
            continue
    return np.clip(scores, 0.0, 1.0)


def critic_features(wave: tf.Tensor) -> tf.Tensor:
    """``(batch, frames, n_fft // 2 + 1)`` magnitudes compressed by the exponent 0.3, at unit RMS."""
    return tf.pow(tf.abs(stft(unit_rms(wave), N_FFT, HOP)) + 1e-8, 0.3)


def build_critic(channels: tuple[int, ...] = (16, 32, 32, 32), hidden: int = 64) -> keras.Model:
    """The discriminator: the clean and the other spectrogram as two channels, strided 2-D
    convolutions, a global average, and a sigmoid estimate of the scaled PESQ."""
    inputs = keras.Input(shape=(None, N_FFT // 2 + 1, 2), name="spectrograms")
    x = inputs
    for i, ch in enumerate(channels):
        x = layers.Conv2D(ch, (4, 4), strides=(2, 2), padding="same", name=f"critic{i}_conv")(x)
        x = layers.LeakyReLU(0.2, name=f"critic{i}_act")(x)
    x = layers.GlobalAveragePooling2D(name="critic_pool")(x)
    x = layers.Dense(hidden, name="critic_hidden")(x)
    x = layers.LeakyReLU(0.2, name="critic_hidden_act")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="critic_score")(x)
    return keras.Model(inputs, outputs, name="pesq_critic")


class MetricGANModel(keras.Model):
    """The signal training model (``generator``: inputs to ``{"wave", "mag"}``) with a PESQ
    critic. Each training step updates the generator on its compiled loss plus ``weight`` times
    the critic's ``(estimate - 1)^2`` (from ``warmup_steps`` on: the critic learns first), then
    the critic on the real PESQ of that step's outputs and of the clean waves. Evaluation and
    prediction are the generator's."""

    def __init__(self, generator: keras.Model, weight: float, warmup_steps: int = 0, critic: keras.Model | None = None,
                 critic_learning_rate: float = 5e-4, sample_rate: int = SAMPLE_RATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.generator = generator
        self.critic = critic or build_critic()
        self.weight, self.warmup_steps, self.sample_rate = float(weight), int(warmup_steps), int(sample_rate)
        self.critic_optimizer = keras.optimizers.Adam(critic_learning_rate)
        self.critic_optimizer.build(self.critic.trainable_variables)
        self.built = True  # both networks are built; the backup callback needs to know

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.generator(inputs, training=training)

    def _scores(self, clean: tf.Tensor, other: tf.Tensor) -> tf.Tensor:
        scores = tf.numpy_function(lambda c, o: pesq_targets(c, o, self.sample_rate), [clean, other], tf.float32, stateful=False)
        return tf.reshape(scores, (-1,))

    def _critic(self, clean_features: tf.Tensor, other_features: tf.Tensor, training: bool) -> tf.Tensor:
        return tf.reshape(self.critic(tf.stack([clean_features, other_features], axis=-1), training=training), (-1,))

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        clean = y["wave"]
        clean_features = critic_features(clean)
        active = tf.cast(self.optimizer.iterations >= self.warmup_steps, tf.float32)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            estimate = self._critic(clean_features, critic_features(y_pred["wave"]), training=False)
            adversarial = tf.reduce_mean(tf.square(estimate - 1.0))
            total = loss + active * self.weight * adversarial
        variables = self.generator.trainable_variables
        self.optimizer.apply(tape.gradient(total, variables), variables)
        # the critic, on the outputs this step began from
        enhanced = tf.stop_gradient(y_pred["wave"])
        target = self._scores(clean, enhanced)
        known = tf.math.is_finite(target)
        target = tf.where(known, target, 0.0)
        count = tf.reduce_sum(tf.cast(known, tf.float32))
        scored = tf.maximum(count, 1.0)
        with tf.GradientTape() as tape:
            on_clean = self._critic(clean_features, clean_features, training=True)
            on_enhanced = self._critic(clean_features, critic_features(enhanced), training=True)
            misses = tf.where(known, tf.square(on_enhanced - target), 0.0)
            critic_loss = tf.reduce_mean(tf.square(on_clean - 1.0)) + tf.reduce_sum(misses) / scored
        self.critic_optimizer.apply(tape.gradient(critic_loss, self.critic.trainable_variables), self.critic.trainable_variables)
        self._loss_tracker.update_state(loss)
        logs = self.compute_metrics(x, y, y_pred)
        return {**logs, "critic_loss": critic_loss, "adversarial_loss": adversarial,
                # the batch's mean wideband PESQ; NaN where no item had speech to score
                "pesq_wb": tf.where(count > 0, tf.reduce_sum(target) / scored * (PESQ_MAX - PESQ_MIN) + PESQ_MIN, np.nan)}
