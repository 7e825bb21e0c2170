"""Dataset pipeline: download LibriSpeech/ESC-50 and build the split, mixed training set.

``python -m training.data download`` fetches and safely extracts the corpora;
``python -m training.data build`` turns them into the arrays, ``manifest.csv`` and
``stats.json`` the training and evaluation code read (see :mod:`training.data.build`).
"""

from training.data.errors import DatasetError

__all__ = ["DatasetError"]
