"""Compare runs at equal steps against a base recipe and its seed spread:
``python -m training.compare_arms BASE SEED2 ARM... [--out FILE.md]``.

Each argument is a run directory with a ``quality.csv`` (whole-validation scores during
training). Every run is represented by its best-quality row, the checkpoint that the
rule of ``docs/model-gen2.md`` keeps, with its step and training hours (arms of unequal
cost per step compare at equal steps, not equal time). ``BASE`` and ``SEED2`` are two seeds of one
recipe: the absolute difference of their figures is the spread. Each arm's gap is taken
to the mean of the two seeds, and an arm whose score gap is no larger than the spread is
marked ``inside the spread`` (the rule repeats it with a second seed before it decides
anything). An arm still training that has no scored checkpoint yet gets an empty row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from training.evaluation.ship_rule import TARGETS
from training.quality import read_log

FIGURES = (*TARGETS, "score")
LABELS = {"si_sdr": "SI-SDR (dB)", "pesq": "PESQ-WB", "stoi": "STOI", "dnsmos_ovrl": "DNSMOS OVRL", "score": "score"}


def best_row(run: Path) -> dict[str, float]:
    """The run's best-quality row of ``quality.csv`` as floats."""
    rows = read_log(run)
    if not rows:
        raise FileNotFoundError(f"{run} has no quality scores ({run}/quality.csv)")
    return {k: float(v) for k, v in max(rows, key=lambda r: float(r["score"])).items()}


def verdict(gap: float, spread: float) -> str:
    if abs(gap) <= spread:
        return "inside the spread"
    return "above" if gap > 0 else "below"


def report(base: Path, seed2: Path, arms: list[Path]) -> str:
    """A Markdown table: each run's best-quality figures, the gap to the base recipe's mean and the verdict."""
    seeds = [best_row(base), best_row(seed2)]
    mean = {k: (seeds[0][k] + seeds[1][k]) / 2 for k in FIGURES}
    spread = {k: abs(seeds[0][k] - seeds[1][k]) for k in FIGURES}
    head = "| run | step | training hours | " + " | ".join(LABELS[k] for k in FIGURES) + " | score − base mean | verdict |"
    lines = [head, "|" + "---|" * (len(FIGURES) + 5)]

    def row(name: str, r: dict[str, float], gap: str, mark: str) -> str:
        return (f"| {name} | {int(r['step']):,} | {r['train_hours']:.2f} | " + " | ".join(f"{r[k]:.2f}" if k == "si_sdr" else f"{r[k]:.4f}" if k == "score"
                                                             else f"{r[k]:.3f}" for k in FIGURES) + f" | {gap} | {mark} |")

    for run, r in zip((base, seed2), seeds):
        lines.append(row(run.name, r, f"{r['score'] - mean['score']:+.4f}", "base recipe"))
    lines.append("| spread (seed difference) | | | " + " | ".join(f"{spread[k]:.3f}" if k != "score" else f"{spread[k]:.4f}"
                                                              for k in FIGURES) + " | | |")
    for run in arms:
        if not read_log(run):
            lines.append(f"| {run.name} |" + " |" * (len(FIGURES) + 3) + " not scored yet |")
            continue
        r = best_row(run)
        gap = r["score"] - mean["score"]
        lines.append(row(run.name, r, f"{gap:+.4f}", verdict(gap, spread["score"])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.compare_arms", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", type=Path, help="run directory of the base recipe")
    p.add_argument("seed2", type=Path, help="run directory of the base recipe with another seed")
    p.add_argument("arms", nargs="*", type=Path, help="run directories of the arms")
    p.add_argument("--out", type=Path, default=None, help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    try:
        text = report(args.base, args.seed2, args.arms)
    except FileNotFoundError as exc:
        p.exit(2, f"error: {exc}\n")
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
