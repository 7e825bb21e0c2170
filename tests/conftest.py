"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RAINCLEAN_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real LibriSpeech/ESC-50 subset beside the project (read in place)."""
    if not (SHARED_DATA / "LibriSpeech" / "SPEAKERS.TXT").exists():
        pytest.fail(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
