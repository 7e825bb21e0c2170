"""rainclean inference service: FastAPI + onnxruntime, no TensorFlow."""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("rainclean")
except Exception:  # not installed (running from a source tree)
    __version__ = "0.1.0"
