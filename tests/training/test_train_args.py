"""Command-line options of the trainer: preset defaults fill in, explicit options win."""

from __future__ import annotations

import shlex
from pathlib import Path

import keras
import pytest

from training.presets import get_preset
from training.train import TrainConfig, callbacks, parse_args, recorded_command

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


def test_a_resumed_run_keeps_its_best_checkpoint_unless_an_epoch_beats_it(tmp_path: Path) -> None:
    cfg = parse_args(["--data", "d", "--out", str(tmp_path), "--preset", "default", "--time-budget-minutes", "1"])

    def checkpoint() -> keras.callbacks.ModelCheckpoint:
        return next(c for c in callbacks(cfg, tmp_path) if isinstance(c, keras.callbacks.ModelCheckpoint))

    assert checkpoint().best is None  # a fresh run keeps its first epoch
    (tmp_path / "history.csv").write_text("epoch,val_loss,val_wave_si_sdr_db\n0,-8.0,9.5\n1,-9.0,10.25\n2,-8.5,10.0\n")
    assert checkpoint().best is None  # no checkpoint to protect yet
    (tmp_path / "best.weights.h5").write_bytes(b"")
    resumed = checkpoint()
    assert resumed.best == 10.25
    resumed.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    resumed.on_epoch_end(3, {"val_loss": -9.5, "val_wave_si_sdr_db": 10.0})
    assert (tmp_path / "best.weights.h5").stat().st_size == 0  # a worse epoch leaves the checkpoint alone
    resumed.on_epoch_end(4, {"val_loss": -9.5, "val_wave_si_sdr_db": 10.5})
    assert (tmp_path / "best.weights.h5").stat().st_size > 0


def test_the_recorded_command_splits_back_into_its_arguments() -> None:
    argv = [*BASE, "--preset", "default", "--mixer-options", '{"speech_speed_prob": 0.5, "speaker_balance": 0.5}']
    command = recorded_command(argv)
    assert shlex.split(command) == ["python", "-m", "training.train", *argv]


def test_threads_reach_tensorflow_before_training(tmp_path: Path) -> None:
    """``--threads`` sets TensorFlow's intra-op pool (in a fresh process: it is fixed once TF starts)."""
    import subprocess
    import sys

    script = (
        "import tensorflow as tf, training.train as t\n"
        "cfg = t.parse_args(['--data', 'missing', '--out', %r, '--preset', 'band', '--threads', '1'])\n"
        "try:\n    t.run_training(cfg)\nexcept FileNotFoundError:\n    pass\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads())\n" % str(tmp_path / "run")
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.split()[-1] == "1"
    assert parse_args([*BASE, "--preset", "band"]).threads is None


def test_the_offline_preset_trains_band_ctx_wider_unbounded_with_the_previous_loss() -> None:
    cfg = parse_args([*BASE, "--preset", "band-offline"])
    ctx = parse_args([*BASE, "--preset", "band-ctx"])
    assert (cfg.wave_loss, cfg.mag_loss_weight) == ("si_sdr", 1500.0)
    assert (cfg.steps_per_epoch, cfg.epochs, cfg.lr_schedule) == (ctx.steps_per_epoch, ctx.epochs, ctx.lr_schedule)
    preset = get_preset("band-offline")
    assert preset.options({}) == {**get_preset("band-ctx").options({}), "context": [1, 2, 4], "bottleneck": 256, "lookahead": None}
    assert preset.lookahead(preset.options({})) > get_preset("band-ctx").lookahead(get_preset("band-ctx").options({}))


def test_the_overshoot_weight_is_recorded_and_defaults_to_the_plain_losses() -> None:
    assert parse_args([*BASE, "--preset", "band-ctx"]).overshoot == 1.0
    assert parse_args([*BASE, "--preset", "band-ctx", "--overshoot", "3"]).overshoot == 3.0


def test_the_perceptual_preset_is_the_deep_filter_preset_with_the_term() -> None:
    pesq = parse_args([*BASE, "--preset", "band-offline-df-pesq"])
    df = parse_args([*BASE, "--preset", "band-offline-df"])
    assert (pesq.perceptual_weight, df.perceptual_weight) == (20.0, 0.0)
    assert {**vars(pesq), "preset": "band-offline-df", "perceptual_weight": 0.0} == vars(df)
    assert get_preset("band-offline-df-pesq").signal == get_preset("band-offline-df").signal
    assert get_preset("band-offline-df-pesq").options({}) == get_preset("band-offline-df").options({})


def test_the_separable_preset_is_the_perceptual_preset_with_separable_context_blocks() -> None:
    sep = parse_args([*BASE, "--preset", "band-offline-df-sep-pesq"])
    assert {**vars(sep), "preset": "band-offline-df-pesq"} == vars(parse_args([*BASE, "--preset", "band-offline-df-pesq"]))
    assert get_preset("band-offline-df-sep-pesq").signal == get_preset("band-offline-df-pesq").signal
    assert get_preset("band-offline-df-sep-pesq").options({}) == {**get_preset("band-offline-df-pesq").options({}), "context_separable": True}


@pytest.mark.parametrize("argv,message", [
    (["--preset", "seed", "--monitor", "val_loss", "--critic-weight", "5"], "--critic-weight: the seed preset"),
    (["--preset", "band", "--critic-weight", "-1"], "must be >= 0"),
    (["--preset", "band", "--critic-warmup-steps", "-5"], "must be >= 0"),
])
def test_a_critic_is_refused_where_it_cannot_train(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args([*BASE, *argv])
    assert message in capsys.readouterr().err


def test_the_critic_options_are_recorded_and_off_by_default() -> None:
    assert parse_args([*BASE, "--preset", "band"]).critic_weight == 0.0
    cfg = parse_args([*BASE, "--preset", "band", "--critic-weight", "50", "--critic-warmup-steps", "500"])
    assert (cfg.critic_weight, cfg.critic_warmup_steps) == (50.0, 500)


@pytest.mark.parametrize("argv,message", [
    (["--preset", "seed", "--monitor", "val_loss", "--teacher", __file__], "--teacher: the seed preset"),
    (["--preset", "band", "--teacher", "no/such.weights.h5"], "no such file"),
    (["--preset", "band", "--teacher", __file__, "--critic-weight", "5"], "one extra training term at a time"),
    (["--preset", "band", "--teacher-weight", "0"], "must be > 0"),
])
def test_a_teacher_is_refused_where_it_cannot_teach(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args([*BASE, *argv])
    assert message in capsys.readouterr().err


def test_the_teacher_options_are_recorded_and_off_by_default() -> None:
    cfg = parse_args([*BASE, "--preset", "band"])
    assert cfg.teacher is None and cfg.teacher_weight == 1.0
    cfg = parse_args([*BASE, "--preset", "band", "--teacher", __file__, "--teacher-weight", "0.5"])
    assert (cfg.teacher, cfg.teacher_weight) == ([__file__], 0.5)
    cfg = parse_args([*BASE, "--preset", "band", "--teacher", __file__, __file__, "--teacher-weight", "3"])
    assert (cfg.teacher, cfg.teacher_weight) == ([__file__, __file__], 3.0)


def test_a_run_kept_finished_without_resume_state_is_not_trained_again(tmp_path: Path) -> None:
    from training.train import run_training

    run = tmp_path / "arm"
    run.mkdir()
    (run / "result.json").write_text('{"epochs_run": 6}')
    for name in ("config.json", "history.csv"):
        (run / name).write_text(f"kept {name}")
    cfg = parse_args(["--data", str(tmp_path / "no-dataset"), "--preset", "band", "--out", str(run)])
    assert run_training(cfg) == {"epochs_run": 6}
    assert [(run / n).read_text() for n in ("config.json", "history.csv")] == ["kept config.json", "kept history.csv"]
    # with a backup to go on from, the same command trains (here: it looks for the dataset)
    (run / "backup").mkdir()
    with pytest.raises(FileNotFoundError):
        run_training(cfg)
