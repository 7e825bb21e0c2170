"""Safe archive extraction: nothing may land outside the destination."""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from training.data.errors import DatasetError


def _check_name(name: str, dest: Path, archive: Path) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise DatasetError(f"unsafe archive {archive.name}: absolute member path {name!r}")
    if ".." in pure.parts:
        raise DatasetError(f"unsafe archive {archive.name}: member {name!r} escapes the destination")
    target = (dest / pure).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise DatasetError(f"unsafe archive {archive.name}: member {name!r} escapes the destination")


def extract_tar(archive: Path, dest: Path) -> list[str]:
    """Extract a (compressed) tar after checking every member; returns the member names.

    Rejects absolute paths, ``..`` components, links and special files.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                _check_name(m.name, dest, archive)
                if not (m.isfile() or m.isdir()):
                    raise DatasetError(f"unsafe archive {archive.name}: {m.name!r} is a link or special file")
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DatasetError(f"cannot extract {archive}: {exc}") from exc
    return [m.name for m in members]


def check_zip(zf: zipfile.ZipFile, dest: Path, archive: Path) -> None:
    """Reject zip members that escape ``dest`` or are symlinks."""
    for info in zf.infolist():
        _check_name(info.filename, dest, archive)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DatasetError(f"unsafe archive {archive.name}: {info.filename!r} is a symlink")


def extract_zip(archive: Path, dest: Path) -> list[str]:
    """Extract a zip after checking every member; returns the member names."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            check_zip(zf, dest, archive)
            zf.extractall(dest)
            return zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(f"cannot extract {archive}: {exc}") from exc
