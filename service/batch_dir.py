"""Batch denoising for the CLI: plan the outputs of files and folder trees, run them, summarise.

Every file goes through :func:`service.inference.denoise_bytes`, the code path of
``POST /denoise``. Folder trees are mirrored under the output directory; outputs that
already exist are skipped (so an interrupted run resumes) unless ``overwrite``; a file
that fails is recorded with its reason and the others go on.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import soundfile as sf
from tqdm import tqdm

from denoise_core.model_file import OnnxModel
from service.audio_io import OutputFormat
from service.errors import ServiceError
from service.inference import denoise_bytes
from service.settings import Settings

#: file extensions picked up when walking a folder (what libsndfile reads)
AUDIO_EXTENSIONS = frozenset({"wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aiff", "aif", "aifc",
                              "au", "snd", "caf", "w64", "rf64"})
_NATIVE: dict[str, OutputFormat] = {"wav": "wav", "wave": "wav", "flac": "flac"}


@dataclass(frozen=True)
class Job:
    src: Path
    dest: Path
    #: container the service encodes; None: re-encode into the input's own format (MP3, OGG, AIFF, ...)
    fmt: OutputFormat | None


@dataclass
class Summary:
    done: list[Job] = field(default_factory=list)
    skipped: list[Job] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)
    audio_seconds: float = 0.0


def find_audio(root: Path, exclude: Path | None = None) -> list[Path]:
    """Audio files under ``root`` (by extension), sorted; hidden entries and ``exclude``'s tree left out."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (exclude is None or (here / d).resolve() != exclude))
        found += [here / f for f in filenames
                  if not f.startswith(".") and Path(f).suffix.lower().lstrip(".") in AUDIO_EXTENSIONS]
    return sorted(found)


def plan(inputs: Iterable[Path], output_dir: Path, fmt: OutputFormat | None) -> list[Job]:
    """One job per file. A folder's tree is mirrored under ``output_dir`` and keeps each file's
    format unless ``fmt``; a file named directly goes to ``output_dir/<stem>.<fmt or wav>``."""
    jobs: list[Job] = []
    used: set[Path] = set()

    def add(src: Path, dest: Path, out_fmt: OutputFormat | None) -> None:
        n, stem = 1, dest.stem
        while dest in used:  # two inputs map to the same output
            dest, n = dest.with_name(f"{stem}-{n}{dest.suffix}"), n + 1
        used.add(dest)
        jobs.append(Job(src, dest, out_fmt))

    exclude = output_dir.resolve()
    for item in inputs:
        if not item.is_dir():
            add(item, output_dir / f"{item.stem}.{fmt or 'wav'}", fmt or "wav")
            continue
        for src in find_audio(item, exclude):
            rel = src.relative_to(item)
            if fmt is None:
                add(src, output_dir / rel, _NATIVE.get(src.suffix.lower().lstrip(".")))
            else:
                add(src, output_dir / rel.with_suffix(f".{fmt}"), fmt)
    return jobs


# ------------------------------------------------------------------ one file
def denoise_file(model: OnnxModel, settings: Settings, job: Job, attenuation_limit_db: float | None) -> float:
    """Denoise ``job.src`` into ``job.dest`` (written atomically); returns the audio seconds."""
    result = denoise_bytes(model, job.src.read_bytes(), settings, job.fmt or "wav", attenuation_limit_db)
    payload = result.payload
    if job.fmt is None:  # back into the input's own container and sample format
        audio, sr = sf.read(io.BytesIO(payload), dtype="float64", always_2d=True)
        buf = io.BytesIO()
        sf.write(buf, audio, sr, format=result.input_format, subtype=result.input_subtype)
        payload = buf.getvalue()
    job.dest.parent.mkdir(parents=True, exist_ok=True)
    part = job.dest.with_name(f".{job.dest.name}.part")
    part.write_bytes(payload)
    os.replace(part, job.dest)  # an interrupted run never leaves a half-written output to skip
    return result.duration


def _attempt(model: OnnxModel, settings: Settings, job: Job, limit: float | None) -> tuple[float, str | None]:
    try:
        return denoise_file(model, settings, job, limit), None
    except ServiceError as exc:
        return 0.0, exc.message
    except Exception as exc:  # a bad file is counted, never fatal
        return 0.0, f"{type(exc).__name__}: {exc}"


# worker processes (--jobs N): each loads the model once
_worker: tuple[OnnxModel, Settings] | None = None


def _init_worker(settings: Settings) -> None:
    global _worker
    _worker = (OnnxModel(settings.model_path, settings.intra_op_threads, settings.ort_inter_op_threads), settings)


def _work(job: Job, limit: float | None) -> tuple[float, str | None]:
    assert _worker is not None
    return _attempt(*_worker, job, limit)


def _results(todo: list[Job], model: OnnxModel, settings: Settings, jobs: int,
             limit: float | None) -> Iterator[tuple[Job, float, str | None]]:
    if jobs <= 1 or len(todo) <= 1:
        for job in todo:
            yield (job, *_attempt(model, settings, job, limit))
        return
    if settings.ort_intra_op_threads == 0:  # share the CPUs between the processes
        settings = settings.model_copy(update={"ort_intra_op_threads": max(1, (os.cpu_count() or 1) // jobs)})
    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding onnxruntime threads
    with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=ctx, initializer=_init_worker,
                             initargs=(settings,)) as pool:
        futures = {pool.submit(_work, job, limit): job for job in todo}
        for future in as_completed(futures):
            yield (futures[future], *future.result())


def _header_seconds(path: Path) -> float:
    try:
        info = sf.info(str(path))
        return info.frames / info.samplerate
    except Exception:
        return 0.0


def run(jobs_list: list[Job], model: OnnxModel, settings: Settings, *, jobs: int = 1, overwrite: bool = False,
        attenuation_limit_db: float | None = None) -> Summary:
    """Run the jobs (skipping existing outputs unless ``overwrite``) with progress bars on stderr."""
    summary = Summary()
    todo = []
    for job in jobs_list:
        (todo if overwrite or not job.dest.exists() else summary.skipped).append(job)
    expected = {job.src: _header_seconds(job.src) for job in todo}
    files_bar = tqdm(total=len(jobs_list), initial=len(summary.skipped), unit="file", desc="files", file=sys.stderr)
    audio_bar = tqdm(total=round(sum(expected.values()), 1), unit="s", desc="audio", file=sys.stderr,
                     bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")
    try:
        for job, seconds, error in _results(todo, model, settings, jobs, attenuation_limit_db):
            if error is None:
                summary.done.append(job)
                summary.audio_seconds += seconds
            else:
                summary.failed.append((job, error))
            files_bar.update(1)
            audio_bar.update(min(expected[job.src], audio_bar.total - audio_bar.n))
    finally:
        audio_bar.close()
        files_bar.close()
    summary.failed.sort(key=lambda item: str(item[0].src))
    return summary


def report(summary: Summary, output_dir: Path) -> str:
    skipped = f"skipped {len(summary.skipped)}" + (" (output exists; --overwrite redoes it)" if summary.skipped else "")
    lines = [f"done {len(summary.done)}, {skipped}, failed {len(summary.failed)}; "
             f"{summary.audio_seconds:.1f} s of audio denoised into {output_dir}"]
    lines += [f"failed {job.src}: {reason}" for job, reason in summary.failed]
    return "\n".join(lines)
