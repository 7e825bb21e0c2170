"""Bad input to ``build``: clear messages, exit code 2, corrupt audio skipped and counted."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from training.data import DatasetError
from training.data.__main__ import main
from training.data.build import BuildConfig, build


def _short_utterances(shared: Path, n: int) -> list[Path]:
    """``n`` real 3-5 s utterances of distinct speakers."""
    picked: dict[str, Path] = {}
    for path in sorted((shared / "LibriSpeech").glob("*/*/*/*.flac")):
        spk = path.parent.parent.name
        if spk not in picked and 3.2 <= sf.info(str(path)).duration <= 4.8:
            picked[spk] = path
        if len(picked) == n:
            break
    assert len(picked) == n
    return list(picked.values())


def make_librispeech(shared: Path, root: Path, n_speakers: int = 3, sex: str = "F") -> Path:
    """A tiny LibriSpeech tree with real files of ``n_speakers`` speakers."""
    lines = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for src in _short_utterances(shared, n_speakers):
        rel = src.relative_to(shared / "LibriSpeech")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, root / rel)
        lines.append(f"{rel.parts[1]:<5}| {sex} | {rel.parts[0]:<16} | 25.00 | Someone")
    (root / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n")
    return root


def make_esc50(shared: Path, root: Path, categories: tuple[str, ...] = ("rain", "thunderstorm")) -> Path:
    """A tiny ESC-50 tree: three source recordings per category (real clips)."""
    with open(shared / "ESC-50" / "meta" / "esc50.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep, seen = [], set()
    for r in rows:
        if r["category"] in categories and sum(1 for c, _ in seen if c == r["category"]) < 3:
            if (r["category"], r["src_file"]) not in seen:
                seen.add((r["category"], r["src_file"]))
                keep.append(r)
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    with open(root / "meta" / "esc50.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(keep or [dict(rows[0], category="dog", target="0")])
    for r in keep:
        shutil.copy(shared / "ESC-50" / "audio" / r["filename"], root / "audio" / r["filename"])
    return root


def _cli(ls: Path, esc: Path, out: Path, capsys) -> tuple[int, str]:
    code = main(["build", "--librispeech", str(ls), "--esc50", str(esc), "--out", str(out), "--quiet"])
    return code, capsys.readouterr().err


def test_missing_speakers_txt(shared_data: Path, tmp_path: Path, capsys) -> None:
    ls = make_librispeech(shared_data, tmp_path / "LibriSpeech")
    (ls / "SPEAKERS.TXT").unlink()
    code, err = _cli(ls, shared_data / "ESC-50", tmp_path / "out", capsys)
    assert code == 2
    assert "SPEAKERS.TXT not found" in err and "Traceback" not in err


def test_only_male_speakers(shared_data: Path, tmp_path: Path, capsys) -> None:
    ls = make_librispeech(shared_data, tmp_path / "LibriSpeech", sex="M")
    code, err = _cli(ls, shared_data / "ESC-50", tmp_path / "out", capsys)
    assert code == 2 and "no female speakers" in err


def test_esc50_without_rain_or_thunderstorm(shared_data: Path, tmp_path: Path, capsys) -> None:
    ls = make_librispeech(shared_data, tmp_path / "LibriSpeech")
    esc = make_esc50(shared_data, tmp_path / "ESC-50", categories=())
    code, err = _cli(ls, esc, tmp_path / "out", capsys)
    assert code == 2 and "no matching noise" in err
    # rows present but their files missing
    esc2 = make_esc50(shared_data, tmp_path / "ESC-50b")
    for wav in (esc2 / "audio").iterdir():
        wav.unlink()
    code, err = _cli(ls, esc2, tmp_path / "out", capsys)
    assert code == 2 and "rain/thunderstorm files" in err


def test_corrupt_flac_is_skipped_and_counted(shared_data: Path, tmp_path: Path) -> None:
    ls = make_librispeech(shared_data, tmp_path / "LibriSpeech", n_speakers=4)
    victim = sorted(ls.glob("*/*/*/*.flac"))[0]
    victim.write_bytes(b"fLaC" + b"\x00garbage" * 100)
    truncated = sorted(ls.glob("*/*/*/*.flac"))[1]
    truncated.write_bytes(truncated.read_bytes()[:2000])  # valid header, data cut short
    esc = make_esc50(shared_data, tmp_path / "ESC-50")
    stats = build(BuildConfig(ls, esc, tmp_path / "out", progress=False))
    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert saved["summary"]["skipped_corrupt"] == stats["summary"]["skipped_corrupt"] >= 1
    assert str(victim) in saved["summary"]["skipped_files"]
    mixtures = sum(saved["summary"][s]["mixtures"] for s in ("train", "val", "test"))
    assert mixtures == 4 - saved["summary"]["skipped_corrupt"]


def test_invalid_settings_raise_dataset_error(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="--snr-range"):
        build(BuildConfig(shared_data, shared_data, tmp_path, snr_range=(10.0, -5.0)))
    with pytest.raises(DatasetError, match="--max-seconds"):
        build(BuildConfig(shared_data, shared_data, tmp_path, max_seconds=6.0))
