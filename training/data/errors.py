"""The one exception type of the dataset pipeline."""

from __future__ import annotations


class DatasetError(Exception):
    """Bad input or a failed download: the CLI prints the message and exits with code 2."""
