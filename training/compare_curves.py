"""Two runs' learning curves side by side at equal steps:
``python -m training.compare_curves BEFORE AFTER [--out FILE.md]``.

Each argument is a run directory with a ``quality.csv``. For every step that both runs
scored on the whole validation split, the table gives both quality scores, the
difference (AFTER - BEFORE) and each figure's difference; the hours column is AFTER's
training time at that step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training.compare_arms import FIGURES, LABELS
from training.quality import read_log


def by_step(run: Path) -> dict[int, dict[str, float]]:
    """The run's scored rows keyed by optimiser step."""
    return {int(float(row["step"])): {k: float(v) for k, v in row.items()} for row in read_log(run)}


def report(before: Path, after: Path) -> str:
    """Markdown table of the steps both runs scored."""
    a, b = by_step(before), by_step(after)
    shared = sorted(set(a) & set(b))
    head = ["step", f"{after.name} hours", f"{before.name} score", f"{after.name} score"]
    head += [f"Δ {LABELS[f]}" for f in FIGURES]
    lines = [f"{after.name} against {before.name} at equal steps (Δ = {after.name} − {before.name})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for step in shared:
        cells = [f"{step:,}", f"{b[step]['train_hours']:.2f}", f"{a[step]['score']:.4f}", f"{b[step]['score']:.4f}"]
        cells += [f"{b[step][f] - a[step][f]:+.4f}" if f in ("score", "stoi") else f"{b[step][f] - a[step][f]:+.3f}" for f in FIGURES]
        lines.append("| " + " | ".join(cells) + " |")
    if not shared:
        lines.append("| " + " | ".join(["no step scored by both yet"] + [""] * (len(head) - 1)) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.compare_curves", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before", type=Path, help="run directory (the reference)")
    p.add_argument("after", type=Path, help="run directory (the candidate)")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    text = report(args.before, args.after)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
