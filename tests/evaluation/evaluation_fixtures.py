"""A tiny dataset directory in the dataset builder's contract, made from real shared-data files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from denoise_core.signal import SignalSpec, fit_length, load_mono, mix_at_snr, wave_features

SR = 16000
SEG = 5 * SR
SEED_SIGNAL = SignalSpec(n_fft=1199, hop_length=304, magnitude="db", output="magnitude")
MANIFEST_COLUMNS = ["split", "index", "speaker", "chapter", "utterance", "segment_start_s", "duration_s", "noise_file",
                    "noise_src_file", "noise_category", "mix_mode", "snr_db"]


def make_tiny_dataset(shared: Path, out: Path, n: int = 4) -> Path:
    """``n`` test mixtures (rain/thunderstorm alternating, SNR cycling -5/0/5/10), 4.8-5 s of speech each.

    Lengths differ (cropping is exercised) but stay in [4.5, 5) s or at 5 s, where DNSMOS's tiling to
    its 9.01 s window needs one window per clip: any shorter costs up to 9 windows, i.e. seconds per clip.
    """
    speech_files = sorted((shared / "LibriSpeech" / "dev-clean").rglob("*.flac"))[:n]
    meta = list(csv.DictReader(open(shared / "ESC-50" / "meta" / "esc50.csv")))
    by_cat = {c: [r for r in meta if r["category"] == c and (shared / "ESC-50" / "audio" / r["filename"]).exists()]
              for c in ("rain", "thunderstorm")}
    out.mkdir(parents=True, exist_ok=True)
    clean = np.zeros((n, SEG), np.float32)
    noisy = np.zeros((n, SEG), np.float32)
    lengths = np.zeros(n, np.int32)
    speakers = np.zeros(n, np.int32)
    rows = []
    snrs = [-5.0, 0.0, 5.0, 10.0]
    for i, f in enumerate(speech_files):
        speech = load_mono(f, SR)
        length = min(speech.shape[0], SEG - (i % 2) * SR // 16 - SR // 16 * (i % 3))
        speech = speech[:length]
        cat = ("rain", "thunderstorm")[i % 2]
        row = by_cat[cat][i // 2 % len(by_cat[cat])]
        noise = fit_length(load_mono(shared / "ESC-50" / "audio" / row["filename"], SR), length)
        mix, _ = mix_at_snr(speech, noise, snrs[i % 4])
        peak = max(1.0, float(np.abs(mix).max()) / 0.95)
        clean[i, :length], noisy[i, :length], lengths[i] = speech / peak, mix / peak, length
        spk, chap, utt = f.stem.split("-")
        speakers[i] = int(spk)
        rows.append({"split": "test", "index": i, "speaker": spk, "chapter": chap, "utterance": utt, "segment_start_s": 0.0,
                     "duration_s": length / SR, "noise_file": row["filename"], "noise_src_file": row["src_file"],
                     "noise_category": cat, "mix_mode": "snr", "snr_db": snrs[i % 4]})
    np.savez(out / "test.npz", clean=clean, noisy=noisy, lengths=lengths, speakers=speakers)
    with open(out / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    feats = wave_features(noisy[0], SEED_SIGNAL)
    stats = {"min": float(feats.min()), "max": float(feats.max()), "signal": SEED_SIGNAL.to_dict(),
             "summary": {"splits": {"test": {"mixtures": n, "speakers": int(len(set(speakers.tolist())))}}}}
    (out / "stats.json").write_text(json.dumps(stats))
    return out
