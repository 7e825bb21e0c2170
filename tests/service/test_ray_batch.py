"""The Ray Data batch job (`python -m service.batch`) on a local 2-CPU Ray instance.

A small tree of real noisy recordings (LibriSpeech speech + ESC-50 rain, WAV and FLAC in nested
folders) and one corrupt file: the tree is mirrored, every output is the CLI's output for the
same file byte for byte, the corrupt file is reported, and a second run denoises nothing.
Ray is started once for the module (about 3-5 s here); the whole module takes ~20 s on 2 cores.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import ray  # the batch extra, installed by make test
import soundfile as sf

from service import batch, cli
from service.settings import DEFAULT_MODEL_PATH
from tests.service.noisy_tree import CORRUPT, write_noisy_tree

#: relative path, seconds, sample rate, channels, (format, subtype)
TREE = [
    ("one.wav", 1.0, 16000, 1, ("WAV", "PCM_16")),
    ("a/two.flac", 1.5, 16000, 1, ("FLAC", "PCM_16")),
    ("a/b/three.wav", 1.2, 22050, 2, ("WAV", "PCM_24")),
    ("c/four.flac", 2.0, 44100, 1, ("FLAC", "PCM_24")),
]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance (2 CPUs) for the module; `service.batch.main` reuses it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    return write_noisy_tree(tmp_path_factory.mktemp("tree") / "in", shared_data, TREE)


def files(root: Path) -> dict[str, bytes]:
    """The audio outputs under ``root`` (the batch job's failure ledger left out)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != batch.LEDGER}


def counts(err: str) -> tuple[int, int, int, int]:
    """done, skipped (output exists), failed, known failures skipped."""
    m = re.search(r"done (\d+), skipped (\d+).*?, failed (\d+), known failures skipped (\d+)", err)
    assert m, err
    return int(m[1]), int(m[2]), int(m[3]), int(m[4])


@pytest.fixture(scope="module")
def cli_outputs(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("cli") / "clean"
    assert cli.main([str(tree), "-o", str(out), "--model", str(DEFAULT_MODEL_PATH)]) == 1  # the corrupt file
    return files(out)


@pytest.fixture(scope="module")
def first_run(local_ray: None, tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    out = tmp_path_factory.mktemp("ray") / "clean"
    rc, err = _main(tree, out)
    return out, rc, err


def _main(tree: Path, out: Path, *extra: str) -> tuple[int, str]:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        rc = batch.main([str(tree), str(out), "--actors", "2", "--model", str(DEFAULT_MODEL_PATH), *extra])
    return rc, buf.getvalue()


def test_tree_is_mirrored_and_the_corrupt_file_reported(tree: Path, first_run: tuple[Path, int, str]) -> None:
    out, rc, err = first_run
    assert rc == 1, err  # the corrupt file failed; the others were written
    assert sorted(files(out)) == sorted(rel for rel, *_ in TREE)  # no .part leftovers, notes.txt ignored
    assert counts(err) == (len(TREE), 0, 1, 0)
    assert list(batch.read_ledger(out)) == [str(tree / CORRUPT)]
    assert re.search(rf"failed \S*{re.escape(CORRUPT)}: could not decode audio", err), err
    assert "2 actor(s) on 2 CPUs" in err
    m = re.search(r"(\d+\.\d+) audio hours per core-hour", err)
    assert m and float(m[1]) > 0, err
    for rel, seconds, sr, channels, (fmt, subtype) in TREE:
        info = sf.info(str(out / rel))
        assert (info.format, info.subtype, info.samplerate, info.channels) == (fmt, subtype, sr, channels)
        assert info.frames == int(seconds * sr)


def test_outputs_equal_the_clis(first_run: tuple[Path, int, str], cli_outputs: dict[str, bytes]) -> None:
    out, _, _ = first_run
    assert files(out) == cli_outputs  # bit for bit: the same denoise_bytes path and encoder


def test_second_run_skips_everything(tree: Path, first_run: tuple[Path, int, str]) -> None:
    out, _, _ = first_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    rc, err = _main(tree, out)
    # every output exists, and the corrupt file is remembered as failed while it is unchanged
    assert counts(err) == (0, len(TREE), 0, 1), err
    assert rc == 0 and re.search(rf"failed before and unchanged .*{re.escape(CORRUPT)}: could not decode", err), err
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    # asked to, it tries the corrupt file again (and it fails again)
    rc, err = _main(tree, out, "--retry-failed")
    assert counts(err) == (0, len(TREE), 1, 0) and rc == 1, err
