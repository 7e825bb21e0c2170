"""``download``: LibriSpeech (OpenSLR 12) and ESC-50 (GitHub archive of a pinned commit).

Each archive is streamed into ``<name>.part`` (resumed with an HTTP Range request
after an interruption), verified (MD5 for LibriSpeech, content for ESC-50) and only
then renamed to its final name, so a complete-looking archive is always a good one.
Extraction rejects members that would land outside the destination.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping, Sequence

from tqdm import tqdm

from training.data.errors import DatasetError
from training.data.extract import check_zip, extract_tar, extract_zip

log = logging.getLogger(__name__)

LIBRISPEECH_MIRROR = "https://www.openslr.org/resources/12/"
LIBRISPEECH_MD5: dict[str, str] = {
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
}
DEFAULT_SUBSETS: tuple[str, ...] = ("dev-clean", "test-clean", "train-clean-100")
ESC50_COMMIT = "33c8ce9eb2cf0b1c2f8bcf322eb349b6be34dbb6"
ESC50_URL = f"https://github.com/karoldvl/ESC-50/archive/{ESC50_COMMIT}.zip"
ESC50_CLIPS = 2000
ESC50_ROWS = 2000
USER_AGENT = "rainclean-dataset/0.1 (+urllib)"


class _Interrupted(Exception):
    """The transfer stopped before the end; the ``.part`` file can be resumed."""


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes START-END/TOTAL`` -> (START, TOTAL or None)."""
    m = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", value or "")
    if not m:
        return None
    return int(m.group(1)), (None if m.group(2) == "*" else int(m.group(2)))


def _transfer(url: str, part: Path, timeout: float, progress: bool, chunk: int) -> None:
    """Append the rest of ``url`` to ``part`` (Range from its current size)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return  # nothing left to fetch: the part is complete; verification decides
        raise DatasetError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, HTTPException) as exc:
        raise _Interrupted(f"cannot connect: {getattr(exc, 'reason', exc)}") from exc
    with resp:
        total: int | None = None
        length = resp.headers.get("Content-Length")
        if have and resp.status == 206:
            start, total = _content_range(resp.headers.get("Content-Range")) or (-1, None)
            if start != have:
                part.unlink()
                raise _Interrupted(f"server resumed at byte {start}, not {have}; restarting")
            mode = "ab"
        else:
            if have:
                log.info("server ignored the Range request; restarting %s", part.name)
            have, mode = 0, "wb"
        if total is None and length is not None:
            total = have + int(length)
        with open(part, mode) as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                          unit_divisor=1024, desc=part.name.removesuffix(".part"),
                                          disable=not progress) as bar:
            while True:
                try:
                    block = resp.read(chunk)
                except (HTTPException, OSError) as exc:
                    raise _Interrupted(f"connection lost after {have} bytes: {exc}") from exc
                if not block:
                    break
                fh.write(block)
                have += len(block)
                bar.update(len(block))
    if total is not None and have < total:
        raise _Interrupted(f"connection closed after {have} of {total} bytes")
    if total is not None and have > total:
        part.unlink()
        raise DatasetError(f"download of {url} returned more data ({have} bytes) than announced ({total})")


def fetch(
    url: str,
    dest: Path,
    verify: Callable[[Path], None] | None = None,
    retries: int = 2,
    timeout: float = 60.0,
    progress: bool = True,
    chunk: int = 1 << 16,
) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming and verifying; returns ``dest``.

    An existing ``dest`` is trusted (it was verified before it got its name). After
    ``retries`` failed resumes, the ``.part`` file is kept for the next run. A file
    that fails ``verify`` is deleted, never renamed.
    """
    dest = Path(dest)
    if dest.exists():
        log.info("%s already downloaded", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, timeout, progress, chunk)
            break
        except _Interrupted as exc:
            if attempt == retries:
                size = part.stat().st_size if part.exists() else 0
                raise DatasetError(
                    f"download of {url} interrupted ({exc}); {size} bytes kept in {part}, "
                    "run the command again to resume"
                ) from exc
            log.warning("download of %s interrupted (%s); resuming", url, exc)
    if verify is not None:
        try:
            verify(part)
        except DatasetError:
            part.unlink(missing_ok=True)
            raise
    os.replace(part, dest)
    return dest


def md5_verifier(expected: str, name: str) -> Callable[[Path], None]:
    def verify(path: Path) -> None:
        actual = md5_file(path)
        if actual.lower() != expected.lower():
            raise DatasetError(
                f"MD5 mismatch for {name}: expected {expected}, got {actual}; the corrupt download "
                "was deleted, run the command again"
            )
    return verify


def download_librispeech(
    subset: str,
    dest: Path,
    mirror: str = LIBRISPEECH_MIRROR,
    md5: str | None = None,
    extract: bool = True,
    **fetch_kwargs: object,
) -> Path:
    """Fetch, verify and extract ``<subset>.tar.gz``; returns the LibriSpeech root."""
    expected = md5 or LIBRISPEECH_MD5.get(subset)
    if expected is None:
        raise DatasetError(f"no MD5 known for LibriSpeech subset {subset!r}; pass one explicitly")
    dest = Path(dest)
    url = mirror.rstrip("/") + f"/{subset}.tar.gz"
    archive = fetch(url, dest / f"{subset}.tar.gz", md5_verifier(expected, f"{subset}.tar.gz"), **fetch_kwargs)
    root = dest / "LibriSpeech"
    marker = dest / f".{subset}.extracted"
    if extract and not marker.exists():
        names = extract_tar(archive, dest)
        if not any(n.startswith(f"LibriSpeech/{subset}/") for n in names):
            raise DatasetError(f"{archive} does not contain LibriSpeech/{subset}/ (not an OpenSLR 12 archive?)")
        marker.touch()
    return root


def _zip_top(zf: zipfile.ZipFile, archive: Path) -> str:
    tops = {PurePosixPath(n).parts[0] for n in zf.namelist() if n.strip("/")}
    if len(tops) != 1 or not next(iter(tops)).startswith("ESC-50"):
        raise DatasetError(f"{archive.name}: expected one top folder ESC-50-<commit>/, found {sorted(tops)[:5]}")
    return tops.pop()


def esc50_verifier(expected_clips: int, expected_rows: int, dest: Path) -> Callable[[Path], None]:
    """Check the zip by content: ``audio/*.wav`` count and ``meta/esc50.csv`` data rows."""
    def verify(path: Path) -> None:
        try:
            with zipfile.ZipFile(path) as zf:
                check_zip(zf, dest, path)
                top = _zip_top(zf, path)
                clips = sum(1 for n in zf.namelist() if re.fullmatch(rf"{re.escape(top)}/audio/[^/]+\.wav", n))
                try:
                    text = zf.read(f"{top}/meta/esc50.csv").decode("utf-8")
                except KeyError:
                    raise DatasetError(f"ESC-50 archive lacks {top}/meta/esc50.csv") from None
                rows = sum(1 for r in csv.DictReader(io.StringIO(text)) if r.get("filename"))
        except zipfile.BadZipFile as exc:
            raise DatasetError(f"ESC-50 download is not a valid zip ({exc}); it was deleted") from exc
        if clips != expected_clips or rows != expected_rows:
            raise DatasetError(
                f"ESC-50 archive incomplete: {clips} clips in audio/ and {rows} rows in meta/esc50.csv, "
                f"expected {expected_clips} and {expected_rows}; it was deleted"
            )
    return verify


def download_esc50(
    dest: Path,
    url: str = ESC50_URL,
    expected_clips: int = ESC50_CLIPS,
    expected_rows: int = ESC50_ROWS,
    extract: bool = True,
    **fetch_kwargs: object,
) -> Path:
    """Fetch and check the ESC-50 zip, extract it to ``dest/ESC-50``; returns that root."""
    dest = Path(dest)
    name = PurePosixPath(urllib.parse.urlparse(url).path).name or "ESC-50.zip"
    archive = fetch(url, dest / f"ESC-50-{name}", esc50_verifier(expected_clips, expected_rows, dest),
                    **fetch_kwargs)
    root = dest / "ESC-50"
    if extract and not (root / "meta" / "esc50.csv").exists():
        staging = dest / ".ESC-50.extracting"
        shutil.rmtree(staging, ignore_errors=True)
        extract_zip(archive, staging)
        with zipfile.ZipFile(archive) as zf:
            top = _zip_top(zf, archive)
        shutil.rmtree(root, ignore_errors=True)
        os.replace(staging / top, root)
        shutil.rmtree(staging, ignore_errors=True)
    return root


def download_all(
    dest: Path,
    subsets: Sequence[str] = DEFAULT_SUBSETS,
    mirror: str = LIBRISPEECH_MIRROR,
    esc50_url: str = ESC50_URL,
    md5: Mapping[str, str] | None = None,
    esc50_clips: int = ESC50_CLIPS,
    esc50_rows: int = ESC50_ROWS,
    esc50: bool = True,
    **fetch_kwargs: object,
) -> dict[str, Path]:
    """Download every requested corpus; returns the roots to pass to ``build``."""
    roots: dict[str, Path] = {}
    for subset in subsets:
        roots["librispeech"] = download_librispeech(subset, dest, mirror, (md5 or {}).get(subset), **fetch_kwargs)
    if esc50:
        roots["esc50"] = download_esc50(dest, esc50_url, esc50_clips, esc50_rows, **fetch_kwargs)
    return roots
