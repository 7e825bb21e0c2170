"""What is evaluated: the dataset builder's test split, or a folder of noisy/clean pairs.

A dataset directory (``python -m training.data build``) holds ``{split}.npz`` (``clean``,
``noisy``, ``lengths``, ``speakers``), ``manifest.csv`` and ``stats.json``. A pairs folder
holds ``noisy/NAME.wav`` and ``clean/NAME.wav`` (any format libsndfile reads, any
rate: resampled to 16 kHz); an optional ``stats.json`` beside them enables the seed MSE.
Every mixture is cropped to its speech length before scoring.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from denoise_core.signal import SignalSpec, load_mono, snr_db

SAMPLE_RATE = 16000
AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class Mixture:
    id: str
    noisy: np.ndarray
    clean: np.ndarray
    category: str = "unknown"
    snr: str = "unknown"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.clean.shape[0] / SAMPLE_RATE


@dataclass
class EvalSet:
    kind: str  # "dataset" | "pairs"
    path: Path
    split: str
    mixtures: list[Mixture]
    total: int  # mixtures available before --limit
    stats: dict[str, Any] | None
    summary: dict[str, Any]

    @property
    def seed_spec(self) -> SignalSpec | None:
        """The seed STFT with the training split's statistics, if ``stats.json`` has them."""
        if not self.stats or "signal" not in self.stats or "min" not in self.stats:
            return None
        return SignalSpec.from_dict(self.stats["signal"]).with_stats(self.stats["min"], self.stats["max"])


def snr_bucket(value: float, width: int = 1) -> str:
    """Label of an SNR bucket: the nearest multiple of ``width`` dB (test SNRs are -5/0/5/10)."""
    centre = int(round(value / width)) * width
    return f"{centre:d} dB" if width == 1 else f"{centre:d} dB ±{width / 2:g}"


def _bucket_sort_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label.split()[0]), label)
    except (ValueError, IndexError):
        return (1, 0.0, label)


def sort_buckets(labels: set[str] | list[str]) -> list[str]:
    return sorted(set(labels), key=_bucket_sort_key)


def pick(total: int, limit: int | None) -> list[int]:
    """Indices to evaluate: all, or ``limit`` spread evenly (so every category/SNR stays in)."""
    if limit is None or limit >= total:
        return list(range(total))
    if limit <= 0:
        return []
    return sorted(set(np.linspace(0, total - 1, limit).round().astype(int).tolist()))


def load(path: str | Path, split: str = "test", limit: int | None = None) -> EvalSet:
    path = Path(path)
    if (path / f"{split}.npz").exists():
        return _load_dataset(path, split, limit)
    if (path / "noisy").is_dir() and (path / "clean").is_dir():
        return _load_pairs(path, limit)
    raise FileNotFoundError(f"{path} holds neither {split}.npz (a dataset from `python -m training.data build`) "
                            "nor noisy/ and clean/ folders of paired audio files")


def _read_stats(path: Path) -> dict[str, Any] | None:
    f = path / "stats.json"
    return json.loads(f.read_text()) if f.exists() else None


def _load_dataset(path: Path, split: str, limit: int | None) -> EvalSet:
    arrays = np.load(path / f"{split}.npz")
    clean, noisy, lengths = arrays["clean"], arrays["noisy"], arrays["lengths"]
    speakers = arrays["speakers"] if "speakers" in arrays.files else np.full(len(lengths), -1)
    rows: dict[int, dict[str, str]] = {}
    manifest = path / "manifest.csv"
    if manifest.exists():
        with open(manifest, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("split") == split:
                    rows[int(row["index"])] = row
    mixtures = []
    for i in pick(len(lengths), limit):
        n = int(lengths[i])
        row = rows.get(i, {})
        c, x = clean[i, :n].astype(np.float32), noisy[i, :n].astype(np.float32)
        if row.get("snr_db") not in (None, ""):
            # snr mode mixes at exact SNRs; other modes (e.g. the reference recipe's) in 5 dB bins
            exact = row.get("mix_mode", "snr") == "snr"
            bucket = snr_bucket(float(row["snr_db"]), 1 if exact else 5)
        else:
            bucket = snr_bucket(snr_db(c, x - c), 5) + " (measured)"
        mixtures.append(Mixture(
            id=f"{split}-{i:04d}",
            noisy=x,
            clean=c,
            category=row.get("noise_category") or "unknown",
            snr=bucket,
            meta={"index": i, "speaker": int(speakers[i]), **{k: v for k, v in row.items() if k not in ("split", "index")}},
        ))
    stats = _read_stats(path)
    summary = {
        "kind": "dataset",
        "path": str(path),
        "split": split,
        "mixtures_in_split": int(len(lengths)),
        "mixtures_evaluated": len(mixtures),
        "speakers_evaluated": len({m.meta["speaker"] for m in mixtures}),
        "seconds_evaluated": float(sum(m.seconds for m in mixtures)),
        "dataset_summary": (stats or {}).get("summary", {}),
    }
    return EvalSet("dataset", path, split, mixtures, int(len(lengths)), stats, summary)


def _load_pairs(path: Path, limit: int | None) -> EvalSet:
    noisy_files = {f.stem: f for f in sorted((path / "noisy").iterdir()) if f.suffix.lower() in AUDIO_EXTS}
    clean_files = {f.stem: f for f in sorted((path / "clean").iterdir()) if f.suffix.lower() in AUDIO_EXTS}
    names = sorted(set(noisy_files) & set(clean_files))
    if not names:
        raise FileNotFoundError(f"no files in {path}/noisy with the same name in {path}/clean")
    mixtures = []
    for i in pick(len(names), limit):
        name = names[i]
        x, c = load_mono(noisy_files[name], SAMPLE_RATE), load_mono(clean_files[name], SAMPLE_RATE)
        n = min(x.shape[0], c.shape[0])
        x, c = x[:n], c[:n]
        mixtures.append(Mixture(id=name, noisy=x, clean=c, category="unknown",
                                snr=snr_bucket(snr_db(c, x - c), 5) + " (measured)", meta={"file": name}))
    stats = _read_stats(path)
    summary = {
        "kind": "pairs",
        "path": str(path),
        "split": "pairs",
        "mixtures_in_split": len(names),
        "mixtures_evaluated": len(mixtures),
        "unpaired_files": sorted(set(noisy_files) ^ set(clean_files)),
        "seconds_evaluated": float(sum(m.seconds for m in mixtures)),
        "dataset_summary": (stats or {}).get("summary", {}),
    }
    return EvalSet("pairs", path, "pairs", mixtures, len(names), stats, summary)
