"""Readers for the two corpora in their upstream layouts (LibriSpeech, ESC-50)."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from training.data.errors import DatasetError

log = logging.getLogger(__name__)

#: ESC-50 classes used as noise: category name -> target id.
NOISE_CATEGORIES: dict[str, int] = {"rain": 10, "thunderstorm": 19}


@dataclass(frozen=True)
class Utterance:
    """One LibriSpeech utterance file."""

    speaker: int
    chapter: int
    utterance: str  # file stem, e.g. "19-198-0001"
    path: Path


@dataclass(frozen=True)
class NoiseClip:
    """One ESC-50 clip (a row of meta/esc50.csv)."""

    filename: str
    src_file: str
    category: str
    path: Path


def read_speakers(root: Path) -> dict[int, str]:
    """Speaker ID -> sex ("F"/"M") from ``SPEAKERS.TXT`` (``;`` starts a comment line)."""
    path = Path(root) / "SPEAKERS.TXT"
    if not path.is_file():
        raise DatasetError(f"SPEAKERS.TXT not found in LibriSpeech root {root} (expected {path})")
    sexes: dict[int, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 2 or not fields[0].isdigit():
            log.warning("SPEAKERS.TXT line %d not understood, ignored: %r", lineno, line)
            continue
        sexes[int(fields[0])] = fields[1].upper()
    return sexes


def female_speakers(root: Path) -> set[int]:
    """IDs of the female speakers listed in ``SPEAKERS.TXT``; error if there are none."""
    sexes = read_speakers(root)
    female = {spk for spk, sex in sexes.items() if sex == "F"}
    if not female:
        raise DatasetError(
            f"no female speakers in {Path(root) / 'SPEAKERS.TXT'} ({len(sexes)} speakers listed, none with SEX=F)"
        )
    return female


def find_utterances(root: Path, speakers: set[int]) -> list[Utterance]:
    """All ``<subset>/<speaker>/<chapter>/*.flac`` files of ``speakers``, sorted."""
    found = []
    for path in sorted(Path(root).glob("*/*/*/*.flac")):
        spk_dir, chap_dir = path.parent.parent.name, path.parent.name
        if not (spk_dir.isdigit() and chap_dir.isdigit()) or int(spk_dir) not in speakers:
            continue
        found.append(Utterance(int(spk_dir), int(chap_dir), path.stem, path))
    if not found:
        raise DatasetError(f"no .flac files of female speakers under {root} (<subset>/<speaker>/<chapter>/*.flac)")
    return found


def audio_seconds(path: Path) -> float:
    """Duration from the file header (raises :class:`RuntimeError`/``sf.LibsndfileError`` if unreadable)."""
    info = sf.info(str(path))
    if info.samplerate <= 0 or info.frames <= 0:
        raise RuntimeError(f"{path}: no audio frames")
    return info.frames / info.samplerate


def read_noise_clips(root: Path, categories: dict[str, int] = NOISE_CATEGORIES) -> list[NoiseClip]:
    """ESC-50 rows of the noise categories whose audio file exists; error if none."""
    root = Path(root)
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise DatasetError(f"ESC-50 metadata not found: {meta}")
    with meta.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"filename", "category", "target", "src_file"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{meta} lacks columns {sorted(missing)}")
        rows = [
            r for r in reader
            if r["category"] in categories or r["target"].strip() in {str(t) for t in categories.values()}
        ]
    if not rows:
        raise DatasetError(f"no {' or '.join(categories)} rows in {meta}: no matching noise")
    target_to_cat = {str(t): c for c, t in categories.items()}
    clips, absent = [], 0
    for r in rows:
        path = root / "audio" / r["filename"]
        if not path.is_file():
            absent += 1
            continue
        category = r["category"] if r["category"] in categories else target_to_cat[r["target"].strip()]
        clips.append(NoiseClip(r["filename"], r["src_file"], category, path))
    if absent:
        log.warning("%d %s rows of esc50.csv have no file in %s", absent, "/".join(categories), root / "audio")
    if not clips:
        raise DatasetError(f"none of the {len(rows)} rain/thunderstorm files of {meta} exist in {root / 'audio'}")
    return sorted(clips, key=lambda c: c.filename)
