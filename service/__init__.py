"""rainclean inference service: FastAPI + onnxruntime, no TensorFlow."""

from service.version import __version__

__all__ = ["__version__"]
