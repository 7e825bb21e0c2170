"""Fixtures of the end-to-end training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.pipeline_helpers import run


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A dataset built from 14 real utterances and the real noise (once per test process)."""
    out = tmp_path_factory.mktemp("dataset")
    run("-m", "training.data", "build", "--librispeech", str(shared_data / "LibriSpeech"), "--esc50", str(shared_data / "ESC-50"),
        "--out", str(out), "--segment", "--mix", "snr", "--max-utterances", "14", "--quiet")
    return out
