"""Arms are compared at their best-quality checkpoints against the mean and spread of two seeds."""

from __future__ import annotations

from pathlib import Path

from tests.training.quality_logs import run_with_scores as arm
from training.compare_arms import main


def table_rows(text: str) -> dict[str, list[str]]:
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:]]
    return {r[0]: r[1:] for r in rows}


def test_gaps_are_taken_to_the_seed_mean_and_judged_by_the_spread(tmp_path: Path, capsys) -> None:
    base = arm(tmp_path, "base", "8,4000,0.6,11.5,1.80,0.84,2.50,0.8600,300", "16,8000,1.2,11.2,1.75,0.84,2.45,0.8500,300")
    seed = arm(tmp_path, "seed1", "16,8000,1.2,11.4,1.78,0.84,2.48,0.8560,300")
    better = arm(tmp_path, "wide", "16,8000,1.5,11.9,1.90,0.85,2.60,0.8800,300")
    close = arm(tmp_path, "L0", "16,8000,1.2,11.3,1.79,0.84,2.49,0.8570,300")
    worse = arm(tmp_path, "mask", "8,4000,0.6,10.0,1.60,0.82,2.40,0.8100,300", "16,8000,1.2,10.5,1.62,0.82,2.41,0.8200,300")
    started = tmp_path / "Lnone"
    started.mkdir()  # an arm still before its first scoring
    out = tmp_path / "arms.md"
    assert main([str(base), str(seed), str(better), str(close), str(worse), str(started), "--out", str(out)]) == 0
    rows = table_rows(out.read_text())
    assert rows["base"][:2] == ["4,000", "0.60"] and rows["base"][-2:] == ["+0.0020", "base recipe"]  # the best row, not the last
    assert rows["spread (seed difference)"][2:7] == ["0.100", "0.020", "0.000", "0.020", "0.0040"]
    assert rows["wide"][1] == "1.50" and rows["wide"][-2:] == ["+0.0220", "above"]
    assert rows["L0"][-2:] == ["-0.0010", "inside the spread"]
    assert rows["mask"][-2:] == ["-0.0380", "below"]
    assert rows["Lnone"][-1] == "not scored yet" and len(rows["Lnone"]) == len(rows["mask"])
    assert capsys.readouterr().out.strip() == out.read_text().strip()


def test_a_run_without_quality_scores_is_an_error(tmp_path: Path, capsys) -> None:
    base = arm(tmp_path, "base", "16,8000,1.2,11.5,1.80,0.84,2.50,0.8600,300")
    (tmp_path / "empty").mkdir()
    try:
        main([str(base), str(tmp_path / "empty")])
    except SystemExit as exc:
        assert exc.code == 2
    assert "has no quality scores" in capsys.readouterr().err
