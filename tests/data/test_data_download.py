"""``download`` against a local HTTP server serving archives in the upstream formats."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import soundfile as sf

from training.data import DatasetError
from training.data.__main__ import main
from training.data.download import download_esc50, download_librispeech

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class Server:
    """Threaded 127.0.0.1 server: Range support, optional dropped connections, request log."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drop_after: dict[str, int] = {}  # path -> bytes sent before dropping (once)
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append((self.path, self.headers.get("Range")))
                data = outer.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if m:
                    start = int(m.group(1))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                drop = outer.drop_after.pop(self.path, None)
                if drop is not None:
                    self.wfile.write(data[start : start + drop])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as s:
        yield s


def _add_tar(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def librispeech_tar(shared: Path, subset: str = "dev-clean", n: int = 3, extra: tarfile.TarInfo | None = None,
                    extra_data: bytes = b"") -> bytes:
    """``<subset>.tar.gz`` as OpenSLR ships it: ``LibriSpeech/SPEAKERS.TXT`` + ``LibriSpeech/<subset>/...``."""
    picked: dict[str, Path] = {}
    for path in sorted((shared / "LibriSpeech").glob("*/*/*/*.flac")):
        if path.parent.parent.name not in picked and 3.2 <= sf.info(str(path)).duration <= 4.8:
            picked[path.parent.parent.name] = path
        if len(picked) == n:
            break
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        speakers = "".join(f"{spk:<5}| F | {subset:<16} | 8.00 | Reader\n" for spk in picked)
        _add_tar(tar, "LibriSpeech/SPEAKERS.TXT", (";ID  |SEX| SUBSET |MINUTES| NAME\n" + speakers).encode())
        for spk, path in picked.items():
            chapter = path.parent.name
            _add_tar(tar, f"LibriSpeech/{subset}/{spk}/{chapter}/{path.name}", path.read_bytes())
            _add_tar(tar, f"LibriSpeech/{subset}/{spk}/{chapter}/{spk}-{chapter}.trans.txt",
                     f"{path.stem} SOME WORDS\n".encode())
        if extra is not None:
            tar.addfile(extra, io.BytesIO(extra_data) if extra.isfile() else None)
    return buf.getvalue()


def esc50_zip(shared: Path, evil: str | None = None) -> tuple[bytes, int]:
    """The GitHub archive zip: ``ESC-50-<commit>/meta/esc50.csv`` + ``audio/*.wav``; returns (bytes, clips)."""
    with open(shared / "ESC-50" / "meta" / "esc50.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    keep, seen = [], set()
    for r in rows:
        if (r["category"], r["src_file"]) not in seen and sum(c == r["category"] for c, _ in seen) < 3:
            seen.add((r["category"], r["src_file"]))
            keep.append(r)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(keep)
    buf = io.BytesIO()
    top = f"ESC-50-{COMMIT}"
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{top}/README.md", "ESC-50\n")
        zf.writestr(f"{top}/meta/esc50.csv", text.getvalue())
        for r in keep:
            zf.write(shared / "ESC-50" / "audio" / r["filename"], f"{top}/audio/{r['filename']}")
        if evil:
            zf.writestr(evil, "pwned")
    return buf.getvalue(), len(keep)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_download_verify_extract_then_build(shared_data: Path, server: Server, tmp_path: Path, capsys) -> None:
    tar = librispeech_tar(shared_data)
    zdata, clips = esc50_zip(shared_data)
    server.files["/12/dev-clean.tar.gz"] = tar
    server.files[f"/ESC-50/archive/{COMMIT}.zip"] = zdata
    dest = tmp_path / "dl"
    args = ["download", "--subsets", "dev-clean", "--dest", str(dest), "--librispeech-mirror", server.url + "/12/",
            "--esc50-url", f"{server.url}/ESC-50/archive/{COMMIT}.zip", "--md5", f"dev-clean={_md5(tar)}",
            "--esc50-clips", str(clips), "--esc50-rows", str(clips)]
    assert main(args) == 0
    assert (dest / "dev-clean.tar.gz").read_bytes() == tar
    assert (dest / "LibriSpeech" / "SPEAKERS.TXT").is_file()
    assert len(list((dest / "LibriSpeech" / "dev-clean").glob("*/*/*.flac"))) == 3
    assert len(list((dest / "ESC-50" / "audio").glob("*.wav"))) == clips
    assert not list(dest.glob("*.part"))
    # a second run is a no-op: nothing is fetched again
    n = len(server.requests)
    assert main(args) == 0 and len(server.requests) == n
    # the downloaded corpora are in the layout `build` reads
    out = tmp_path / "ds"
    assert main(["build", "--librispeech", str(dest / "LibriSpeech"), "--esc50", str(dest / "ESC-50"),
                 "--out", str(out), "--quiet"]) == 0
    assert "mixtures" in capsys.readouterr().out
    assert (out / "manifest.csv").is_file() and (out / "stats.json").is_file()


def test_md5_mismatch_leaves_no_archive(shared_data: Path, server: Server, tmp_path: Path, capsys) -> None:
    server.files["/12/dev-clean.tar.gz"] = librispeech_tar(shared_data, n=1)
    with pytest.raises(DatasetError, match="MD5 mismatch"):
        download_librispeech("dev-clean", tmp_path, server.url + "/12/", md5="0" * 32, progress=False)
    assert not (tmp_path / "dev-clean.tar.gz").exists()
    assert not (tmp_path / "dev-clean.tar.gz.part").exists()
    assert not (tmp_path / "LibriSpeech").exists()
    # through the CLI: the real (default) MD5 does not match this small archive -> exit code 2
    code = main(["download", "--subsets", "dev-clean", "--dest", str(tmp_path), "--no-esc50",
                 "--librispeech-mirror", server.url + "/12"])
    err = capsys.readouterr().err
    assert code == 2 and "MD5 mismatch" in err and "42e2234ba48799c1f50f24a7926300a1" in err
    assert "Traceback" not in err and not (tmp_path / "dev-clean.tar.gz").exists()


def test_interrupted_download_resumes_with_range(shared_data: Path, server: Server, tmp_path: Path) -> None:
    tar = librispeech_tar(shared_data)
    cut = len(tar) // 2
    server.files["/12/dev-clean.tar.gz"] = tar
    server.drop_after["/12/dev-clean.tar.gz"] = cut
    kwargs = dict(mirror=server.url + "/12/", md5=_md5(tar), progress=False, timeout=10)
    with pytest.raises(DatasetError, match="interrupted"):
        download_librispeech("dev-clean", tmp_path, retries=0, **kwargs)
    part = tmp_path / "dev-clean.tar.gz.part"
    assert part.stat().st_size == cut
    assert not (tmp_path / "dev-clean.tar.gz").exists()
    download_librispeech("dev-clean", tmp_path, retries=0, **kwargs)
    assert server.requests[-1] == ("/12/dev-clean.tar.gz", f"bytes={cut}-")
    assert (tmp_path / "dev-clean.tar.gz").read_bytes() == tar and not part.exists()
    assert (tmp_path / "LibriSpeech" / "SPEAKERS.TXT").is_file()


def test_interruption_is_resumed_within_one_run(shared_data: Path, server: Server, tmp_path: Path) -> None:
    zdata, clips = esc50_zip(shared_data)
    path = f"/ESC-50/archive/{COMMIT}.zip"
    server.files[path] = zdata
    server.drop_after[path] = 1000
    root = download_esc50(tmp_path, server.url + path, clips, clips, retries=1, progress=False)
    assert [r for _, r in server.requests] == [None, "bytes=1000-"]
    assert (root / "meta" / "esc50.csv").is_file()


def test_esc50_content_check(shared_data: Path, server: Server, tmp_path: Path) -> None:
    zdata, clips = esc50_zip(shared_data)
    path = f"/ESC-50/archive/{COMMIT}.zip"
    server.files[path] = zdata
    with pytest.raises(DatasetError, match=f"{clips} clips.*expected 2000"):
        download_esc50(tmp_path, server.url + path, progress=False)  # real counts are the defaults
    assert not list(tmp_path.glob("*.zip*")) and not (tmp_path / "ESC-50").exists()


def test_malicious_archives_are_rejected(shared_data: Path, server: Server, tmp_path: Path) -> None:
    evil = tarfile.TarInfo("LibriSpeech/dev-clean/../../../escaped.txt")
    evil.size = 5
    tar = librispeech_tar(shared_data, n=1, extra=evil, extra_data=b"pwned")
    server.files["/12/dev-clean.tar.gz"] = tar
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="escapes the destination"):
        download_librispeech("dev-clean", dest, server.url + "/12/", md5=_md5(tar), progress=False)
    assert not list(tmp_path.rglob("escaped.txt"))

    link = tarfile.TarInfo("LibriSpeech/dev-clean/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    tar = librispeech_tar(shared_data, "test-clean", n=1, extra=link)
    server.files["/12/test-clean.tar.gz"] = tar
    with pytest.raises(DatasetError, match="link"):
        download_librispeech("test-clean", dest, server.url + "/12/", md5=_md5(tar), progress=False)

    zdata, clips = esc50_zip(shared_data, evil=f"ESC-50-{COMMIT}/../../zip-escaped.txt")
    server.files["/evil.zip"] = zdata
    with pytest.raises(DatasetError, match="escapes the destination"):
        download_esc50(dest, server.url + "/evil.zip", clips, clips, progress=False)
    assert not list(tmp_path.rglob("zip-escaped.txt"))
    assert not (dest / "ESC-50").exists()
