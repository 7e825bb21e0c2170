"""Checkpoint choice by what listeners and the product's bar care about.

Every few epochs :class:`QualityCheck` enhances the whole validation split through the
shared signal contract, scores SI-SDR, PESQ-WB, STOI and DNSMOS OVRL, appends the means
to ``quality.csv`` in the run directory, keeps the weights of every scored step in
``quality-<step>.weights.h5`` and those with the best :func:`quality_score` in
``best-quality.weights.h5``.

The score is fixed before the runs it decides: the mean, over the four figures, of each
figure divided by its target on the project's own test split (the model issue's bar:
13.5 dB, 2.30, 0.87, 2.95), so a gain of one tenth of a target counts the same on any
of them.
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np

from denoise_core.signal import SignalSpec, enhance_wave
from training.datasets import SplitArrays
from training.evaluation.dnsmos import dnsmos
from training.evaluation.metrics import pesq_wb, si_sdr, stoi
from training.evaluation.ship_rule import TARGETS, quality_score

QUALITY_WEIGHTS = "best-quality.weights.h5"
QUALITY_LOG = "quality.csv"
STEP_WEIGHTS = re.compile(r"quality-(\d+)\.weights\.h5")
#: one noisy waveform to its estimate, at the model's rate
Enhance = Callable[[np.ndarray], np.ndarray]
COLUMNS = ("epoch", "step", "train_hours", *TARGETS, "score", "seconds")


def step_weights(step: int) -> str:
    """The weights file that keeps the checkpoint scored at ``step``."""
    return f"quality-{step}.weights.h5"


def network_enhancer(net: keras.Model, spec: SignalSpec) -> Enhance:
    """``net`` as a function from one noisy waveform to its estimate, through the signal contract."""

    def predict(batch: np.ndarray) -> np.ndarray:
        return np.asarray(net(batch, training=False))

    return lambda noisy: enhance_wave(noisy, spec, predict)


def score_split(net: keras.Model, spec: SignalSpec, arrays: SplitArrays) -> dict[str, float]:
    """Mean SI-SDR, PESQ-WB, STOI and DNSMOS OVRL of ``net`` on every mixture of a split."""
    return score_enhancer(network_enhancer(net, spec), arrays)


#: each figure of :data:`TARGETS` from (clean reference, estimate)
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "si_sdr": si_sdr, "pesq": pesq_wb, "stoi": stoi, "dnsmos_ovrl": lambda _, estimate: dnsmos(estimate)["dnsmos_ovrl"]}


def score_enhancer(enhance: Enhance, arrays: SplitArrays, figures: tuple[str, ...] = TARGETS) -> dict[str, float]:
    """Mean of each of ``figures`` (by default SI-SDR, PESQ-WB, STOI and DNSMOS OVRL) of
    ``enhance``'s estimates on every mixture of a split. A figure that cannot be computed on a
    mixture (NaN) is left out of its mean."""
    rows: list[dict[str, float]] = []
    for noisy, clean, length in zip(arrays.noisy, arrays.clean, arrays.lengths):
        estimate = enhance(noisy[:length])
        rows.append({k: METRICS[k](clean[:length], estimate) for k in figures})
    return {k: float(np.nanmean([r[k] for r in rows])) for k in figures}


def read_log(run: Path) -> list[dict[str, str]]:
    """Rows of ``quality.csv``, the last one kept for an epoch scored twice (a resumed run)."""
    path = run / QUALITY_LOG
    if not path.exists():
        return []
    with path.open() as fh:
        by_epoch = {row["epoch"]: row for row in csv.DictReader(fh)}
    return sorted(by_epoch.values(), key=lambda row: int(row["epoch"]))


class QualityCheck(keras.callbacks.Callback):
    """Score the validation split every ``every`` epochs; keep each scored checkpoint and the best by quality score.

    ``scorer``, a float32 twin of a mixed-precision ``net``, scores the trained weights as the
    exported model will run them."""

    def __init__(self, net: keras.Model, spec: SignalSpec, arrays: SplitArrays, run: Path, every: int, steps_per_epoch: int,
                 scorer: keras.Model | None = None) -> None:
        super().__init__()
        self.net, self.spec, self.arrays, self.run, self.scorer = net, spec, arrays, run, scorer
        self.every, self.steps_per_epoch = every, steps_per_epoch
        scores = [float(r["score"]) for r in read_log(run) if r.get("score") and math.isfinite(float(r["score"]))]
        self.best = max(scores) if scores and (run / QUALITY_WEIGHTS).exists() else -math.inf

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (epoch + 1) % self.every:
            return
        started = time.monotonic()
        if self.scorer is not None:
            self.scorer.set_weights(self.net.get_weights())
        figures = score_split(self.scorer or self.net, self.spec, self.arrays)
        score = quality_score(figures)
        time_file = self.run / "time.json"
        hours = json.loads(time_file.read_text())["seconds"] / 3600 if time_file.exists() else float("nan")
        row = {"epoch": epoch + 1, "step": (epoch + 1) * self.steps_per_epoch, "train_hours": round(hours, 4),
               **{k: round(v, 4) for k, v in figures.items()}, "score": round(score, 5), "seconds": round(time.monotonic() - started, 1)}
        path = self.run / QUALITY_LOG
        new = not path.exists()
        with path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.net.save_weights(str(self.run / step_weights(row["step"])))
        improved = math.isfinite(score) and score > self.best
        if improved:
            self.best = score
            self.net.save_weights(str(self.run / QUALITY_WEIGHTS))
        print(f"\nquality at epoch {epoch + 1}: " + "  ".join(f"{k} {v:.3f}" for k, v in figures.items())
              + f"  score {score:.4f}{'  (best, saved)' if improved else ''}  [{row['seconds']} s]", flush=True)
