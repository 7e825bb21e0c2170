"""Command-line options of the trainer: preset defaults fill in, explicit options win."""

from __future__ import annotations

import pytest

from training.presets import get_preset
from training.train import TrainConfig, parse_args

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
])
def test_explicit_options_override_the_preset(argv: list[str], key: str, value: object) -> None:
    assert key in get_preset("default").defaults
    assert getattr(parse_args([*BASE, "--preset", "default", *argv]), key) == value


def test_seed_keeps_the_reference_recipe() -> None:
    cfg = parse_args([*BASE, "--preset", "seed"])
    assert cfg.batch_size == 16 and cfg.lr is None and cfg.learning_rate == pytest.approx(0.01 * 16 / 256)
    assert cfg.lr_schedule == "plateau" and cfg.mag_loss_weight == TrainConfig.mag_loss_weight


def test_abbreviated_options_are_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args([*BASE, "--preset", "default", "--lr-sched", "plateau"])
