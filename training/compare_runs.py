"""Summarise training runs side by side: ``python -m training.compare_runs RUN_DIR... [--out FILE.md]``.

Reads each run's config.json, history.csv and time.json and prints a Markdown table
of what was tried (model and mixer options, loss weight, parameters, time, learning rate, batch size, steps) and the best
validation figures, so design choices are recorded from the runs themselves. A run that scored
its whole validation split during training (``quality.csv``) also gets its learning curve:
SI-SDR, PESQ-WB, STOI and DNSMOS against training hours, as a table and, with ``--archive``,
a figure ``DIR/<run>/learning-curve.png``.

With ``--archive DIR`` the runs' small record files are first copied to ``DIR/<run>/``
and the table covers every run recorded there, so the report can be regenerated from
the repository after ``build/`` is gone.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from training.quality import QUALITY_LOG, read_log
from training.train import best_row


RECORD_FILES = ("config.json", "history.csv", "time.json", "result.json", QUALITY_LOG)
CURVE_METRICS = (("si_sdr", "SI-SDR (dB)"), ("pesq", "PESQ-WB"), ("stoi", "STOI"), ("dnsmos_ovrl", "DNSMOS OVRL"))


def archive(runs: list[Path], dest: Path) -> list[Path]:
    """Copy each run's record files to ``dest/<run name>/``; return every run recorded in ``dest``."""
    for run in runs:
        if not (run / "config.json").exists():
            continue
        target = dest / run.name
        target.mkdir(parents=True, exist_ok=True)
        for name in RECORD_FILES:
            if (run / name).exists():
                shutil.copy2(run / name, target / name)
    return sorted(p for p in dest.iterdir() if (p / "config.json").exists()) if dest.exists() else []


def summarise(run: Path) -> dict[str, Any]:
    config = json.loads((run / "config.json").read_text())
    rows = list(csv.DictReader(open(run / "history.csv"))) if (run / "history.csv").exists() else []
    spent = json.loads((run / "time.json").read_text())["seconds"] if (run / "time.json").exists() else float("nan")
    train = config.get("train", {})
    monitor = train.get("monitor", "val_loss")
    best: dict[str, Any] = best_row(rows, monitor) or {}
    steps = len(rows) * (train.get("steps_per_epoch") or 0) if config["preset"] != "seed" else None
    result = json.loads((run / "result.json").read_text()) if (run / "result.json").exists() else {}
    final = result.get("metrics", {})
    return {
        "run": run.name,
        "preset": config["preset"],
        "options": json.dumps(train.get("model_options") or ({"width": train.get("width")} if config["preset"] == "seed" else {}), separators=(",", ":")),
        "mixer": json.dumps(train.get("mixer_options") or {}, separators=(",", ":")) if config["preset"] != "seed" else "-",
        "mag_weight": f"{train['mag_loss_weight']:g}" if config["preset"] != "seed" and "mag_loss_weight" in train else "-",
        "commit": str(config.get("training_commit", "unknown"))[:7] + ("-dirty" if str(config.get("training_commit", "")).endswith("-dirty") else ""),
        "parameters": result.get("parameters"),
        "minutes": spent / 60,
        "epochs": len(rows),
        "lr": f"{config['learning_rate']:g}" if "learning_rate" in config else None,
        "batch": train.get("batch_size"),
        # seconds of each training crop; the seed trains on whole padded clips
        "crop": f"{train['crop_seconds']:g}" if config["preset"] != "seed" and "crop_seconds" in train else None,
        # momentum of the weight average that was validated and checkpointed ("-": the raw weights)
        "ema": f"{train['ema_momentum']:g}" if train.get("ema_momentum") else None,
        "seed": train.get("seed"),
        "steps": steps,
        # the validation figure that chose the best epoch (the restored checkpoint)
        "monitor": monitor,
        "best_epoch": int(best["epoch"]) + 1 if best else None,
        "val_loss": float(best["val_loss"]) if best else float("nan"),
        "val_si_sdr_db": float(best["val_wave_si_sdr_db"]) if best and "val_wave_si_sdr_db" in best else None,
        "val_mse": float(best["val_mse"]) if best and "val_mse" in best else None,
        # the restored best weights scored on the whole validation and test splits (result.json)
        "final_val_si_sdr_db": final.get("val_si_sdr_db"),
        "final_test_si_sdr_db": final.get("test_si_sdr_db"),
    }


def fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| run | preset | commit | model options | mixer options | mag loss weight | parameters | train min | epochs | lr | batch | crop s | EMA | seed | steps "
            "| best by | best epoch | val loss | val SI-SDR (dB) | val MSE | full val SI-SDR (dB) | test SI-SDR (dB) |")
    lines = [head, "|" + "---|" * 22]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['preset']} | {r['commit']} | `{r['options']}` | `{r['mixer']}` | {r['mag_weight']} | {fmt(r['parameters'])} | {fmt(r['minutes'], 1)} | {r['epochs']} | "
            f"{fmt(r['lr'])} | {fmt(r['batch'])} | {fmt(r['crop'])} | {fmt(r['ema'])} | {fmt(r['seed'])} | {fmt(r['steps'])} | {r['monitor']} | {fmt(r['best_epoch'])} | {fmt(r['val_loss'], 4)} | {fmt(r['val_si_sdr_db'])} | "
            f"{fmt(r['val_mse'], 4)} | {fmt(r['final_val_si_sdr_db'])} | {fmt(r['final_test_si_sdr_db'])} |"
        )
    return "\n".join(lines)


def quality_rows(run: Path) -> list[dict[str, float]]:
    """The run's full-validation scores (``quality.csv``), one row per scored epoch."""
    return [{k: float(v) for k, v in row.items()} for row in read_log(run)]


def curve_table(rows: list[dict[str, float]]) -> str:
    best = max(range(len(rows)), key=lambda i: rows[i]["score"])
    lines = ["| epoch | steps | training hours | " + " | ".join(label for _, label in CURVE_METRICS) + " | score |",
             "|" + "---|" * (4 + len(CURVE_METRICS))]
    for i, r in enumerate(rows):
        mark = " (best)" if i == best else ""
        lines.append(f"| {int(r['epoch'])} | {int(r['step'])} | {r['train_hours']:.2f} | "
                     + " | ".join(f"{r[k]:.3f}" if k != "si_sdr" else f"{r[k]:.2f}" for k, _ in CURVE_METRICS)
                     + f" | {r['score']:.4f}{mark} |")
    return "\n".join(lines)


def curve_figure(rows: list[dict[str, float]], title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [r["train_hours"] for r in rows]
    fig, axes = plt.subplots(1, len(CURVE_METRICS), figsize=(3.2 * len(CURVE_METRICS), 2.8), constrained_layout=True)
    for ax, (key, label) in zip(axes, CURVE_METRICS):
        ax.plot(hours, [r[key] for r in rows], marker="o", markersize=3)
        ax.set_xlabel("training hours")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: whole validation split", fontsize=10)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def curves_section(runs: list[Path], figures: bool, report_dir: Path) -> str:
    """Learning curves of the runs that have ``quality.csv`` (figures linked relative to ``report_dir``)."""
    parts = []
    for run in runs:
        rows = quality_rows(run)
        if not rows:
            continue
        parts.append(f"### {run.name}\n")
        if figures:
            curve_figure(rows, run.name, run / "learning-curve.png")
            link = os.path.relpath(run / "learning-curve.png", report_dir)
            parts.append(f"![learning curve of {run.name}]({link})\n")
        parts.append(curve_table(rows) + "\n")
    return "## Learning curves\n\n" + "\n".join(parts) if parts else ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.compare_runs", description=__doc__)
    p.add_argument("runs", nargs="*", type=Path)
    p.add_argument("--out", type=Path, default=None, help="also write the table to this Markdown file")
    p.add_argument("--title", default="Training runs")
    p.add_argument("--archive", type=Path, default=None, help="copy the runs' records here and report on every run recorded here")
    args = p.parse_args(argv)
    runs = archive(args.runs, args.archive) if args.archive else list(args.runs)
    rows = [summarise(r) for r in runs if (r / "config.json").exists()]
    given = " ".join(["--archive", str(args.archive)] * bool(args.archive) + [str(r) for r in args.runs])
    text = f"# {args.title}\n\nGenerated by `python -m training.compare_runs {given}`"
    text += f" (runs recorded in `{args.archive}`).\n\n" if args.archive else ".\n\n"
    text += f"{table(rows)}\n"
    curves = curves_section([r for r in runs if (r / "config.json").exists()], figures=bool(args.archive),
                            report_dir=args.out.parent if args.out else Path.cwd())
    if curves:
        text += "\n" + curves
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
