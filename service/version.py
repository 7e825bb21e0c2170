"""The installed package version (``0.1.0`` when running from a source tree)."""

from __future__ import annotations

try:
    from importlib.metadata import version

    __version__ = version("rainclean")
except Exception:  # not installed
    __version__ = "0.1.0"
