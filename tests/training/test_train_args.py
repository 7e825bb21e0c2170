"""Command-line options of the trainer: preset defaults fill in, explicit options win."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.presets import get_preset
from training.train import TrainConfig, callbacks, parse_args

BASE = ["--data", "d", "--out", "o"]


def test_preset_defaults_apply_when_an_option_is_not_given() -> None:
    cfg = parse_args([*BASE, "--preset", "default"])
    for key, value in get_preset("default").defaults.items():
        assert getattr(cfg, key) == value


@pytest.mark.parametrize("argv, key, value", [
    (["--lr-schedule", "plateau"], "lr_schedule", "plateau"),  # equal to the parser's default, still explicit
    (["--lr-schedule=plateau"], "lr_schedule", "plateau"),
    (["--lr", "0.0005"], "lr", 0.0005),
    (["--steps-per-epoch", "7"], "steps_per_epoch", 7),
    (["--batch-size", "16"], "batch_size", 16),
    (["--monitor", "val_loss"], "monitor", "val_loss"),
])
def test_explicit_options_override_the_preset(argv: list[str], key: str, value: object) -> None:
    assert key in get_preset("default").defaults
    assert getattr(parse_args([*BASE, "--preset", "default", *argv]), key) == value


def test_seed_keeps_the_reference_recipe() -> None:
    cfg = parse_args([*BASE, "--preset", "seed"])
    assert cfg.batch_size == 16 and cfg.lr is None and cfg.learning_rate == pytest.approx(0.01 * 16 / 256)
    assert cfg.lr_schedule == "plateau" and cfg.mag_loss_weight == TrainConfig.mag_loss_weight
    assert cfg.monitor == "val_loss"


def test_checkpoint_and_early_stopping_follow_the_monitor_in_its_direction(tmp_path: Path) -> None:
    cfg = parse_args(["--data", "d", "--out", str(tmp_path), "--preset", "default", "--time-budget-minutes", "1"])
    watched = {type(c).__name__: (c.monitor, c.mode) for c in callbacks(cfg, tmp_path) if hasattr(c, "mode")}
    assert watched == {"ModelCheckpoint": ("val_wave_si_sdr_db", "max"), "EarlyStopping": ("val_wave_si_sdr_db", "max")}
    seed = parse_args(["--data", "d", "--out", str(tmp_path), "--preset", "seed"])
    watched = {type(c).__name__: (c.monitor, c.mode) for c in callbacks(seed, tmp_path) if hasattr(c, "mode")}
    assert watched == {"ModelCheckpoint": ("val_loss", "min"), "EarlyStopping": ("val_loss", "min"), "ReduceLROnPlateau": ("val_loss", "min")}


def test_seed_refuses_a_waveform_monitor(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args([*BASE, "--preset", "seed", "--monitor", "val_wave_si_sdr_db"])
    assert "scores spectrograms" in capsys.readouterr().err


def test_abbreviated_options_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args([*BASE, "--preset", "default", "--lr-sched", "plateau"])
