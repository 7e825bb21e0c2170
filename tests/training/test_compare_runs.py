"""The training report is built from run records, and survives the run directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from training.compare_runs import main


def fake_run(root: Path, name: str, val_losses: list[float], mixer: dict[str, float], ema: float | None = None,
             si_sdrs: list[float] | None = None, monitor: str | None = None) -> Path:
    run = root / name
    run.mkdir(parents=True)
    config = {"preset": "default", "training_commit": "abcdef0123-dirty", "learning_rate": 0.001,
              "train": {"steps_per_epoch": 100, "batch_size": 16, "crop_seconds": 2.0, "seed": 3, "model_options": {"skip": "add"}, "mixer_options": mixer,
                        "mag_loss_weight": 500.0, "ema_momentum": ema, **({"monitor": monitor} if monitor else {})}}
    (run / "config.json").write_text(json.dumps(config))
    si_sdrs = si_sdrs or [-v for v in val_losses]
    rows = ["epoch,loss,val_loss,val_wave_si_sdr_db"] + [f"{i},0,{v},{d}" for i, (v, d) in enumerate(zip(val_losses, si_sdrs))]
    (run / "history.csv").write_text("\n".join(rows) + "\n")
    (run / "time.json").write_text(json.dumps({"seconds": 600.0, "epoch": len(val_losses)}))
    (run / "result.json").write_text(json.dumps({"parameters": 1234, "metrics": {"val_si_sdr_db": 9.5, "test_si_sdr_db": 8.25}}))
    (run / "model.keras").write_bytes(b"large file that is not archived")
    return run


def test_report_archives_records_and_regenerates_without_runs(tmp_path: Path) -> None:
    a = fake_run(tmp_path / "build", "a", [-5.0, -9.0, -8.0], {"eq_prob": 0.5}, ema=0.999)
    b = fake_run(tmp_path / "build", "b", [-4.0], {})
    archive, out = tmp_path / "docs" / "runs", tmp_path / "report.md"
    assert main(["--archive", str(archive), str(a), str(b), "--out", str(out)]) == 0
    first = out.read_text()
    line_a = next(line for line in first.splitlines() if line.startswith("| a |"))
    cells = [c.strip() for c in line_a.strip("|").split("|")]
    assert cells[2] == "abcdef0-dirty" and cells[4] == '`{"eq_prob":0.5}`' and cells[5] == "500"
    # epochs, lr, batch, crop seconds, EMA, seed, steps, monitor, best epoch, val loss, val SI-SDR, val MSE, full val and test SI-SDR
    assert cells[8:] == ["3", "0.001", "16", "2", "0.999", "3", "300", "val_loss", "2", "-9.0000", "9.00", "-", "9.50", "8.25"]
    assert sorted(p.name for p in (archive / "a").iterdir()) == ["config.json", "history.csv", "result.json", "time.json"]  # no quality.csv: none written
    line_b = next(line for line in first.splitlines() if line.startswith("| b |"))
    assert [c.strip() for c in line_b.strip("|").split("|")][12] == "-"  # no weight average
    shutil.rmtree(tmp_path / "build")
    assert main(["--archive", str(archive), "--out", str(out)]) == 0
    assert [line for line in out.read_text().splitlines() if line.startswith("| ")] == \
        [line for line in first.splitlines() if line.startswith("| ")]


def test_best_epoch_follows_the_run_monitor(tmp_path: Path) -> None:
    # epoch 2 has the lowest loss, epoch 3 the highest SI-SDR
    losses, si_sdrs = [-5.0, -9.0, -8.0], [5.0, 8.5, 8.75]
    by_loss = fake_run(tmp_path, "by-loss", losses, {}, si_sdrs=si_sdrs)
    by_si_sdr = fake_run(tmp_path, "by-si-sdr", losses, {}, si_sdrs=si_sdrs, monitor="val_wave_si_sdr_db")
    out = tmp_path / "report.md"
    assert main([str(by_loss), str(by_si_sdr), "--out", str(out)]) == 0
    cells = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
             for line in out.read_text().splitlines() if line.startswith("| by-")}
    assert cells["by-loss"][15:19] == ["val_loss", "2", "-9.0000", "8.50"]
    assert cells["by-si-sdr"][15:19] == ["val_wave_si_sdr_db", "3", "-8.0000", "8.75"]


def test_a_run_with_quality_scores_gets_its_learning_curve(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "build", "long", [-5.0, -9.0], {})
    (run / "quality.csv").write_text("epoch,step,train_hours,si_sdr,pesq,stoi,dnsmos_ovrl,score,seconds\n"
                                     "10,5000,0.37,11.03,1.689,0.828,2.446,0.8332,85.9\n"
                                     "20,10000,0.88,11.47,1.752,0.842,2.521,0.8585,187.7\n")
    other = fake_run(tmp_path / "build", "short", [-4.0], {})
    archive, out = tmp_path / "docs" / "runs", tmp_path / "docs" / "report.md"
    assert main(["--archive", str(archive), str(run), str(other), "--out", str(out)]) == 0
    text = out.read_text()
    curves = text[text.index("## Learning curves"):]
    assert "### long" in curves and "### short" not in curves
    assert "![learning curve of long](runs/long/learning-curve.png)" in curves
    assert (archive / "long" / "learning-curve.png").stat().st_size > 1000
    rows = [line for line in curves.splitlines() if line.startswith("| 1") or line.startswith("| 2")]
    assert rows == ["| 10 | 5000 | 0.37 | 11.03 | 1.689 | 0.828 | 2.446 | 0.8332 |",
                    "| 20 | 10000 | 0.88 | 11.47 | 1.752 | 0.842 | 2.521 | 0.8585 (best) |"]
    assert (archive / "long" / "quality.csv").is_file()


def test_a_run_before_its_first_epoch_shows_dashes_not_nan(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "started", [-5.0], {})
    for name in ("history.csv", "time.json", "result.json"):
        (run / name).unlink()
    out = tmp_path / "report.md"
    assert main([str(run), "--out", str(out)]) == 0
    line = next(line for line in out.read_text().splitlines() if line.startswith("| started |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert "nan" not in line and cells[7] == "-" and cells[8] == "0"  # train minutes unknown, no epoch yet
