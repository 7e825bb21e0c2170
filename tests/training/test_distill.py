"""Distillation: the student moves towards a frozen teacher, saved weights are the student's
alone, the teacher must share the signal contract, and a run with a teacher trains, records the
term and resumes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

pytestmark = pytest.mark.training

from tests.training.pipeline_helpers import TINY_BAND, history_epochs, run, tiny_signal_run  # noqa: E402
from training.distill import DistillationModel, load_teacher  # noqa: E402
from denoise_core.signal import SignalSpec  # noqa: E402

WIDER = json.dumps({"channels": [6, 8], "bottleneck": 24, "dilations": [1, 2, 1]})


def gain_model(name: str, gain: float) -> keras.Model:
    """A stand-in signal model: a learnable gain on the noisy wave, output ``{"wave"}``."""
    noisy = keras.Input(shape=(None,), name="noisy")
    scale = keras.layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(gain), name="gain")
    wave = keras.layers.Lambda(lambda w: w[..., 0], name="wave")(scale(keras.ops.expand_dims(noisy, -1)))
    return keras.Model(noisy, {"wave": wave}, name=name)


def mse(y_true, y_pred):  # noqa: ANN001, ANN201
    return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)


@pytest.mark.parametrize("weight", [1.0, 3.0])
def test_the_student_moves_to_the_teacher_and_the_teacher_stays(weight: float) -> None:
    keras.utils.set_random_seed(0)
    model = DistillationModel(gain_model("student", 1.0), gain_model("teacher", 0.5), weight, mse)
    # the clean target is the noisy wave itself (gain 1): the compiled loss pulls towards 1, the teacher towards 0.5
    model.compile(keras.optimizers.Adam(5e-2), loss={"wave": mse})
    noisy = np.random.default_rng(0).normal(0, 1, (8, 400)).astype(np.float32)
    logs = model.fit(noisy, {"wave": noisy}, batch_size=8, epochs=150, verbose=0).history
    gain = float(model.student.get_layer("gain").get_weights()[0][0, 0])
    # the minimum of (g - 1)^2 + w (g - 0.5)^2
    assert gain == pytest.approx((1.0 + 0.5 * weight) / (1.0 + weight), abs=0.02)
    assert float(model.teacher.net.get_layer("gain").get_weights()[0][0, 0]) == 0.5
    assert logs["follow_loss"][-1] < logs["follow_loss"][0]
    # evaluation and prediction are the student's
    np.testing.assert_allclose(np.asarray(model.predict(noisy, verbose=0)["wave"]), gain * noisy, rtol=1e-5)


def trained_pair(student_gain: float, teacher_gain: float, steps: int) -> DistillationModel:
    """A compiled stand-in pair after ``steps`` training steps (zero still builds the optimiser)."""
    model = DistillationModel(gain_model("student", student_gain), gain_model("teacher", teacher_gain), 1.0, mse)
    model.compile(keras.optimizers.Adam(5e-2), loss={"wave": mse})
    noisy = np.random.default_rng(0).normal(0, 1, (4, 100)).astype(np.float32)
    model.fit(noisy, {"wave": noisy}, batch_size=4, epochs=steps, verbose=0)
    if not steps:
        model.optimizer.build(model.trainable_variables)
    return model


def saved_arrays(path: Path) -> list[tuple[int, ...]]:
    """The shapes of every array in a Keras weights file."""
    shapes: list[tuple[int, ...]] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda _, obj: shapes.append(obj.shape) if isinstance(obj, h5py.Dataset) else None)
    return shapes


def test_saved_weights_are_the_students_alone(tmp_path: Path) -> None:
    model = trained_pair(1.0, 0.5, steps=3)
    assert [w.path for w in model.weights] == [w.path for w in model.student.weights]
    path = tmp_path / "pair.weights.h5"
    model.save_weights(path)
    # the student's gain, and the optimiser's step count, learning rate and two moments of that gain
    assert sorted(saved_arrays(path)) == sorted([(1, 1), (), (), (1, 1), (1, 1)])
    fresh = trained_pair(3.0, 0.25, steps=0)
    fresh.load_weights(path)
    assert float(fresh.student.get_layer("gain").get_weights()[0][0, 0]) == float(model.student.get_layer("gain").get_weights()[0][0, 0])
    assert int(fresh.optimizer.iterations) == 3
    assert float(fresh.teacher.net.get_layer("gain").get_weights()[0][0, 0]) == 0.25


class TeacherSaved(DistillationModel):
    """The earlier layout, whose saved weights also held the teacher's."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.kept_teacher = self.teacher.net


def test_weights_saved_with_the_teacher_still_load(tmp_path: Path) -> None:
    old = TeacherSaved(gain_model("student", 0.75), gain_model("teacher", 0.5), 1.0, mse)
    old.compile(keras.optimizers.Adam(5e-2), loss={"wave": mse})
    old.optimizer.build(old.trainable_variables)
    path = tmp_path / "old.weights.h5"
    old.save_weights(path)
    assert saved_arrays(path).count((1, 1)) == 4  # both gains, and the two moments of the student's
    fresh = trained_pair(3.0, 0.25, steps=0)
    fresh.load_weights(path)
    assert float(fresh.student.get_layer("gain").get_weights()[0][0, 0]) == 0.75
    assert float(fresh.teacher.net.get_layer("gain").get_weights()[0][0, 0]) == 0.25


@pytest.fixture(scope="module")
def teacher_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny band network wider than the students' (TINY_BAND)."""
    return tiny_signal_run("band", tiny_dataset, tmp_path_factory, "--model-options", WIDER)


def test_a_teacher_needs_its_run_record_and_the_same_signal_contract(teacher_run: Path, tmp_path: Path) -> None:
    weights = teacher_run / "best-quality.weights.h5"
    spec = SignalSpec.from_dict(json.loads((teacher_run / "config.json").read_text())["signal"])
    teacher = load_teacher(weights, spec)
    assert teacher.weights and not teacher.trainable_variables
    assert set(teacher.output_names) == {"wave", "mag"}
    with pytest.raises(ValueError, match="signal contract"):
        load_teacher(weights, replace(spec, norm_max=spec.norm_max + 1.0))
    alone = tmp_path / "alone.weights.h5"
    shutil.copy(weights, alone)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_teacher(alone, spec)


def test_several_teachers_are_followed_through_their_mean(teacher_run: Path, tiny_dataset: Path,
                                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tiny_signal_run("band", tiny_dataset, tmp_path_factory) / "best-quality.weights.h5"
    weights = teacher_run / "best-quality.weights.h5"
    spec = SignalSpec.from_dict(json.loads((teacher_run / "config.json").read_text())["signal"])
    rng = np.random.default_rng(1)
    frames = 9
    x = {"features": rng.uniform(0, 1, (2, spec.n_freq, frames, spec.input_channels)).astype(np.float32),
         "real": rng.normal(0, 1, (2, spec.n_freq, frames)).astype(np.float32),
         "imag": rng.normal(0, 1, (2, spec.n_freq, frames)).astype(np.float32)}
    first, second = (np.asarray(load_teacher(w, spec)(x)["wave"]) for w in (weights, other))
    mean = load_teacher([weights, other], spec)
    assert not mean.trainable_variables
    assert np.abs(first - second).max() > 1e-3  # two different networks
    np.testing.assert_allclose(np.asarray(mean(x)["wave"]), (first + second) / 2, rtol=1e-4, atol=1e-6)


def test_a_run_with_a_teacher_trains_and_resumes(teacher_run: Path, tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    teacher = str(teacher_run / "best-quality.weights.h5")
    out = tiny_signal_run("band", tiny_dataset, tmp_path_factory, "--teacher", teacher, "--teacher-weight", "2")
    config = json.loads((out / "config.json").read_text())["train"]
    assert config["teacher"] == [teacher] and config["teacher_weight"] == 2.0
    assert "follow_loss" in (out / "history.csv").read_text().splitlines()[0].split(",")
    assert (out / "best-quality.weights.h5").exists()
    # the backup holds the student and its optimiser: no array of the wider teacher's shapes
    student_shapes = set(saved_arrays(out / "best-quality.weights.h5"))
    assert set(saved_arrays(teacher_run / "best-quality.weights.h5")) - student_shapes
    assert set(saved_arrays(out / "backup" / "latest.weights.h5")) <= student_shapes | {()}
    # a second epoch resumes from the backup
    proc = run("-m", "training.train", "--data", str(tiny_dataset), "--preset", "band", "--out", str(out), "--epochs", "2",
               "--steps-per-epoch", "2", "--batch-size", "4", "--val-limit", "4", "--quality-every", "1",
               "--model-options", TINY_BAND,
               "--teacher", teacher, "--teacher-weight", "2")
    assert history_epochs(out) == [0, 1]
    assert "Epoch 2/2" in proc.stdout and "Epoch 1/2" not in proc.stdout
