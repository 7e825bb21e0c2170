"""Train a preset on a built dataset: ``python -m training.train --data DIR --preset seed|default|complex --out RUN_DIR``.

Defaults follow the reference recipe: Adam with lr = 0.01 * batch / 256, batch 16, up
to 100 epochs, best-validation checkpoint, early stopping (patience 20, best weights
restored) and ReduceLROnPlateau (x0.5 after 3 epochs, min 1e-7). Presets may change
a default (the default preset uses lr 1e-3 and 200 fresh batches of 8 per epoch); every
value can be overridden. Re-running the same command resumes from the last epoch's
backup in RUN_DIR; a RUN_DIR with a result.json and no backup is finished and trains nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from denoise_core.signal import SignalSpec
from training.batchnorm import reestimate_batchnorm
from training.datasets import Dataset, MixerConfig, OnTheFlyMixer, fixed_signal_set, seed_arrays, training_stats
from training.distill import DistillationModel, load_teacher
from training.graph import mag_loss, si_sdr_db, signal_training_model, wave_loss
from training.metric_gan import MetricGANModel
from training.presets import PRESETS, Preset, get_preset
from training.quality import QUALITY_WEIGHTS, QualityCheck
from training.warm_start import start_from

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as ``config.json`` in the run directory."""

    data: str
    preset: str
    out: str
    epochs: int = 100
    batch_size: int = 16
    lr: float | None = None  # None: 0.01 * batch / 256
    patience: int = 20
    lr_patience: int = 3
    lr_factor: float = 0.5
    min_lr: float = 1e-7
    seed: int = 0
    width: float = 1.0
    steps_per_epoch: int | None = None
    val_limit: int | None = 150
    time_budget_minutes: float | None = None
    mag_loss_weight: float = 50.0
    crop_seconds: float = 3.0
    lr_schedule: str = "plateau"
    ema_momentum: float | None = None  # validate, checkpoint and ship Adam's moving average of the weights
    model_options: dict[str, Any] = field(default_factory=dict)
    mixer_options: dict[str, Any] = field(default_factory=dict)
    #: the validation figure that picks the best checkpoint, stops early and (plateau schedule) cuts the rate
    monitor: str = "val_loss"
    #: the waveform loss: "si_sdr" (negative SI-SDR) or "si_sdr+spectral" (plus the multi-resolution
    #: compressed spectral loss of training.losses times ``spectral_weight``)
    wave_loss: str = "si_sdr"
    spectral_weight: float = 100.0
    #: weight of the PESQ-style disturbance (training.perceptual_loss) added to the waveform loss (0: none)
    perceptual_weight: float = 0.0
    #: signal presets: weight of a learned PESQ critic's term (training.metric_gan; 0: no critic)
    critic_weight: float = 0.0
    #: steps the critic trains before its term reaches the network
    critic_warmup_steps: int = 500
    #: signal presets: trained runs' ``*.weights.h5`` (each with its run's ``config.json`` beside it)
    #: whose networks' mean output the student follows (training.distill); None: no teacher
    teacher: list[str] | None = None
    #: weight of the waveform loss against the teacher's output, beside the one against the clean speech
    teacher_weight: float = 1.0
    #: signal presets: a new run starts from these network weights (a ``*.weights.h5`` that a run of the
    #: same preset and model options kept); a resumed run continues from its backup instead
    init_weights: str | None = None
    #: in every magnitude loss term, the weight of bins where the estimate exceeds the clean speech
    overshoot: float = 1.0
    #: cosine-steps schedule: linear warm-up over this many steps before the decay
    warmup_steps: int = 0
    #: score the whole validation split (SI-SDR, PESQ-WB, STOI, DNSMOS) every this many epochs
    #: (0: never) and keep the checkpoint with the best quality score (training.quality)
    quality_every: int = 0
    #: TensorFlow's intra-op threads (None: one per core). Not part of the recipe: on two cores,
    #: two runs side by side at one thread each train more steps per hour in all than one at two
    threads: int | None = None
    #: the network's Keras dtype policy while it trains: "float32", or "mixed_bfloat16" (bfloat16
    #: maths, float32 weights); the loss, validation scoring and the exported model stay in float32
    precision: str = "float32"

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else 0.01 * self.batch_size / 256


def git_commit() -> str:
    """The repository commit the run was trained from (``-dirty`` if modified)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def total_steps(cfg: TrainConfig) -> int:
    """Optimiser steps of the whole run (the cosine-steps schedule decays over them)."""
    return cfg.epochs * (cfg.steps_per_epoch or 100)


def learning_rate_schedule(cfg: TrainConfig) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """A constant rate (the callbacks may change it), or the cosine over steps with warm-up.

    The step count lives in the optimiser, which the backup restores, so a resumed run
    continues the same curve however long the pause or slow the machine.
    """
    if cfg.lr_schedule != "cosine-steps":
        return cfg.learning_rate
    warmup = min(cfg.warmup_steps, total_steps(cfg) - 1)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else cfg.learning_rate, decay_steps=total_steps(cfg) - warmup, alpha=0.02,
        warmup_target=cfg.learning_rate if warmup else None, warmup_steps=warmup,
    )


class TimeBudget(keras.callbacks.Callback):
    """Stop after a total training time, counted across resumed runs.

    With ``cosine_lr`` set, the learning rate also follows a cosine from ``base_lr``
    down to ``min_factor * base_lr`` over the budget (time, not steps, is what is
    fixed on a shared CPU).
    """

    def __init__(self, budget_seconds: float | None, state_file: Path, base_lr: float | None = None, min_factor: float = 0.02) -> None:
        super().__init__()
        self.budget, self.state_file = budget_seconds, state_file
        self.base_lr, self.min_factor = base_lr, min_factor
        self.spent = json.loads(state_file.read_text())["seconds"] if state_file.exists() else 0.0
        self._t0 = time.monotonic()

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.base_lr is None or not self.budget or batch % 10:
            return
        progress = min(1.0, (self.spent + time.monotonic() - self._t0) / self.budget)
        factor = self.min_factor + (1 - self.min_factor) * 0.5 * (1 + np.cos(np.pi * progress))
        self.model.optimizer.learning_rate.assign(self.base_lr * factor)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        self.spent += now - self._t0
        self._t0 = now
        self.state_file.write_text(json.dumps({"seconds": self.spent, "epoch": epoch + 1}))
        if self.budget is not None and self.spent >= self.budget:
            print(f"\ntime budget of {self.budget / 60:.1f} min reached after epoch {epoch + 1}", flush=True)
            self.model.stop_training = True


class StepLog(keras.callbacks.Callback):
    """Add the optimiser's step count and learning rate to each epoch's logs (so to ``history.csv``)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is None:
            return
        optimizer = self.model.optimizer
        logs["step"] = int(optimizer.iterations.numpy())
        logs["learning_rate"] = float(np.asarray(optimizer.learning_rate))


MONITORS = ("val_loss", "val_wave_si_sdr_db")
LR_SCHEDULES = ("plateau", "cosine-time", "cosine-steps")
WAVE_LOSSES = ("si_sdr", "si_sdr+spectral")
PRECISIONS = ("float32", "mixed_bfloat16")


def monitor_mode(monitor: str) -> str:
    """Whether a monitored figure improves downwards (losses) or upwards (SI-SDR)."""
    return "max" if "si_sdr" in monitor else "min"


def previous_best(run: Path, monitor: str) -> float | None:
    """Best ``monitor`` value of the epochs already in ``run/history.csv`` when a best checkpoint
    exists (a resumed run), so that the checkpoint is only replaced by a better epoch."""
    history = run / "history.csv"
    if not (run / "best.weights.h5").exists() or not history.exists():
        return None
    with history.open() as f:
        best = best_row(list(csv.DictReader(f)), monitor)
    return float(best[monitor]) if best else None


def best_row(rows: list[dict[str, str]], monitor: str) -> dict[str, str] | None:
    """The ``history.csv`` row with the best ``monitor`` value (None when no row has one)."""
    scored = [row for row in rows if row.get(monitor)]
    if not scored:
        return None
    sign = -1.0 if monitor_mode(monitor) == "max" else 1.0
    return min(scored, key=lambda row: sign * float(row[monitor]))


def callbacks(cfg: TrainConfig, run: Path, before_backup: list[keras.callbacks.Callback] | None = None) -> list[keras.callbacks.Callback]:
    """The run's callbacks. The time is recorded first and ``before_backup`` (the quality check) runs
    before the epoch's backup, so a run killed while it scores repeats that epoch rather than skip
    the score."""
    watch = {"monitor": cfg.monitor, "mode": monitor_mode(cfg.monitor)}
    budget = cfg.time_budget_minutes * 60 if cfg.time_budget_minutes else None
    cosine = cfg.lr_schedule == "cosine-time" and budget is not None
    schedule: list[keras.callbacks.Callback] = [] if cosine or cfg.lr_schedule == "cosine-steps" else [
        keras.callbacks.ReduceLROnPlateau(**watch, factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr)
    ]
    # SwapEMAWeights sits after the backup (which must hold the raw weights to resume from) and before
    # the checkpoint and early stopping, so that validation and the best checkpoint see the averaged weights
    ema: list[keras.callbacks.Callback] = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if cfg.ema_momentum is not None else []
    return [
        TimeBudget(budget, run / "time.json", base_lr=cfg.learning_rate if cosine else None),
        *(before_backup or []),
        keras.callbacks.BackupAndRestore(str(run / "backup"), delete_checkpoint=False),
        *ema,
        keras.callbacks.ModelCheckpoint(str(run / "best.weights.h5"), **watch, save_best_only=True, save_weights_only=True,
                                        initial_value_threshold=previous_best(run, cfg.monitor)),
        keras.callbacks.EarlyStopping(**watch, patience=cfg.patience, restore_best_weights=True),
        *schedule,
        StepLog(),
        keras.callbacks.CSVLogger(str(run / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(run / "tensorboard"), profile_batch=0),
    ]


def resolve_spec(preset: Preset, data: Dataset) -> SignalSpec:
    """The preset's signal contract with min-max statistics of the training split."""
    lo, hi = training_stats(data, preset.signal)
    return preset.signal.with_stats(lo, hi)


def build_network(preset: Preset, spec: SignalSpec, width: float, model_options: dict[str, Any], precision: str = "float32") -> keras.Model:
    """The preset's untrained network under the Keras dtype policy ``precision`` (the
    reference recipe also takes its width)."""
    options = {"width": width, **model_options} if preset.objective == "features_mse" else model_options
    keras.mixed_precision.set_global_policy(precision)
    try:
        return preset.build(spec, options)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def train_seed(cfg: TrainConfig, preset: Preset, spec: SignalSpec, data: Dataset, run: Path, verbose: int) -> tuple[keras.Model, dict[str, Any]]:
    """The reference recipe: MSE between predicted and clean normalised dB spectrograms."""
    arrays = {name: data.split(name) for name in ("train", "val", "test")}
    x = {name: seed_arrays(a.noisy, spec) for name, a in arrays.items()}
    y = {name: seed_arrays(a.clean, spec) for name, a in arrays.items()}
    net = build_network(preset, spec, cfg.width, cfg.model_options)
    net.compile(optimizer=adam(cfg.learning_rate, ema_momentum=cfg.ema_momentum), loss="mse", metrics=[keras.metrics.MeanSquaredError(name="mse")])
    history = net.fit(
        x["train"], y["train"], batch_size=cfg.batch_size, epochs=cfg.epochs, validation_data=(x["val"], y["val"]),
        callbacks=callbacks(cfg, run), verbose=verbose, shuffle=True,
    )
    if (run / "best.weights.h5").exists():
        net.load_weights(str(run / "best.weights.h5"))
    before = seed_mse_by_split(net, x, y, cfg.batch_size)
    layers = reestimate_batchnorm(net, x["train"], cfg.batch_size)  # the moving averages trail the weights
    results = seed_mse_by_split(net, x, y, cfg.batch_size)
    print("seed MSE on normalised spectrograms  train {train_mse:.4f}  val {val_mse:.4f}  test {test_mse:.4f}".format(**results)
          + "  (before BatchNorm re-estimation: train {train_mse:.4f}  val {val_mse:.4f}  test {test_mse:.4f})".format(**before), flush=True)
    return net, {"metrics": results, "metrics_before_batchnorm": before, "batchnorm_reestimated": layers, "epochs_run": len(history.epoch)}


def seed_mse_by_split(net: keras.Model, x: dict[str, np.ndarray], y: dict[str, np.ndarray], batch_size: int) -> dict[str, float]:
    """The reference recipe's metric, MSE on normalised spectrograms, of a compiled seed network per split."""
    results = {}
    for name in ("train", "val", "test"):
        out = net.evaluate(x[name], y[name], batch_size=batch_size, verbose=0, return_dict=True)
        results[f"{name}_mse"] = float(out["mse"])
    return results


def adam(learning_rate: float, ema_momentum: float | None = None, **kwargs: Any) -> keras.optimizers.Adam:
    """Adam, keeping an exponential moving average of the weights when ``ema_momentum`` is given."""
    if ema_momentum is None:
        return keras.optimizers.Adam(learning_rate, **kwargs)
    return keras.optimizers.Adam(learning_rate, use_ema=True, ema_momentum=ema_momentum, **kwargs)


def compile_signal_model(model: keras.Model, learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
                         mag_loss_weight: float, ema_momentum: float | None = None, jit_compile: bool = False,
                         wave_loss_kind: str = "si_sdr", spectral_weight: float = 100.0, overshoot: float = 1.0,
                         perceptual_weight: float = 0.0) -> None:
    """The signal objective: a waveform loss (``wave_loss``) plus weighted compressed-magnitude MSE."""
    model.compile(
        optimizer=adam(learning_rate, ema_momentum=ema_momentum, clipnorm=5.0),
        loss={"wave": wave_loss(wave_loss_kind, spectral_weight, overshoot, perceptual_weight), "mag": mag_loss(overshoot)},
        loss_weights={"wave": 1.0, "mag": mag_loss_weight},
        metrics={"wave": [si_sdr_db]},
        jit_compile=jit_compile,
    )


def train_signal(cfg: TrainConfig, preset: Preset, spec: SignalSpec, data: Dataset, run: Path, verbose: int) -> tuple[keras.Model, dict[str, Any]]:
    """Mask network trained on fresh mixtures with negative SI-SDR + compressed-magnitude MSE."""
    train = data.split("train")
    mixer = OnTheFlyMixer(train, data.noise("train"), spec, cfg.batch_size, cfg.seed, MixerConfig.from_options(cfg.crop_seconds, cfg.mixer_options),
                          noise_sources=data.noise_sources("train"))
    f, t = spec.n_freq, None
    signature = (
        {"features": tf.TensorSpec((None, f, t, spec.input_channels), tf.float32), "real": tf.TensorSpec((None, f, t), tf.float32), "imag": tf.TensorSpec((None, f, t), tf.float32)},
        {"wave": tf.TensorSpec((None, None), tf.float32), "mag": tf.TensorSpec((None, f, t, 1), tf.float32)},
    )
    stream = tf.data.Dataset.from_generator(lambda: iter(mixer), output_signature=signature).prefetch(4)
    val_x, val_y = fixed_signal_set(data.split("val"), spec, limit=cfg.val_limit)
    net = build_network(preset, spec, cfg.width, cfg.model_options, cfg.precision)
    if cfg.init_weights:
        converted = start_from(net, cfg.init_weights)
        if converted:
            print(f"context blocks started from the source's full ones: {', '.join(converted)}", flush=True)
    model = signal_training_model(net, spec)
    if cfg.critic_weight:
        model = MetricGANModel(model, cfg.critic_weight, cfg.critic_warmup_steps, sample_rate=spec.sample_rate)
    if cfg.teacher:
        follow = wave_loss(cfg.wave_loss, cfg.spectral_weight, cfg.overshoot, cfg.perceptual_weight)
        model = DistillationModel(model, load_teacher(cfg.teacher, spec), cfg.teacher_weight, follow)
    compile_signal_model(model, learning_rate_schedule(cfg), cfg.mag_loss_weight, cfg.ema_momentum,
                         wave_loss_kind=cfg.wave_loss, spectral_weight=cfg.spectral_weight,
                         overshoot=cfg.overshoot, perceptual_weight=cfg.perceptual_weight)
    # a mixed-precision network's float32 twin: what scoring, model.keras and the export run
    float_net = build_network(preset, spec, cfg.width, cfg.model_options) if cfg.precision != "float32" else None
    quality = [QualityCheck(net, spec, data.split("val"), run, cfg.quality_every, cfg.steps_per_epoch or 100, float_net)] if cfg.quality_every else []
    history = model.fit(
        stream, steps_per_epoch=cfg.steps_per_epoch or 100, epochs=cfg.epochs, validation_data=(val_x, val_y),
        validation_batch_size=cfg.batch_size, callbacks=callbacks(cfg, run, before_backup=quality), verbose=verbose,
    )
    if (run / QUALITY_WEIGHTS).exists():
        net.load_weights(str(run / QUALITY_WEIGHTS))
    elif (run / "best.weights.h5").exists():
        model.load_weights(str(run / "best.weights.h5"))
    results = {}
    for name, arrays in (("val", data.split("val")), ("test", data.split("test"))):
        xs, ys = fixed_signal_set(arrays, spec, limit=None)
        out = model.evaluate(xs, ys, batch_size=cfg.batch_size, verbose=0, return_dict=True)
        results[f"{name}_si_sdr_db"] = float(out.get("wave_si_sdr_db", np.nan))
        results[f"{name}_loss"] = float(out["loss"])
    print("SI-SDR of the training graph  val {val_si_sdr_db:.2f} dB  test {test_si_sdr_db:.2f} dB".format(**results), flush=True)
    if float_net is not None:
        float_net.set_weights(net.get_weights())
        net = float_net
    return net, {"metrics": results, "epochs_run": len(history.epoch)}


def recorded_command(argv: list[str]) -> str:
    """The training command as a shell would need it typed (JSON options quoted)."""
    return "python -m training.train " + shlex.join(argv)


def finished_without_resume_state(run: Path) -> bool:
    """Whether ``run`` holds a finished run's ``result.json`` but no backup: a run kept once it
    ended (``make keep-run`` after its backup was dropped), which a rerun would otherwise train
    again from its start."""
    return (run / "result.json").is_file() and not (run / "backup").is_dir()


def run_training(cfg: TrainConfig, verbose: int = 1) -> dict[str, Any]:
    """Train (or resume) a run; writes config.json, model.keras and result.json to ``cfg.out``."""
    if cfg.threads:
        tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
    keras.utils.set_random_seed(cfg.seed)
    run = Path(cfg.out)
    if finished_without_resume_state(run):
        print(f"{run} is finished (result.json, and no backup to go on from): nothing to train; "
              "delete its result.json to train it again", flush=True)
        return json.loads((run / "result.json").read_text())
    preset = get_preset(cfg.preset)
    cfg = replace(cfg, model_options=preset.options(cfg.model_options))
    run.mkdir(parents=True, exist_ok=True)
    data = Dataset.open(cfg.data)
    spec = replace(resolve_spec(preset, data), lookahead_frames=preset.output_lookahead(cfg.model_options))
    config = {
        "train": asdict(cfg), "preset": preset.name, "signal": spec.to_dict(), "learning_rate": cfg.learning_rate,
        "data_summary": data.summary, "dataset_build_seconds": data.stats.get("build_seconds"), "training_commit": git_commit(), "command": recorded_command(sys.argv[1:]),
    }
    (run / "config.json").write_text(json.dumps(config, indent=2, default=str))
    started = time.monotonic()
    trainer = train_seed if preset.objective == "features_mse" else train_signal
    net, outcome = trainer(cfg, preset, spec, data, run, verbose)
    net.save(str(run / "model.keras"))
    spent = json.loads((run / "time.json").read_text())["seconds"] if (run / "time.json").exists() else time.monotonic() - started
    result = {**outcome, "train_seconds": spent, "parameters": int(net.count_params())}
    (run / "result.json").write_text(json.dumps(result, indent=2))
    print(f"run saved to {run} ({spent / 60:.1f} min of training, {result['parameters']} parameters)", flush=True)
    return result


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("--data", required=True, help="dataset directory from `python -m training.data build`")
    p.add_argument("--preset", required=True, choices=list(PRESETS))
    p.add_argument("--out", required=True, help="run directory (re-run to resume)")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size,
                   help=f"default: {TrainConfig.batch_size} (seed), {get_preset('default').defaults['batch_size']} (default preset)")
    p.add_argument("--lr", type=float, default=None, help="default: 0.01*batch/256 (seed), preset value otherwise")
    p.add_argument("--patience", type=int, default=20, help="early-stopping patience (epochs)")
    p.add_argument("--lr-patience", type=int, default=3)
    p.add_argument("--lr-factor", type=float, default=0.5)
    p.add_argument("--min-lr", type=float, default=1e-7)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=float, default=1.0, help="seed preset: filter-count multiplier")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="default preset: fresh batches per epoch")
    p.add_argument("--val-limit", type=int, default=150, help="default preset: validation mixtures per epoch")
    p.add_argument("--time-budget-minutes", type=float, default=None, help="stop after this much training time (across resumes)")
    p.add_argument("--mag-loss-weight", type=float, default=TrainConfig.mag_loss_weight,
                   help="weight of the compressed-magnitude MSE next to negative SI-SDR (default preset: its own value)")
    p.add_argument("--crop-seconds", type=float, default=TrainConfig.crop_seconds,
                   help="seconds of speech per training example (default preset: its own value)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="plateau",
                   help="plateau: ReduceLROnPlateau (reference); cosine-time: cosine decay over --time-budget-minutes "
                        "(default preset); cosine-steps: cosine decay over epochs x steps-per-epoch (band presets)")
    p.add_argument("--warmup-steps", type=int, default=TrainConfig.warmup_steps, help="cosine-steps: linear warm-up steps")
    p.add_argument("--wave-loss", choices=WAVE_LOSSES, default=TrainConfig.wave_loss,
                   help="si_sdr: negative SI-SDR; si_sdr+spectral: plus the multi-resolution compressed spectral loss")
    p.add_argument("--spectral-weight", type=float, default=TrainConfig.spectral_weight, help="weight of the spectral loss")
    p.add_argument("--perceptual-weight", type=float, default=TrainConfig.perceptual_weight,
                   help="weight of the PESQ-style disturbance added to the waveform loss (0: none)")
    p.add_argument("--critic-weight", type=float, default=TrainConfig.critic_weight,
                   help="signal presets: weight of a learned PESQ critic's term, the critic trained beside the network "
                        "on each step's real PESQ (training.metric_gan; 0: none)")
    p.add_argument("--critic-warmup-steps", type=int, default=TrainConfig.critic_warmup_steps,
                   help="steps the critic trains before its term reaches the network")
    p.add_argument("--teacher", nargs="+", default=None,
                   help="signal presets: trained runs' *.weights.h5 (each with its config.json beside it) whose "
                        "networks the student follows: the waveform loss against their mean output is added to the "
                        "one against the clean speech (training.distill); the signal contracts must agree")
    p.add_argument("--teacher-weight", type=float, default=TrainConfig.teacher_weight,
                   help="weight of the waveform loss against the teacher's output")
    p.add_argument("--init-weights", default=None,
                   help="signal presets: start a new run from these network weights (e.g. another run's "
                        "best-quality.weights.h5: the same network, or one whose context blocks are full where "
                        "this one's are separable, see training.warm_start); a resumed run ignores them")
    p.add_argument("--overshoot", type=float, default=TrainConfig.overshoot,
                   help="weight of residual noise (estimate above the clean magnitude) in every magnitude loss term")
    p.add_argument("--quality-every", type=int, default=TrainConfig.quality_every,
                   help="score the whole validation split (SI-SDR, PESQ-WB, STOI, DNSMOS) every N epochs and keep "
                        "the checkpoint with the best quality score (0: never)")
    p.add_argument("--ema-momentum", type=float, default=None,
                   help="keep a moving average of the weights (e.g. 0.999 per step); validation, the best checkpoint "
                        "and the exported model use it")
    p.add_argument("--monitor", choices=MONITORS, default=TrainConfig.monitor,
                   help="validation figure for the best checkpoint and early stopping (default preset: val_wave_si_sdr_db, "
                        "the waveform SI-SDR; the loss also carries the magnitude term)")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: one per core)")
    p.add_argument("--precision", choices=PRECISIONS, default=TrainConfig.precision,
                   help="the network's dtype policy while it trains (mixed_bfloat16: bfloat16 maths, float32 weights; "
                        "fast on CPUs with AMX or AVX-512 BF16); loss, scoring and export stay float32")
    p.add_argument("--model-options", type=json.loads, default={}, help='JSON over the preset\'s own options, key by key, e.g. \'{"bottleneck": 128}\'')
    p.add_argument("--mixer-options", type=json.loads, default={},
                   help='default preset: JSON overriding training.datasets.MixerConfig, e.g. \'{"snr_high": 12.5}\'')
    args = p.parse_args(argv)
    preset = get_preset(args.preset)
    values = dict(vars(args))
    for key, value in preset.defaults.items():
        if not _given(key, argv):  # an option on the command line wins, even at the parser's default value
            values[key] = value
    if preset.objective == "features_mse" and values["monitor"] != "val_loss":
        p.error(f"--monitor {values['monitor']}: the {preset.name} preset scores spectrograms, not waveforms; use val_loss")
    if values["init_weights"] and not Path(values["init_weights"]).is_file():
        p.error(f"--init-weights {values['init_weights']}: no such file")
    if preset.objective == "features_mse" and values["init_weights"]:
        p.error(f"--init-weights: the {preset.name} preset starts from its own initialisation only")
    if preset.objective == "features_mse" and values["critic_weight"]:
        p.error(f"--critic-weight: the {preset.name} preset scores spectrograms, not waveforms")
    if values["teacher"] and preset.objective == "features_mse":
        p.error(f"--teacher: the {preset.name} preset scores spectrograms, not waveforms")
    for teacher in values["teacher"] or []:
        if not Path(teacher).is_file():
            p.error(f"--teacher {teacher}: no such file")
    if values["teacher"] and values["critic_weight"]:
        p.error("--teacher and --critic-weight: one extra training term at a time")
    if values["teacher_weight"] <= 0:
        p.error("--teacher-weight must be > 0")
    if values["critic_weight"] < 0 or values["critic_warmup_steps"] < 0:
        p.error("--critic-weight and --critic-warmup-steps must be >= 0")
    if preset.objective == "features_mse" and values["precision"] != "float32":
        p.error(f"--precision {values['precision']}: the {preset.name} preset trains in float32 only")
    return TrainConfig(**values)


def _given(key: str, argv: list[str] | None) -> bool:
    """Whether ``--key`` was on the command line."""
    flag = "--" + key.replace("_", "-")
    return any(a == flag or a.startswith(flag + "=") for a in (sys.argv[1:] if argv is None else argv))


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        run_training(cfg, verbose=1 if sys.stdout.isatty() else 2)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
