"""Paired comparison of two evaluation reports of the same mixtures:
``python -m training.evaluation.paired BEFORE/report.json AFTER/report.json``.

Two models scored on the same test mixtures differ far less from mixture to mixture
than their means do from run to run, so the paired difference (after − before, per
mixture) with its standard error says whether two models differ on these mixtures. It does
not say whether the recipe behind the later one is better: two runs of one recipe differ
too (the training report's repeated runs show by how much).
Prints, per metric, the mean difference, its standard error and a 95 % interval
(normal approximation), overall and per noise category and SNR.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from training.evaluation.data import sort_buckets
from training.evaluation.metrics import HEADLINE, LABELS, METRICS

Z95 = 1.96


def paired_differences(before: dict[str, Any], after: dict[str, Any], system: str = "model") -> dict[str, dict[str, np.ndarray]]:
    """Per-mixture ``after - before`` of ``system``'s scores, per metric, keyed by group
    ("overall", each category, each SNR). Mixtures must match by id; NaN pairs are dropped."""
    old = {m["id"]: m for m in before["per_mixture"]}
    new = {m["id"]: m for m in after["per_mixture"]}
    if set(old) != set(new):
        missing, extra = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        raise ValueError(f"the reports score different mixtures (only before: {missing[:5]}, only after: {extra[:5]})")
    groups: dict[str, dict[str, list[float]]] = {}
    for key in sorted(old):
        a, b = old[key], new[key]
        for group in ("overall", a["category"], a["snr"]):
            for metric in METRICS:
                d = float(b["scores"][system].get(metric, math.nan)) - float(a["scores"][system].get(metric, math.nan))
                if math.isfinite(d):
                    groups.setdefault(group, {}).setdefault(metric, []).append(d)
    return {g: {m: np.asarray(v) for m, v in metrics.items()} for g, metrics in groups.items()}


def summary(diffs: np.ndarray) -> dict[str, float]:
    """Mean paired difference, its standard error and 95 % interval."""
    n = len(diffs)
    mean = float(diffs.mean())
    se = float(diffs.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return {"n": n, "mean": mean, "se": se, "low": mean - Z95 * se, "high": mean + Z95 * se}


def render(groups: dict[str, dict[str, np.ndarray]], metrics: tuple[str, ...]) -> str:
    order = ["overall"] + sort_buckets([g for g in groups if g != "overall"])
    lines = ["| group | n | " + " | ".join(f"{LABELS[m]} after − before [95 % interval]" for m in metrics) + " |",
             "|" + "---|" * (len(metrics) + 2)]
    for group in order:
        cells = []
        for metric in metrics:
            if metric not in groups[group]:
                cells.append("-")
                continue
            s = summary(groups[group][metric])
            cells.append(f"{s['mean']:+.3f} [{s['low']:+.3f}, {s['high']:+.3f}]")
        n = max(len(v) for v in groups[group].values())
        lines.append(f"| {group} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluation.paired", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before", type=Path, help="report.json of the earlier model")
    p.add_argument("after", type=Path, help="report.json of the later model, on the same mixtures")
    p.add_argument("--system", default="model", help="which scored system to compare (default: the evaluated model)")
    p.add_argument("--all-metrics", action="store_true", help="every metric, not just the headline ones")
    args = p.parse_args(argv)
    try:
        before, after = (json.loads(path.read_text()) for path in (args.before, args.after))
        groups = paired_differences(before, after, args.system)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = [r.get("model", {}).get("version", "?") for r in (before, after)]
    print(f"{args.system}: {names[1]} (after) − {names[0]} (before), per mixture")
    print(render(groups, tuple(METRICS) if args.all_metrics else HEADLINE))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
