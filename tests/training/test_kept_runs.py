"""`make keep-run` / `make restore-run`: a run's resume state kept in the repository comes back
on a machine without the run directory, and never overwrites a run that is there."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def fake_run(run: Path) -> None:
    (run / "backup").mkdir(parents=True)
    (run / "backup" / "latest.weights.h5").write_bytes(b"weights and optimiser")
    (run / "backup" / "training_metadata.json").write_text('{"epoch": 8, "batch": 0}')
    for name in ("config.json", "history.csv", "time.json", "quality.csv", "best-quality.weights.h5"):
        (run / name).write_text(name)
    (run / "model.keras").write_text("not kept")
    (run / "quality-4000.weights.h5").write_text("not kept")


def test_keep_then_restore_round_trip(tmp_path: Path) -> None:
    run, kept = tmp_path / "runs" / "arm", tmp_path / "kept"
    fake_run(run)
    assert make("keep-run", f"RUN={run}", f"KEEP_DIR={kept}").returncode == 0
    assert sorted(p.relative_to(kept / "arm").as_posix() for p in (kept / "arm").rglob("*") if p.is_file()) == [
        "backup/latest.weights.h5", "backup/training_metadata.json", "best-quality.weights.h5", "config.json",
        "history.csv", "quality.csv", "time.json"]
    elsewhere = tmp_path / "machine2" / "arm"
    proc = make("restore-run", f"RUN={elsewhere}", f"KEEP_DIR={kept}")
    assert proc.returncode == 0 and "resuming" in proc.stdout
    assert (elsewhere / "backup" / "training_metadata.json").read_text() == '{"epoch": 8, "batch": 0}'
    assert (elsewhere / "backup" / "latest.weights.h5").read_bytes() == b"weights and optimiser"


def test_restore_leaves_an_existing_run_alone(tmp_path: Path) -> None:
    run, kept = tmp_path / "runs" / "arm", tmp_path / "kept"
    fake_run(run)
    assert make("keep-run", f"RUN={run}", f"KEEP_DIR={kept}").returncode == 0
    (run / "backup" / "training_metadata.json").write_text('{"epoch": 12, "batch": 0}')  # the live run moved on
    proc = make("restore-run", f"RUN={run}", f"KEEP_DIR={kept}")
    assert proc.returncode == 0 and "resuming" not in proc.stdout
    assert (run / "backup" / "training_metadata.json").read_text() == '{"epoch": 12, "batch": 0}'


def test_keep_run_refuses_a_missing_run(tmp_path: Path) -> None:
    proc = make("keep-run", f"RUN={tmp_path / 'nothing'}", f"KEEP_DIR={tmp_path / 'kept'}")
    assert proc.returncode != 0 and "usage" in proc.stdout
    assert not (tmp_path / "kept").exists()
