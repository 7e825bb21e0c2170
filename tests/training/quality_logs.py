"""A run directory with a hand-written ``quality.csv``, for the tests of the run comparisons."""

from __future__ import annotations

from pathlib import Path

HEADER = "epoch,step,train_hours,si_sdr,pesq,stoi,dnsmos_ovrl,score,seconds\n"


def run_with_scores(root: Path, name: str, *rows: str) -> Path:
    """``root/name`` holding a ``quality.csv`` of ``rows`` (CSV lines in HEADER's order)."""
    run = root / name
    run.mkdir()
    (run / "quality.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    return run
