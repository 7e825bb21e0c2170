"""Denoise a large archive on Ray Data: one process here, or a whole (KubeRay) cluster.

    python -m service.batch INPUT_DIR OUTPUT_DIR [--actors N] [--format wav|flac] [--overwrite]
    python -m service.batch /data/in /data/out --address ray://raycluster-head-svc:10001
    python -m service.batch /data/in /data/out --address auto        # on a cluster node

The files are listed and their outputs planned exactly as the CLI's folder mode does it
(:func:`service.batch_dir.plan`: the tree is mirrored, each file keeps its format unless
``--format``). Outputs that exist are skipped, so an interrupted run resumes. The rest go
through ``ray.data.from_items(...).map_batches(Denoiser, compute=ActorPoolStrategy(size=N))``:
each actor loads the ONNX model once (one onnxruntime thread, one Ray CPU) and runs every
file through :func:`service.batch_dir.denoise_file`, i.e. :func:`service.inference.denoise_bytes`,
the code path of ``POST /denoise`` and of the CLI, writing the output atomically. A file that
fails is counted with its reason and the others go on. Exit status 1 if any file failed.

Without ``--address`` a local Ray instance is started (``--num-cpus``, default all cores).
On a cluster, INPUT_DIR and OUTPUT_DIR must be the same shared filesystem path on the driver
and every worker (e.g. a ReadWriteMany volume), and the workers' image must have this package
(``pip install '.[batch]'``). Settings (``MODEL_PATH``, ``CHUNK_SECONDS``, limits, ...) are read
from the environment where the actors run, as the service reads them; ``--model`` overrides the
model path.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from service import batch_dir
from service.settings import Settings


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0  # listing + denoising (Ray start-up excluded, reported apart)
    first_result_seconds: float = 0.0  # until the first block came back: actor start-up, model load, one block
    steady_audio_seconds: float = 0.0  # audio of the files that came back after the first block
    startup_seconds: float = 0.0
    cpus: float = 0.0  # Ray CPUs of the cluster: what the run holds
    actors: int = 0
    models: set[str] = field(default_factory=set)
    known_failures: list[tuple[str, str]] = field(default_factory=list)  # skipped: failed before, input unchanged

    @property
    def audio_hours(self) -> float:
        return self.audio_seconds / 3600

    @property
    def hours_per_core_hour(self) -> float:
        core_hours = self.wall_seconds * self.cpus / 3600
        return self.audio_hours / core_hours if core_hours > 0 else 0.0

    @property
    def steady_hours_per_core_hour(self) -> float:
        """The same after the first block (start-up left out): what a long run converges to."""
        core_hours = (self.wall_seconds - self.first_result_seconds) * self.cpus / 3600
        return self.steady_audio_seconds / 3600 / core_hours if core_hours > 0 and self.steady_audio_seconds else 0.0


class Denoiser:
    """A Ray Data callable class: one per actor, model loaded once in ``__init__``."""

    def __init__(self, model_path: str | None = None) -> None:
        from denoise_core.model_file import OnnxModel

        update: dict[str, Any] = {"ort_intra_op_threads": 1, "ort_inter_op_threads": 1}
        if model_path:
            update["model_path"] = Path(model_path)
        self.settings = Settings().model_copy(update=update)
        self.model = OnnxModel(self.settings.model_path, self.settings.intra_op_threads,
                               self.settings.ort_inter_op_threads)
        self.tag = f"{self.model.info.name} {self.model.info.version} sha256:{self.model.sha256[:12]}"

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        seconds, errors = [], []
        for src, dest, fmt in zip(batch["src"], batch["dest"], batch["fmt"]):
            job = batch_dir.Job(Path(str(src)), Path(str(dest)), str(fmt) or None)  # type: ignore[arg-type]
            done, error = batch_dir._attempt(self.model, self.settings, job, None)
            seconds.append(done)
            errors.append(error or "")
        return {"src": batch["src"], "seconds": np.asarray(seconds, dtype=np.float64),
                "error": np.asarray(errors, dtype=object),
                "model": np.asarray([self.tag] * len(errors), dtype=object)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m service.batch",
                                description="Denoise a folder tree on Ray Data (local or a cluster).")
    p.add_argument("input_dir", type=Path, help="folder of recordings, walked recursively")
    p.add_argument("output_dir", type=Path, help="folder for the denoised tree (mirrors INPUT_DIR)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to use: ray://HOST:10001 or auto (default: start a local instance)")
    p.add_argument("--num-cpus", type=int, default=None, metavar="N",
                   help="CPUs of the local instance (default: all cores; ignored with --address)")
    p.add_argument("--actors", type=int, default=None, metavar="N",
                   help="actors, each holding one model and one CPU (default: the cluster's CPUs)")
    p.add_argument("--format", choices=("wav", "flac"), default=None,
                   help="output container (default: each file keeps its format)")
    p.add_argument("--model", default=None, help="ONNX model path as the workers see it (default: MODEL_PATH "
                                                 "or the shipped model)")
    p.add_argument("--overwrite", action="store_true", help="redo files whose output exists (default: skip them)")
    p.add_argument("--retry-failed", action="store_true",
                   help="try again inputs that failed in an earlier run (default: skip them while unchanged)")
    args = p.parse_args(argv)
    if not args.input_dir.is_dir():
        p.error(f"{args.input_dir} is not a folder")
    for name in ("actors", "num_cpus"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def _start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to ``address`` or start a local instance; True when this call started/connected it."""
    import ray

    if ray.is_initialized():  # a caller (a test, a notebook) already set Ray up
        return False
    common: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, **common)
    return True


def _quiet_ray_data() -> None:
    """Ray Data prints INFO lines (and a warning for the bars we turn off) on the console; keep its log file."""
    for handler in logging.getLogger("ray.data").handlers:
        if type(handler).__name__ == "PlainRayHandler":
            handler.setLevel(logging.ERROR)


def _num_blocks(todo: int, actors: int) -> int:
    # several blocks per actor so the pool stays balanced, ~10 files a block for steady progress,
    # and no more than 20,000 blocks (a million files: 50 a block) to keep the scheduling cheap
    return max(1, min(todo, max(8 * actors, math.ceil(todo / 10)), 20_000))


LEDGER = ".rainclean-failed.json"


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def read_ledger(output_dir: Path) -> dict[str, dict[str, object]]:
    """Inputs that failed in earlier runs: path -> reason and the input's size and mtime then."""
    try:
        return dict(json.loads((output_dir / LEDGER).read_text()))
    except (OSError, ValueError):
        return {}


def write_ledger(output_dir: Path, ledger: dict[str, dict[str, object]]) -> None:
    path = output_dir / LEDGER
    if not ledger:
        path.unlink(missing_ok=True)
        return
    text = json.dumps(ledger, indent=1, sort_keys=True)
    if path.exists() and path.read_text() == text:
        return  # unchanged: leave the file (and its mtime) alone
    tmp = path.with_suffix(".part")
    tmp.write_text(text)
    tmp.replace(path)


def run(input_dir: Path, output_dir: Path, *, actors: int | None = None, fmt: str | None = None,
        model: str | None = None, overwrite: bool = False, retry_failed: bool = False) -> BatchSummary:
    """Plan, skip, denoise on the Ray instance this process is connected to; returns the summary.

    Skipped: inputs whose output exists (unless ``overwrite``) and inputs that failed in an
    earlier run and have not changed since (kept in ``OUTPUT_DIR/.rainclean-failed.json``,
    unless ``retry_failed``)."""
    import ray
    import ray.data

    t0 = time.perf_counter()
    summary = BatchSummary(cpus=float(ray.cluster_resources().get("CPU", 0)))
    jobs = batch_dir.plan([input_dir], output_dir, fmt)  # type: ignore[arg-type]
    ledger = {} if retry_failed else read_ledger(output_dir)
    todo = []
    for job in jobs:
        known = ledger.get(str(job.src))
        if known is not None and known.get("stamp") == _stamp(job.src):
            summary.known_failures.append((str(job.src), str(known.get("reason", ""))))
        elif overwrite or not job.dest.exists():
            todo.append(job)
    summary.skipped = len(jobs) - len(todo) - len(summary.known_failures)
    summary.actors = max(1, min(actors or int(summary.cpus) or 1, len(todo) or 1))
    output_dir.mkdir(parents=True, exist_ok=True)
    if todo:
        _quiet_ray_data()
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # our bar below; Ray's per-operator bars are noise here
        if hasattr(ctx, "print_on_execution_start"):
            ctx.print_on_execution_start = False
        # constructor arguments only when needed: with them Ray's core worker logs a (harmless) restart warning
        kwargs = {"fn_constructor_kwargs": {"model_path": model}} if model else {}
        items = [{"src": str(j.src), "dest": str(j.dest), "fmt": j.fmt or ""} for j in todo]
        ds = (ray.data.from_items(items, override_num_blocks=_num_blocks(len(items), summary.actors))
              .map_batches(Denoiser, batch_size=1, **kwargs,
                           compute=ray.data.ActorPoolStrategy(size=summary.actors), num_cpus=1))
        bar = tqdm(total=len(jobs), initial=summary.skipped, unit="file", desc="files", file=sys.stderr)
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):  # one block as it completes
                first = not summary.first_result_seconds
                if first:
                    summary.first_result_seconds = time.perf_counter() - t0
                for src, seconds, error, tag in zip(batch["src"], batch["seconds"], batch["error"], batch["model"]):
                    if error:
                        summary.failed.append((str(src), str(error)))
                    else:
                        summary.done += 1
                        summary.audio_seconds += float(seconds)
                        summary.steady_audio_seconds += 0.0 if first else float(seconds)
                    summary.models.add(str(tag))
                    bar.update(1)
                bar.set_postfix_str(f"{summary.audio_seconds / 3600:.3f} h audio, {len(summary.failed)} failed")
        finally:
            bar.close()
    summary.failed.sort()
    still_known = {src for src, _ in summary.known_failures}
    ledger = {src: entry for src, entry in ledger.items() if src in still_known}
    for src, reason in summary.failed:
        ledger[src] = {"reason": reason, "stamp": _stamp(Path(src))}
    write_ledger(output_dir, ledger)
    summary.wall_seconds = time.perf_counter() - t0
    return summary


def report(summary: BatchSummary, output_dir: Path) -> str:
    skipped = f"skipped {summary.skipped}" + (" (output exists; --overwrite redoes it)" if summary.skipped else "")
    lines = [
        f"done {summary.done}, {skipped}, failed {len(summary.failed)}, known failures skipped {len(summary.known_failures)}; "
        f"{summary.audio_seconds:.1f} s of audio denoised into {output_dir}",
        f"audio hours {summary.audio_hours:.4f}; wall time {summary.wall_seconds:.1f} s "
        f"(Ray start-up {summary.startup_seconds:.1f} s apart); {summary.actors} actor(s) on {summary.cpus:g} CPUs; "
        f"{summary.hours_per_core_hour:.2f} audio hours per core-hour"
        f" ({summary.audio_seconds / summary.wall_seconds if summary.wall_seconds else 0:.1f} x real time); "
        f"after the first block ({summary.first_result_seconds:.1f} s: actor start-up): "
        f"{summary.steady_hours_per_core_hour:.2f} audio hours per core-hour",
    ]
    lines += [f"model {tag}" for tag in sorted(summary.models)]
    lines += [f"failed {src}: {reason}" for src, reason in summary.failed]
    lines += [f"skipped, failed before and unchanged (--retry-failed tries again) {src}: {reason}"
              for src, reason in summary.known_failures]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import ray
    except ImportError:
        print("error: Ray is not installed: pip install 'rainclean[batch]' (or '.[batch]' in a checkout)",
              file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    started = _start_ray(args.address, args.num_cpus)
    startup = time.perf_counter() - t0
    try:
        summary = run(args.input_dir, args.output_dir, actors=args.actors, fmt=args.format, model=args.model,
                      overwrite=args.overwrite, retry_failed=args.retry_failed)
    except Exception as exc:  # not a bad file (those are counted): the job itself, e.g. a model that won't load
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        print(f"error: the batch job stopped (outputs written so far are kept; rerun to resume): {lines[-1]}",
              file=sys.stderr)
        return 2
    finally:
        if started:
            ray.shutdown()
    summary.startup_seconds = startup
    print(report(summary, args.output_dir), file=sys.stderr)
    return 1 if summary.failed else 0


if __name__ == "__main__":
    # run from the importable module, so the actors import Denoiser by name rather than unpickling __main__'s copy
    from service.batch import main as _main

    sys.exit(_main())
