"""The quality score and the ship rule of ``docs/model-gen2.md``:
``python -m training.evaluation.ship_rule SHIPPED/report.json CANDIDATE/report.json``.

The quality score is the mean, over SI-SDR, PESQ-WB, STOI and DNSMOS OVRL, of each figure
divided by its target on the project's own test split (13.5 dB, 2.30, 0.87, 2.95). A
candidate replaces the shipped model when its score on the same test mixtures is higher.
The command prints both rows and the verdict: ``ship`` or ``keep``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

TARGETS: dict[str, float] = {"si_sdr": 13.5, "pesq": 2.30, "stoi": 0.87, "dnsmos_ovrl": 2.95}


def quality_score(figures: dict[str, float]) -> float:
    """Mean of each figure over its target (NaN if any figure is missing)."""
    return float(np.mean([figures[k] / target for k, target in TARGETS.items()]))


def overall(report: dict[str, Any], system: str = "model") -> dict[str, float]:
    """A report's overall figures of ``system`` (the evaluated model by default)."""
    return {k: float(report["results"]["overall"][system][k]) for k in TARGETS}


def verdict(shipped: dict[str, Any], candidate: dict[str, Any]) -> tuple[dict[str, float], dict[str, float], bool]:
    """Both overall rows with their ``score``, and whether the candidate ships."""
    a, b = overall(shipped), overall(candidate)
    ids = [sorted(m["id"] for m in r["per_mixture"]) for r in (shipped, candidate)]
    if ids[0] != ids[1]:
        raise ValueError("the reports were not scored on the same mixtures")
    a["score"], b["score"] = quality_score(a), quality_score(b)
    return a, b, bool(b["score"] > a["score"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluation.ship_rule", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shipped", type=Path, help="report.json of the shipped model")
    p.add_argument("candidate", type=Path, help="report.json of the candidate, on the same mixtures")
    args = p.parse_args(argv)
    try:
        reports = [json.loads(path.read_text()) for path in (args.shipped, args.candidate)]
        shipped, candidate, ships = verdict(*reports)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("| model | version | " + " | ".join(TARGETS) + " | score |")
    print("|---|---|" + "---|" * (len(TARGETS) + 1))
    for label, row, report in (("shipped", shipped, reports[0]), ("candidate", candidate, reports[1])):
        version = report.get("model", {}).get("version", "?")
        print(f"| {label} | {version} | " + " | ".join(f"{row[k]:.3f}" for k in TARGETS) + f" | {row['score']:.4f} |")
    print("ship" if ships else "keep")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
