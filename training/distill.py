"""Training a signal network to follow a larger, already trained one (knowledge distillation).

The teacher is another run's network, frozen, on the same signal contract. Each training step
scores the student's waveform twice with the run's waveform loss: against the clean speech (the
compiled loss) and against the teacher's output for the same noisy input, ``weight`` times.
Validation, checkpoints and export see the student alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import keras
import tensorflow as tf

from denoise_core.signal import SignalSpec
from training.graph import signal_training_model
from training.warm_start import source_network

WaveLoss = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def load_teacher(weights: str | Path, spec: SignalSpec) -> keras.Model:
    """The frozen signal training model (inputs to ``{"wave", "mag"}``) of the run that wrote
    ``weights``, built from the ``config.json`` beside them. Its recorded signal contract must be
    ``spec``, so that it reads the same features as the student."""
    weights = Path(weights)
    config_file = weights.parent / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: the teacher's run record (its preset and signal contract) is missing")
    config = json.loads(config_file.read_text())
    recorded = SignalSpec.from_dict(config["signal"])
    if recorded != spec:
        raise ValueError(f"the teacher's signal contract {recorded} is not the student's {spec}")
    net = source_network(weights)
    net.load_weights(weights)
    net.trainable = False
    teacher = signal_training_model(net, recorded)
    teacher.trainable = False
    return teacher


class DistillationModel(keras.Model):
    """The student's signal training model with a frozen ``teacher`` of the same interface. Each
    training step minimises the compiled loss plus ``weight`` times the mean of ``follow_loss``
    (the waveform loss) between the teacher's and the student's waveforms. Evaluation and
    prediction are the student's."""

    def __init__(self, student: keras.Model, teacher: keras.Model, weight: float, follow_loss: WaveLoss, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.student, self.teacher = student, teacher
        self.teacher.trainable = False
        self.weight, self.follow_loss = float(weight), follow_loss
        self.built = True  # both networks are built; the backup callback needs to know

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.student(inputs, training=training)

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        taught = tf.stop_gradient(self.teacher(x, training=False)["wave"])
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            follow = tf.reduce_mean(self.follow_loss(taught, y_pred["wave"]))
            total = loss + self.weight * follow
        variables = self.student.trainable_variables
        self.optimizer.apply(tape.gradient(total, variables), variables)
        self._loss_tracker.update_state(loss)
        logs = self.compute_metrics(x, y, y_pred)
        return {**logs, "follow_loss": follow}
