"""``build``: LibriSpeech + ESC-50 roots -> split, mixed arrays, manifest and statistics.

Output directory contract (read by the training and evaluation code):

- ``manifest.csv``: one row per mixture (:data:`MANIFEST_COLUMNS`; ``index`` is the
  row in that split's arrays).
- ``{train,val,test}.npz``: ``clean``/``noisy`` float32 ``(N, 80000)`` (speech
  zero-padded to 5 s, and the mixture), ``lengths`` int32 (speech samples before
  padding), ``speakers`` int32.
- ``noise_{train,val,test}.npz``: ``noise`` float32 ``(K, 80000)`` and string arrays
  ``files``, ``src_files``, ``categories``.
- ``stats.json``: ``min``/``max`` of the seed dB features over the training split only,
  the ``signal`` parameters they were computed with, the build settings and a summary.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np
from tqdm import tqdm

from denoise_core.signal import AudioDecodeError, fit_length, load_mono
from training.data.corpora import (
    NoiseClip,
    Utterance,
    audio_seconds,
    female_speakers,
    find_utterances,
    read_noise_clips,
)
from training.data.errors import DatasetError
from training.data.mixing import MixMode, mix, target_snr
from training.data.segments import plan_segments
from training.data.splits import SPLITS, assign_groups, split_noise_sources
from training.data.stats import SEED_SPEC, feature_min_max

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "split,index,speaker,chapter,utterance,segment_start_s,duration_s,"
    "noise_file,noise_src_file,noise_category,mix_mode,snr_db"
).split(",")

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class BuildConfig:
    librispeech: Path
    esc50: Path
    out: Path
    segment: bool = False
    mix_mode: MixMode = "reference"
    snr_range: tuple[float, float] = (-5.0, 10.0)
    seed: int = 0
    min_seconds: float = 3.0
    max_seconds: float = 5.0
    max_utterances: int | None = None
    sample_rate: int = 16000
    clip_seconds: float = 5.0
    workers: int = 2
    progress: bool = True
    #: folders of extra noise recordings (``<category>/<file>``), added to the training split's noise only
    extra_noise: tuple[Path, ...] = ()

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    def validate(self) -> None:
        if not 0 < self.min_seconds < self.max_seconds <= self.clip_seconds:
            raise DatasetError(
                f"need 0 < --min-seconds < --max-seconds <= {self.clip_seconds:g} "
                f"(got {self.min_seconds:g}, {self.max_seconds:g})"
            )
        if self.snr_range[0] > self.snr_range[1]:
            raise DatasetError(f"--snr-range LOW HIGH needs LOW <= HIGH (got {self.snr_range})")
        if self.mix_mode not in ("reference", "snr"):
            raise DatasetError(f"unknown --mix mode {self.mix_mode!r}")
        if self.max_utterances is not None and self.max_utterances < 1:
            raise DatasetError("--max-utterances must be at least 1")


@dataclass(frozen=True)
class Segment:
    utt: Utterance
    start: int
    wave: np.ndarray  # the segment's speech samples (unpadded)


@dataclass
class Skipped:
    files: list[str] = field(default_factory=list)

    def add(self, path: Path, reason: object) -> None:
        log.warning("skipping unreadable audio %s: %s", path, reason)
        self.files.append(str(path))


def _pmap(fn: Callable[[T], R], items: Sequence[T], workers: int, desc: str, progress: bool) -> list[R]:
    """Ordered parallel map (threads: libsndfile and soxr release the GIL) with a progress bar."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="file", disable=not progress))


def _try(fn: Callable[[Path], T], path: Path) -> T | Exception:
    try:
        return fn(path)
    except (AudioDecodeError, RuntimeError, OSError, ValueError) as exc:
        return exc


def load_segments(cfg: BuildConfig, rng_select: np.random.Generator, rng_cut: np.random.Generator,
                  skipped: Skipped) -> list[Segment]:
    """Female speakers' speech cut into the segments of the dataset."""
    utts = find_utterances(cfg.librispeech, female_speakers(cfg.librispeech))
    durations = _pmap(lambda u: _try(audio_seconds, u.path), utts, cfg.workers, "headers", cfg.progress)
    eligible = []
    for utt, dur in zip(utts, durations):
        if isinstance(dur, Exception):
            skipped.add(utt.path, dur)
        elif cfg.min_seconds - 0.01 <= dur <= cfg.max_seconds + 0.01 or (cfg.segment and dur > cfg.max_seconds):
            eligible.append(utt)
    if cfg.max_utterances is not None and len(eligible) > cfg.max_utterances:
        keep = np.sort(rng_select.choice(len(eligible), cfg.max_utterances, replace=False))
        eligible = [eligible[i] for i in keep]
    waves = _pmap(lambda u: _try(lambda p: load_mono(p, cfg.sample_rate), u.path), eligible, cfg.workers,
                  "speech", cfg.progress)
    segments = []
    for utt, wave in zip(eligible, waves):
        if isinstance(wave, Exception):
            skipped.add(utt.path, wave)
            continue
        for start, length in plan_segments(wave.shape[0], cfg.sample_rate, rng_cut, cfg.min_seconds,
                                           cfg.max_seconds, cfg.segment):
            segments.append(Segment(utt, start, wave[start : start + length].copy()))
    if not segments:
        hint = "" if cfg.segment else " (try --segment to cut segments out of longer utterances)"
        raise DatasetError(
            f"no female utterances of {cfg.min_seconds:g}-{cfg.max_seconds:g} s under {cfg.librispeech}{hint}"
        )
    return segments


def load_noise(cfg: BuildConfig, skipped: Skipped) -> tuple[list[NoiseClip], np.ndarray]:
    """The rain/thunderstorm clips at the model rate, tiled or trimmed to the clip length."""
    clips = read_noise_clips(cfg.esc50)
    waves = _pmap(lambda c: _try(lambda p: load_mono(p, cfg.sample_rate), c.path), clips, cfg.workers,
                  "noise", cfg.progress)
    kept, arrays = [], []
    for clip, wave in zip(clips, waves):
        if isinstance(wave, Exception):
            skipped.add(clip.path, wave)
            continue
        kept.append(clip)
        arrays.append(fit_length(wave, cfg.clip_samples))
    if not kept:
        raise DatasetError(f"no readable rain/thunderstorm audio in {cfg.esc50 / 'audio'}")
    return kept, np.stack(arrays).astype(np.float32)


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def load_extra_noise(cfg: BuildConfig, skipped: Skipped) -> tuple[list[NoiseClip], np.ndarray]:
    """Recordings under each ``extra_noise`` folder, cut into consecutive clips of the clip length.

    A file's category is its parent folder's name and each file is its own source recording
    (``src_file`` ``extra:<folder>/<category>/<file>``). A last piece shorter than one second
    is dropped; a longer one is tiled to the clip length.
    """
    clips: list[NoiseClip] = []
    arrays: list[np.ndarray] = []
    for root in cfg.extra_noise:
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"extra noise folder {root} not found")
        for path in sorted(q for q in root.rglob("*") if q.suffix.lower() in AUDIO_SUFFIXES):
            try:
                wave = load_mono(path, cfg.sample_rate)
            except AudioDecodeError as exc:
                skipped.add(path, exc)
                continue
            source = f"extra:{root.name}/{path.relative_to(root).as_posix()}"
            for k, start in enumerate(range(0, wave.shape[0], cfg.clip_samples)):
                piece = wave[start : start + cfg.clip_samples]
                if piece.shape[0] < cfg.sample_rate:
                    break
                clips.append(NoiseClip(filename=f"{path.name}#{k}", src_file=source, category=path.parent.name, path=path))
                arrays.append(fit_length(piece, cfg.clip_samples))
    if cfg.extra_noise and not clips:
        raise DatasetError(f"no readable audio in the extra noise folders {[str(r) for r in cfg.extra_noise]}")
    empty = np.zeros((0, cfg.clip_samples), np.float32)
    return clips, (np.stack(arrays).astype(np.float32) if arrays else empty)


def _minutes(lengths: Iterable[int], sample_rate: int) -> float:
    return float(sum(lengths)) / sample_rate / 60.0


def build(cfg: BuildConfig) -> dict[str, Any]:
    """Build the dataset into ``cfg.out``; returns the contents of ``stats.json``."""
    started = time.monotonic()
    cfg.validate()
    rng_select, rng_cut, rng_speakers, rng_noise, *rng_mix = (
        np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(4 + len(SPLITS))
    )
    skipped = Skipped()
    segments = load_segments(cfg, rng_select, rng_cut, skipped)
    clips, noise = load_noise(cfg, skipped)
    extra_clips, extra_noise = load_extra_noise(cfg, skipped)

    speaker_minutes: dict[int, float] = {}
    for seg in segments:
        speaker_minutes[seg.utt.speaker] = speaker_minutes.get(seg.utt.speaker, 0.0) + seg.wave.shape[0]
    speaker_split = assign_groups(speaker_minutes, rng_speakers)
    noise_split = split_noise_sources([(c.category, c.src_file) for c in clips], rng_noise)

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    train_arrays: tuple[np.ndarray, np.ndarray] | None = None
    for split, rng in zip(SPLITS, rng_mix):
        seg_idx = [i for i, s in enumerate(segments) if speaker_split[s.utt.speaker] == split]
        noise_idx = [i for i, c in enumerate(clips) if noise_split[(c.category, c.src_file)] == split]
        if seg_idx and not noise_idx:
            raise DatasetError(f"no noise clips left for the {split} split (too few ESC-50 source recordings)")
        if not seg_idx:
            log.warning("the %s split has no speakers (too few speakers for an 80/10/10 split)", split)
        pool = noise[noise_idx]
        pool_clips = [clips[i] for i in noise_idx]
        n = len(seg_idx)
        clean = np.zeros((n, cfg.clip_samples), np.float32)
        noisy = np.zeros((n, cfg.clip_samples), np.float32)
        lengths = np.zeros(n, np.int32)
        speakers = np.zeros(n, np.int32)
        for index, i in enumerate(tqdm(seg_idx, desc=f"mix {split}", unit="mix", disable=not cfg.progress)):
            seg = segments[i]
            snr = target_snr(cfg.mix_mode, split, index, rng, cfg.snr_range)
            m = mix(seg.wave, pool, rng, cfg.clip_samples, snr)
            clean[index], noisy[index] = m.clean, m.noisy
            lengths[index], speakers[index] = seg.wave.shape[0], seg.utt.speaker
            clip = pool_clips[m.noise_index]
            rows.append({
                "split": split, "index": index, "speaker": seg.utt.speaker, "chapter": seg.utt.chapter,
                "utterance": seg.utt.utterance, "segment_start_s": round(seg.start / cfg.sample_rate, 4),
                "duration_s": round(seg.wave.shape[0] / cfg.sample_rate, 4), "noise_file": clip.filename,
                "noise_src_file": clip.src_file, "noise_category": clip.category, "mix_mode": cfg.mix_mode,
                "snr_db": round(m.snr_db, 4),
            })
        _save_npz(out / f"{split}.npz", clean=clean, noisy=noisy, lengths=lengths, speakers=speakers)
        if split == "train":  # extra noise joins the mixer's pool after the fixed mixtures were drawn
            pool, pool_clips = np.concatenate([pool, extra_noise]), pool_clips + extra_clips
        _save_npz(out / f"noise_{split}.npz", noise=pool,
                  files=np.array([c.filename for c in pool_clips], dtype=str),
                  src_files=np.array([c.src_file for c in pool_clips], dtype=str),
                  categories=np.array([c.category for c in pool_clips], dtype=str))
        ids = sorted({int(s) for s in speakers})
        summary[split] = {
            "mixtures": n,
            "minutes": round(_minutes(lengths, cfg.sample_rate), 3),
            "speakers": {"count": len(ids), "ids": ids},
            "noise": {
                "files": len(pool_clips),
                "src_files": len({(c.category, c.src_file) for c in pool_clips}),
                "by_category": {cat: sum(c.category == cat for c in pool_clips)
                                for cat in sorted({c.category for c in clips})},
                "extra_files": sum(c.src_file.startswith("extra:") for c in pool_clips),
            },
        }
        if split == "train":
            train_arrays = (clean, noisy)
        del clean, noisy
    if train_arrays is None or train_arrays[0].shape[0] == 0:
        raise DatasetError("the training split is empty: not enough speakers/audio")

    lo, hi = feature_min_max(tqdm(train_arrays, desc="stats (train)", disable=not cfg.progress))
    summary["skipped_corrupt"] = len(skipped.files)
    summary["skipped_files"] = skipped.files
    stats = {
        "min": lo,
        "max": hi,
        "signal": SEED_SPEC.with_stats(lo, hi).to_dict(),
        "sample_rate": cfg.sample_rate,
        "clip_samples": cfg.clip_samples,
        "seed": cfg.seed,
        "mix_mode": cfg.mix_mode,
        "snr_range": list(cfg.snr_range) if cfg.mix_mode == "snr" else None,
        "segment": cfg.segment,
        "min_seconds": cfg.min_seconds,
        "max_seconds": cfg.max_seconds,
        "max_utterances": cfg.max_utterances,
        "stats_computed_on": "train",
        "summary": summary,
    }
    stats["build_seconds"] = round(time.monotonic() - started, 1)
    _write_manifest(out / "manifest.csv", rows)
    _atomic_write(out / "stats.json", json.dumps(stats, indent=2).encode())
    return stats


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _write_manifest(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def format_summary(stats: dict[str, Any]) -> str:
    """Human-readable summary of a build (counts per split, minutes, speakers, noise)."""
    s = stats["summary"]
    lines = [f"{'split':<6} {'mixtures':>8} {'minutes':>8} {'speakers':>8} {'noise clips':>11} {'noise srcs':>10}"]
    for split in SPLITS:
        p = s[split]
        lines.append(f"{split:<6} {p['mixtures']:>8} {p['minutes']:>8.1f} {p['speakers']['count']:>8} "
                     f"{p['noise']['files']:>11} {p['noise']['src_files']:>10}")
    for split in SPLITS:
        lines.append(f"{split} speakers: {' '.join(map(str, s[split]['speakers']['ids']))}")
    lines.append(f"skipped corrupt/unreadable files: {s['skipped_corrupt']}")
    lines.append(f"feature stats (train only): min {stats['min']:.3f} dB, max {stats['max']:.3f} dB; "
                 f"mix mode {stats['mix_mode']}, seed {stats['seed']}")
    return "\n".join(lines)
