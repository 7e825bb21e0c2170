"""The CLI's folder mode: a tree of real noisy recordings (LibriSpeech + ESC-50 rain) and a corrupt file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from service import cli
from service.settings import DEFAULT_MODEL_PATH
from tests.service.noisy_tree import CORRUPT, write_noisy_tree

MODEL = str(DEFAULT_MODEL_PATH)
#: relative path, seconds, sample rate, channels, (format, subtype)
TREE = [
    ("one.wav", 1.0, 16000, 1, ("WAV", "PCM_16")),
    ("a/two.flac", 1.5, 16000, 1, ("FLAC", "PCM_16")),
    ("a/b/three.wav", 1.2, 22050, 2, ("WAV", "PCM_24")),
    ("c/four.flac", 2.0, 44100, 1, ("FLAC", "PCM_24")),
    ("c/d/five.ogg", 1.0, 16000, 1, ("OGG", "VORBIS")),
]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    return write_noisy_tree(tmp_path_factory.mktemp("tree") / "in", shared_data, TREE)


def run(*args: object) -> int:
    return cli.main([str(a) for a in args] + ["--model", MODEL])


def outputs(root: Path) -> dict[str, bytes]:
    """Output files by relative path: their bytes, or for OGG (random stream serial numbers) their samples."""
    def content(p: Path) -> bytes:
        return sf.read(str(p), dtype="float32")[0].tobytes() if p.suffix == ".ogg" else p.read_bytes()

    return {str(p.relative_to(root)): content(p) for p in sorted(root.rglob("*")) if p.is_file()}


def counts(err: str) -> tuple[int, int, int]:
    m = re.search(r"done (\d+), skipped (\d+).*?, failed (\d+)", err)
    assert m, err
    return int(m[1]), int(m[2]), int(m[3])


@pytest.fixture(scope="module")
def first_run(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("out") / "clean"
    return out, run(tree, "-o", out)


def test_tree_is_mirrored_with_formats_kept(tree: Path, first_run: tuple[Path, int]) -> None:
    out, rc = first_run
    assert rc == 1  # the corrupt file failed; everything else was written
    assert sorted(outputs(out)) == sorted(rel for rel, *_ in TREE)
    for rel, seconds, sr, channels, (fmt, subtype) in TREE:
        src, dst = sf.info(str(tree / rel)), sf.info(str(out / rel))
        assert (dst.format, dst.subtype, dst.samplerate, dst.channels) == (fmt, subtype, sr, channels)
        assert dst.frames == src.frames
        y, _ = sf.read(str(out / rel), always_2d=True)
        x, _ = sf.read(str(tree / rel), always_2d=True)
        assert 0 < np.sqrt(np.mean(y**2)) < np.sqrt(np.mean(x**2))  # something was removed, not everything


def test_outputs_equal_the_single_file_cli(tree: Path, first_run: tuple[Path, int], tmp_path: Path) -> None:
    out, _ = first_run
    for fmt in ("wav", "flac"):
        files = [tree / rel for rel, *_ in TREE if rel.endswith(f".{fmt}")]
        assert run(*files, "-o", tmp_path / fmt, "--format", fmt) == 0
        for src in files:
            rel = src.relative_to(tree)
            assert (tmp_path / fmt / src.name).read_bytes() == (out / rel).read_bytes(), rel


def test_corrupt_file_is_counted_and_named(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tree, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert counts(err) == (5, 0, 1)
    (line,) = [ln for ln in err.splitlines() if ln.startswith("failed ") and "broken.wav" in ln]
    assert "could not decode audio" in line
    # resumable: a second run skips every output and retries only the failure
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert run(tree, "-o", tmp_path / "out") == 1
    assert counts(capsys.readouterr().err) == (0, 5, 1)
    assert {p: p.stat().st_mtime_ns for p in before} == before
    # --overwrite redoes them, to the same bytes
    first = outputs(tmp_path / "out")
    for p in before:
        os.utime(p, ns=(0, 0))
    assert run(tree, "-o", tmp_path / "out", "--overwrite") == 1
    assert counts(capsys.readouterr().err) == (5, 0, 1)
    assert all(p.stat().st_mtime_ns > 0 for p in before)
    assert outputs(tmp_path / "out") == first
    assert not list((tmp_path / "out").rglob(".*.part"))


def test_two_jobs_give_the_same_outputs(tree: Path, first_run: tuple[Path, int], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = first_run
    assert run(tree, "-o", tmp_path / "parallel", "--jobs", "2") == 1
    assert counts(capsys.readouterr().err) == (5, 0, 1)
    assert outputs(tmp_path / "parallel") == outputs(out)


def test_format_option_and_an_output_folder_inside_the_input(tree: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    src = tmp_path / "in"
    shutil.copytree(tree, src)
    (src / CORRUPT).unlink()
    assert run(src, "-o", src / "clean", "--format", "flac") == 0
    assert sorted(outputs(src / "clean")) == sorted(str(Path(rel).with_suffix(".flac")) for rel, *_ in TREE)
    assert {sf.info(str(p)).format for p in (src / "clean").rglob("*.flac")} == {"FLAC"}
    capsys.readouterr()
    assert run(src, "-o", src / "clean", "--format", "flac") == 0  # its own outputs are not inputs
    assert counts(capsys.readouterr().err) == (0, 5, 0)
