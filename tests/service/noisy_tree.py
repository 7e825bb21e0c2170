"""A small tree of real noisy recordings (LibriSpeech speech + ESC-50 rain) plus a corrupt file,
for the folder modes of the CLI and the batch job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from denoise_core.signal import load_mono, mix_at_snr

#: relative path, seconds, sample rate, channels, (format, subtype)
Entry = tuple[str, float, int, int, tuple[str, str]]
CORRUPT = "c/broken.wav"


def write_noisy_tree(root: Path, shared_data: Path, entries: list[Entry]) -> Path:
    """Write ``entries`` as 5-dB mixtures under ``root``, plus ``CORRUPT`` and a text file."""
    speech_files = sorted((shared_data / "LibriSpeech").glob("*/*/*/*.flac"))[:4]
    rain_files = sorted((shared_data / "ESC-50" / "audio").glob("*-10.wav"))[:4]
    assert len(speech_files) == len(rain_files) == 4, f"too little data under {shared_data}"
    for i, (rel, seconds, sr, channels, (fmt, subtype)) in enumerate(entries):
        n = int(seconds * sr)
        cols = []
        for c in range(channels):
            speech = load_mono(speech_files[(i + c) % 4], sr)[sr // 2: sr // 2 + n]
            rain = load_mono(rain_files[(i + c) % 4], sr)[:n]
            cols.append(mix_at_snr(speech, rain, snr_db=5.0)[0])
        mixture = 0.5 * np.stack(cols, axis=1) / np.max(np.abs(cols))
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, mixture, sr, format=fmt, subtype=subtype)
    (root / CORRUPT).parent.mkdir(parents=True, exist_ok=True)
    (root / CORRUPT).write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    (root / "a").mkdir(parents=True, exist_ok=True)
    (root / "a" / "notes.txt").write_text("not audio, not picked up")
    return root
