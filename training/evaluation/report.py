"""Aggregation of per-mixture scores, and the report files: JSON, Markdown, PNG, WAVs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from training.evaluation.data import sort_buckets
from training.evaluation.metrics import HEADLINE, LABELS, METRICS

SAMPLE_RATE = 16000
FORMATS = {"si_sdr": "{:.2f}", "pesq": "{:.2f}", "stoi": "{:.3f}", "dnsmos_ovrl": "{:.2f}", "dnsmos_sig": "{:.2f}",
           "dnsmos_bak": "{:.2f}", "seed_mse": "{:.4f}"}


# --------------------------------------------------------------------------- numbers
def _mean(values: list[float]) -> float | None:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else None


def summarise(records: list[dict[str, Any]], systems: list[str]) -> dict[str, dict[str, Any]]:
    """Mean of each metric per system over ``records`` (NaNs skipped and counted)."""
    out: dict[str, dict[str, Any]] = {}
    for name in systems:
        scores = [r["scores"][name] for r in records if name in r["scores"]]
        entry: dict[str, Any] = {"n": len(scores)}
        for metric in METRICS:
            values = [s.get(metric, float("nan")) for s in scores]
            entry[metric] = _mean(values)
            missing = int(sum(1 for v in values if v is None or not math.isfinite(v)))
            if missing:
                entry.setdefault("nan_count", {})[metric] = missing
        out[name] = entry
    return out


def margin(model: dict[str, Any], other: dict[str, Any]) -> dict[str, float | None]:
    """Model minus other, signed so that positive always means the model is better."""
    out = {}
    for metric, higher_better in METRICS.items():
        a, b = model.get(metric), other.get(metric)
        if a is None or b is None:
            out[metric] = None
        else:
            out[metric] = (a - b) if higher_better else (b - a)
    return out


def shown_ahead(metric: str, value: float | None, than: float | None) -> bool:
    """Whether ``value`` is better than ``than`` as the report prints them (a difference that
    rounds away is not a lead)."""
    if value is None or than is None or not (math.isfinite(value) and math.isfinite(than)):
        return False
    a, b = (float(FORMATS[metric].format(v)) for v in (value, than))
    return a > b if METRICS[metric] else a < b


def aggregate(records: list[dict[str, Any]], systems: list[str]) -> dict[str, Any]:
    """Overall, per category and per SNR means; the model's margins; where peers win (ahead as printed)."""
    categories = sorted({r["category"] for r in records})
    buckets = sort_buckets({r["snr"] for r in records})
    result: dict[str, Any] = {
        "overall": summarise(records, systems),
        "by_category": {c: summarise([r for r in records if r["category"] == c], systems) for c in categories},
        "by_snr": {b: summarise([r for r in records if r["snr"] == b], systems) for b in buckets},
    }
    others = [s for s in systems if s != "model"]
    margins: dict[str, Any] = {}
    wins: list[dict[str, Any]] = []
    if "model" in systems:
        for other in others:
            m: dict[str, Any] = {"overall": margin(result["overall"]["model"], result["overall"][other])}
            for group in ("by_category", "by_snr"):
                m[group] = {k: margin(v["model"], v[other]) for k, v in result[group].items()}
            margins[other] = m
            if other == "noisy":
                continue
            groups = [("overall", "all", result["overall"])]
            groups += [("category", k, v) for k, v in result["by_category"].items()]
            groups += [("snr", k, v) for k, v in result["by_snr"].items()]
            for group, key, table in groups:
                for metric in HEADLINE:
                    if shown_ahead(metric, table[other].get(metric), table["model"].get(metric)):
                        wins.append({"peer": other, "group": group, "value": key, "metric": metric,
                                     "model": table["model"][metric], "peer_score": table[other][metric]})
    result["margins"] = margins
    result["peer_wins"] = wins
    return result


# --------------------------------------------------------------------------- markdown
def fmt(metric: str, value: float | None, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    text = FORMATS[metric].format(value)
    return ("+" + text if value >= 0 else text) if signed else text


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """A Markdown table; the first ``left`` columns are text (left-aligned), the rest numbers."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * left + ["---:"] * (len(header) - left)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def overall_table(report: dict[str, Any], with_cost: bool = True) -> list[str]:
    res, info = report["results"], report["systems"]
    header = ["system"] + [LABELS[m] for m in METRICS]
    if with_cost:
        header += ["CPU s / audio s", "wall s / audio s", "delay undone (ms)"]
    rows = []
    for name in report["order"]:
        row = [info[name]["label"]] + [fmt(m, res["overall"][name].get(m)) for m in METRICS]
        if with_cost:
            cpu, wall = info[name].get("cpu_s_per_audio_s"), info[name].get("wall_s_per_audio_s")
            delay = info[name].get("delay_samples_16k") or 0
            row += ["–" if cpu is None else f"{cpu:.4f}", "–" if wall is None else f"{wall:.4f}",
                    f"{1000.0 * delay / SAMPLE_RATE:.1f}"]
        rows.append(row)
    return _table(header, rows)


def margins_table(report: dict[str, Any]) -> list[str]:
    res, info = report["results"], report["systems"]
    rows = [[info[o]["label"]] + [fmt(m, res["margins"][o]["overall"].get(m), signed=True) for m in METRICS]
            for o in report["order"] if o in res["margins"]]
    return _table(["model vs"] + [LABELS[m] for m in METRICS], rows)


def group_tables(report: dict[str, Any], group: str, title: str, metrics: tuple[str, ...] = tuple(METRICS)) -> list[str]:
    """One table per metric: rows are the groups, columns the systems side by side."""
    res, info = report["results"], report["systems"]
    lines: list[str] = []
    for metric in metrics:
        lines += [f"**{LABELS[metric]}** ({'higher' if METRICS[metric] else 'lower'} is better)", ""]
        header = [title, "n"] + [info[s]["label"] for s in report["order"]]
        rows = []
        for key, table in res[group].items():
            n = table[report["order"][0]]["n"]
            rows.append([key, str(n)] + [fmt(metric, table[s].get(metric)) for s in report["order"]])
        lines += _table(header, rows) + [""]
    return lines


def wins_sentence(report: dict[str, Any]) -> str:
    res, info = report["results"], report["systems"]
    wins = res.get("peer_wins", [])
    peers = [s for s in report["order"] if info[s]["kind"] == "peer"]
    if not peers:
        return "No peer was evaluated in this run."
    if not wins:
        scored = [LABELS[m] for m in HEADLINE if res["overall"].get("model", {}).get(m) is not None]
        names = ", ".join(scored[:-1]) + f" or {scored[-1]}" if len(scored) > 1 else "".join(scored)
        return (f"No peer beats the model on {names}, overall or in any noise category or SNR bucket "
                f"({', '.join(info[p]['label'] for p in peers)} compared).")
    parts = []
    for peer in peers:
        per_metric = []
        for metric in HEADLINE:
            places = []
            for w in wins:
                if w["peer"] == peer and w["metric"] == metric:
                    place = w["value"] if w["group"] != "overall" else "overall"
                    places.append(f"{place} {fmt(metric, w['peer_score'])} vs {fmt(metric, w['model'])}")
            if places:
                per_metric.append(f"{LABELS[metric]} ({'; '.join(places)})")
        if per_metric:
            parts.append(f"{info[peer]['label']} on " + ", ".join(per_metric))
    return "A peer beats the model here (peer vs model): " + ". ".join(parts) + "."


def dnsmos_note(report: dict[str, Any]) -> str:
    """One sentence on what DNSMOS is here, or why it is missing."""
    d = report.get("dnsmos") or {}
    if not d.get("available", False):
        return f"DNSMOS is unavailable in this run ({d.get('reason', 'not computed for this report')}): its columns are empty."
    return (f"DNSMOS (P.835 SIG / BAK / OVRL, 1-5, higher is better) is non-intrusive: it scores each output alone, "
            f"with Microsoft's DNS Challenge model `{d.get('model')}` from speechmos {d.get('version')}, "
            f"clips tiled to its 9 s window; clips under {d.get('min_seconds')} s or silent are not scored"
            + (f" ({d['clips_scored']} clips, {d['cpu_seconds']:.0f} CPU s)." if "cpu_seconds" in d else "."))


def render_markdown(report: dict[str, Any]) -> str:
    model, data, env = report["model"], report["data"], report["environment"]
    lines = [
        f"# Evaluation report: {model['name']} {model['version']}",
        "",
        f"Generated by `{report['command']}` on {env['date']} (commit {env['git_commit']}).",
        "",
        f"- Model: `{model['path']}` (preset {model['preset']}, sha256 `{model['sha256']}`)",
        f"- Data: `{data['path']}`, split `{data['split']}`, {data['mixtures_evaluated']} of {data['mixtures_in_split']} mixtures, "
        f"{data['seconds_evaluated'] / 60:.1f} min of speech, each cropped to its speech length, 16 kHz",
        f"- Machine: {env['cpu_model']}, {env['cpu_count']} CPUs; timings are process CPU seconds (all threads) "
        "and wall seconds per second of audio, model/state loading excluded",
        "",
        "## Overall",
        "",
        *overall_table(report),
        "",
        "The seed MSE is the reference recipe's metric: mean squared error between the normalised dB spectrograms "
        "(seed STFT, training-split min/max, clipped to [0, 1]) of the output and of the clean speech, on each mixture "
        "cropped to its speech (the reference's 0.0141 was over zero-padded 5 s clips, so it is comparable, not identical).",
        "",
        dnsmos_note(report),
        "",
        "## Margins of the model",
        "",
        "Positive means the model is better (for the seed MSE: the other system's MSE minus the model's).",
        "",
        *margins_table(report),
        "",
        wins_sentence(report),
        "",
        "## Per noise category",
        "",
        *group_tables(report, "by_category", "category"),
        "## Per SNR",
        "",
        *group_tables(report, "by_snr", "SNR"),
    ]
    if report.get("figure"):
        lines += ["## Spectrograms", "", f"![noisy / denoised / clean]({report['figure']})", ""]
    lines += ["## Systems", ""]
    rows = []
    for name in report["order"] + report.get("unavailable", []):
        s = report["systems"][name]
        measured = s.get("measured_delay_samples_16k")
        rows.append([s["label"], s.get("version") or "", "yes" if s["available"] else f"no ({s.get('reason', '')})",
                     "–" if measured is None else f"{measured} ({1000.0 * measured / SAMPLE_RATE:.1f} ms)",
                     "yes" if s.get("delay_compensated") and measured else "no", s.get("settings", "")])
    lines += _table(["system", "version", "available", "measured delay, samples at 16 kHz", "undone", "settings"], rows, left=6)
    lines += ["", "Delays are measured in this run: the lag maximising the cross-correlation between a system's output "
              "and its input on clean speech probes. The model is scored as the service returns it.", ""]
    lines += ["## Environment", ""]
    lines += [f"- {k}: {v}" for k, v in env["packages"].items()]
    lines += [f"- python: {env['python']}", f"- platform: {env['platform']}", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- files
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(_jsonable(report), indent=2, sort_keys=False) + "\n")


def write_examples(out_dir: Path, outputs: dict[str, dict[str, np.ndarray]]) -> list[dict[str, str]]:
    """WAV triplets (noisy / denoised / clean) plus each peer's output, per example mixture."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for mix_id, waves in outputs.items():
        entry = {}
        for role, wave in waves.items():
            name = f"{mix_id}_{role}.wav"
            sf.write(out_dir / name, np.clip(wave, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
            entry[role] = f"{out_dir.name}/{name}"
        written.append({"id": mix_id, **entry})
    return written


def spectrogram_figure(path: Path, noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray, titles: list[str],
                       n_fft: int = 512, hop: int = 128) -> None:
    """Three stacked dB spectrograms (noisy / denoised / clean) on one colour scale, like the seed's figures."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    specs = [20.0 * np.log10(np.maximum(np.abs(librosa.stft(w.astype(np.float32), n_fft=n_fft, hop_length=hop)), 1e-5))
             for w in (noisy, denoised, clean)]
    vmax = max(float(s.max()) for s in specs)
    vmin = vmax - 80.0
    seconds = noisy.shape[0] / SAMPLE_RATE
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True, constrained_layout=True)
    for ax, spec, title in zip(axes, specs, titles):
        im = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                       extent=[0.0, seconds, 0.0, SAMPLE_RATE / 2000.0])
        ax.set_title(title)
        ax.set_ylabel("frequency (kHz)")
    axes[-1].set_xlabel("time (s)")
    fig.colorbar(im, ax=axes, label="dB", shrink=0.8)
    fig.savefig(path, dpi=120)
    plt.close(fig)
