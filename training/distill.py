"""Training a signal network to follow a larger, already trained one (knowledge distillation).

The teacher is another run's network, frozen, on the same signal contract. Each training step
scores the student's waveform twice with the run's waveform loss: against the clean speech (the
compiled loss) and against the teacher's output for the same noisy input, ``weight`` times.
Validation, checkpoints, backups and export see the student alone: the teacher is held out of
Keras's tracking, so saved weights are the student's and its optimiser's, and a resumed run
loads the teacher again from its weights files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import tensorflow as tf

from denoise_core.signal import SignalSpec
from training.graph import signal_training_model

WaveLoss = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def trained_network(weights: str | Path) -> tuple[keras.Model, SignalSpec]:
    """The frozen network of the run that wrote ``weights`` (built from the ``config.json``
    beside them), with those weights, and that run's signal contract."""
    weights = Path(weights)
    config_file = weights.parent / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: the run record (its preset and signal contract) of {weights.name} is missing")
    from training.export import network_from_config

    config = json.loads(config_file.read_text())
    net = network_from_config(config)
    net.load_weights(weights)
    net.trainable = False
    return net, SignalSpec.from_dict(config["signal"])


class WaveformMean(keras.Model):
    """Several signal training models of one interface as one: the mean of their outputs."""

    def __init__(self, members: Sequence[keras.Model], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.members = list(members)
        self.built = True

    def call(self, inputs: Any, training: bool = False) -> dict[str, tf.Tensor]:
        outputs = [member(inputs, training=training) for member in self.members]
        return {key: tf.add_n([out[key] for out in outputs]) / len(outputs) for key in ("wave", "mag")}


def load_teacher(weights: str | Path | Sequence[str | Path], spec: SignalSpec) -> keras.Model:
    """The frozen signal training model (inputs to ``{"wave", "mag"}``) of the run that wrote
    ``weights``; of several weights files, the mean of their runs' outputs (a
    :class:`WaveformMean`). Each run's recorded signal contract must be ``spec``, so that it
    reads the same features as the student."""
    paths = [weights] if isinstance(weights, (str, Path)) else list(weights)
    if not paths:
        raise ValueError("no teacher weights")
    members = []
    for path in paths:
        net, recorded = trained_network(path)
        if recorded != spec:
            raise ValueError(f"the teacher {path}'s signal contract {recorded} is not the student's {spec}")
        members.append(signal_training_model(net, recorded))
    teacher = members[0] if len(members) == 1 else WaveformMean(members, name="teacher_mean")
    teacher.trainable = False
    return teacher


class Untracked:
    """Holds a network out of Keras's tracking: a model that keeps one this way leaves its
    weights out of ``weights``, ``save_weights`` and backups."""

    def __init__(self, net: keras.Model) -> None:
        self.net = net


class DistillationModel(keras.Model):
    """The student's signal training model with a frozen ``teacher`` of the same interface. Each
    training step minimises the compiled loss plus ``weight`` times the mean of ``follow_loss``
    (the waveform loss) between the teacher's and the student's waveforms. Evaluation and
    prediction are the student's; saved weights are the student's alone."""

    def __init__(self, student: keras.Model, teacher: keras.Model, weight: float, follow_loss: WaveLoss, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        teacher.trainable = False
        self.student, self.teacher = student, Untracked(teacher)
        self.weight, self.follow_loss = float(weight), follow_loss
        self.built = True  # both networks are built; the backup callback needs to know

    def call(self, inputs: Any, training: bool = False) -> Any:
        return self.student(inputs, training=training)

    def train_step(self, data: Any) -> dict[str, Any]:
        x, y = data
        taught = tf.stop_gradient(self.teacher.net(x, training=False)["wave"])
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
