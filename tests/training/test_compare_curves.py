"""Two runs' learning curves are compared only at the steps both scored."""

from __future__ import annotations

from pathlib import Path

from tests.training.quality_logs import run_with_scores as run
from training.compare_curves import main


def rows_of(text: str) -> dict[str, list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("| ")][1:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    return {r[0]: r[1:] for r in rows}


def test_differences_at_shared_steps(tmp_path: Path, capsys) -> None:
    before = run(tmp_path, "band-L2", "10,5000,0.4,11.0,1.70,0.830,2.45,0.8300,80", "20,10000,0.9,11.5,1.75,0.840,2.52,0.8580,80",
                 "30,15000,1.3,11.9,1.79,0.847,2.51,0.8710,80")
    after = run(tmp_path, "band-ctx", "10,5000,0.5,11.6,1.82,0.850,2.55,0.8700,80", "20,10000,1.0,11.8,1.85,0.852,2.60,0.8800,80")
    out = tmp_path / "curves.md"
    assert main([str(before), str(after), "--out", str(out)]) == 0
    rows = rows_of(out.read_text())
    assert list(rows) == ["5,000", "10,000"]  # 15,000 only in one run
    assert rows["5,000"] == ["0.50", "0.8300", "0.8700", "+0.600", "+0.120", "+0.0200", "+0.100", "+0.0400"]
    assert rows["10,000"][-1] == "+0.0220"
    assert capsys.readouterr().out == out.read_text()


def test_no_shared_step_says_so(tmp_path: Path, capsys) -> None:
    before = run(tmp_path, "a", "10,5000,0.4,11.0,1.70,0.830,2.45,0.8300,80")
    after = tmp_path / "b"
    after.mkdir()
    assert main([str(before), str(after)]) == 0
    assert "no step scored by both yet" in capsys.readouterr().out
