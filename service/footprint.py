"""Footprint of the service: image size, start to ``/ready``, idle RSS (not a test).

    python -m service.footprint --local [--repeat 3]          # `make serve`-style start
    python -m service.footprint --container [--repeat 3]      # the image built by container-smoke.sh
    make footprint            # the local figures
    make container-footprint  # ../shared/tools/container-smoke.sh . '<this> --container'

``--local`` starts ``<python> -m service`` (default: this interpreter, i.e.
``.venv/bin/python`` under make) on 127.0.0.1 and a free port, times the launch to
the first ``GET /ready`` = 200, waits ``--settle`` seconds and reads the process's
``VmRSS`` from ``/proc``; then stops it with SIGTERM. Repeated ``--repeat`` times.

``--container`` uses rootful podman with the storage of ``container-smoke.sh``
(``CONTAINERS_CONF``/``CONTAINERS_STORAGE_CONF`` as that script exports them to its
smoke command, or derived from ``CONTAINER_SMOKE_HOME``, default
``/var/tmp/container-smoke``). It prints the image's size, what it adds to its base
(the difference of ``podman image inspect``'s sizes, and the layers above the base
from ``podman history``), and the largest installed distributions; then, ``--repeat``
times, creates a container with host networking on a free port, times ``podman
start`` to the first ``GET /ready`` = 200 and reads the idle ``VmRSS`` of the
container's main process (the service; ``CMD python -m service``) from the host's
``/proc``. Image: ``--image`` or ``$SMOKE_IMAGE`` (set by container-smoke.sh);
base: ``--base`` (default ``localhost/python-base:3.11``, container-smoke's stand-in
for ``python:3.11-slim``).

Loopback only: nothing but 127.0.0.1 is contacted. Sizes are in MB = 10^6 bytes.
The targets (issue 19) are printed beside the figures; ``--check`` makes a missed
target exit with status 1. Only the standard library is used, so any Python runs it.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1_000_000

#: issue 19's targets
TARGET_OVER_BASE_MB = 150.0
TARGET_READY_S = 3.0
TARGET_IDLE_RSS_MB = 150.0

DEFAULT_BASE = "localhost/python-base:3.11"
OWNER_LABEL = "io.container-smoke.owner"  # container-smoke.sh removes ours if we die


# ---------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 1.0) -> int | None:
    req = urllib.request.Request(url)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
    try:
        with opener.open(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return None


def wait_ready(port: int, t0: float, timeout: float, alive) -> float:
    """Seconds from ``t0`` (perf_counter) to the first ``/ready`` = 200."""
    url = f"http://127.0.0.1:{port}/ready"
    deadline = t0 + timeout
    while True:
        if http_status(url) == 200:
            return time.perf_counter() - t0
        if not alive():
            raise RuntimeError("the service exited before /ready answered 200")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"/ready did not answer 200 within {timeout:.0f} s")
        time.sleep(0.02)


def denoise_once(port: int, seconds: float = 1.0, rate: int = 16000) -> str:
    """POST a short synthetic 16-bit WAV to /denoise; a check that inference works (after RSS is read)."""
    import io
    import math
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(b"".join(int(8000 * math.sin(2 * math.pi * 220 * i / rate)).to_bytes(2, "little", signed=True)
                               for i in range(n)))
    boundary = "footprint-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tone.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + buf.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/denoise", data=body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as r:
            out = r.read()
            if r.status != 200 or out[:4] != b"RIFF":
                raise RuntimeError(f"POST /denoise: {r.status}, {out[:80]!r}")
            return f"POST /denoise {seconds:g} s WAV -> {r.status}, {len(out)} bytes of WAV"
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"POST /denoise: {e.code} {e.read()[:300]!r}") from None


def proc_status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def rss_mb(pid: int) -> float:
    return proc_status_kb(pid, "VmRSS") * 1024 / MB


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []
        self.missed: list[str] = []

    def add(self, name: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("met" if met else "MISSED")
        if met is False:
            self.missed.append(name)
        self.rows.append((name, value, f"{target} {verdict}".strip()))

    def print(self, title: str) -> None:
        print(f"\n== {title}")
        w = max(len(r[0]) for r in self.rows)
        v = max(len(r[1]) for r in self.rows)
        for name, value, target in self.rows:
            print(f"{name:<{w}}  {value:<{v}}  {target}")
        print("targets: " + ("all met" if not self.missed else "MISSED: " + ", ".join(self.missed)))


# ---------------------------------------------------------------- local
def measure_local(args: argparse.Namespace) -> Report:
    python = args.python or sys.executable
    starts: list[float] = []
    rsss: list[float] = []
    for i in range(args.repeat):
        port = free_port()
        env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", LOG_LEVEL="WARNING")
        t0 = time.perf_counter()
        proc = subprocess.Popen([python, "-m", "service"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            start = wait_ready(port, t0, args.timeout, lambda: proc.poll() is None)
            time.sleep(args.settle)
            rss = rss_mb(proc.pid)
        except RuntimeError:
            proc.kill()
            sys.stderr.write(proc.communicate()[1].decode(errors="replace")[-4000:])
            raise
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        print(f"local run {i + 1}: start to /ready {start:.2f} s, idle RSS {rss:.1f} MB", flush=True)
        starts.append(start)
        rsss.append(rss)
    rep = Report()
    rep.add("command", f"{python} -m service (127.0.0.1)")
    rep.add("start to /ready [s]", summary(starts), f"<= {TARGET_READY_S:g}", max(starts) <= TARGET_READY_S)
    rep.add("idle RSS [MB]", summary(rsss), f"<= {TARGET_IDLE_RSS_MB:g}", max(rsss) <= TARGET_IDLE_RSS_MB)
    return rep


# ---------------------------------------------------------------- container
def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    home = Path(env.get("CONTAINER_SMOKE_HOME", "/var/tmp/container-smoke"))
    driver = env.get("CONTAINER_SMOKE_STORAGE_DRIVER", "vfs")
    sfx = "" if driver == "vfs" else f"-{driver}"
    env.setdefault("CONTAINERS_CONF", str(home / f"containers{sfx}.conf"))
    env.setdefault("CONTAINERS_STORAGE_CONF", str(home / f"storage{sfx}.conf"))
    env.setdefault("TMPDIR", str(home / "tmp"))
    return env


def podman(*argv: str, check: bool = True) -> str:
    r = subprocess.run(["podman", *argv], env=podman_env(), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"podman {' '.join(argv)} failed: {r.stderr.strip()}")
    return r.stdout.strip()


def image_size(image: str) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image))


SITE_SCRIPT = r"""
import importlib.metadata as m, os, sysconfig
rows = []
for d in m.distributions():
    total = 0
    for f in d.files or []:
        p = d.locate_file(f)
        try:
            total += os.path.getsize(p)
        except OSError:
            pass
    rows.append((total, d.metadata["Name"], d.version))
rows.sort(reverse=True)
print("site-packages:", sysconfig.get_paths()["purelib"])
print("distributions: %d, %.1f MB in all" % (len(rows), sum(r[0] for r in rows) / 1e6))
for size, name, version in rows[:12]:
    print("  %7.1f MB  %s %s" % (size / 1e6, name, version))
"""


def measure_container(args: argparse.Namespace) -> Report:
    image = args.image or os.environ.get("SMOKE_IMAGE")
    if not image:
        raise SystemExit("no image: pass --image or run under container-smoke.sh (which sets SMOKE_IMAGE)")
    size = image_size(image)
    base = image_size(args.base)
    print(f"image {image}: {size / MB:.1f} MB; base {args.base}: {base / MB:.1f} MB")
    print("layers above the base (podman history, newest first; empty ones left out):")
    fmt = "{{.Size}}\t{{.CreatedBy}}"
    n_base = len(podman("history", "--format", fmt, args.base).splitlines())
    rows = podman("history", "--no-trunc", "--format", fmt, image).splitlines()
    for row in rows[: max(0, len(rows) - n_base)]:
        size_text, _, created = row.partition("\t")
        if size_text.strip() not in ("0 B", "0B", "0"):
            print(f"  {size_text:>9}  {' '.join(created.split())[:110]}")
    print(podman("run", "--rm", "--network", "none", "--pull", "never", "--user", "0",
                 "--label", f"{OWNER_LABEL}={os.getpid()}",
                 image, "python", "-c", SITE_SCRIPT), flush=True)

    starts: list[float] = []
    rsss: list[float] = []
    for i in range(args.repeat):
        port = free_port()
        name = f"footprint-{os.getpid()}-{i}"
        podman("create", "--name", name, "--label", f"{OWNER_LABEL}={os.getpid()}",
               "--network", "host", "--pull", "never",
               "-e", f"PORT={port}", "-e", "LOG_LEVEL=WARNING", image)
        try:
            t0 = time.perf_counter()
            podman("start", name)
            started = time.perf_counter() - t0

            def alive() -> bool:
                return podman("inspect", "--format", "{{.State.Running}}", name, check=False) == "true"

            start = wait_ready(port, t0, args.timeout, alive)
            time.sleep(args.settle)
            pid = int(podman("inspect", "--format", "{{.State.Pid}}", name))
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            rss = rss_mb(pid)
            checked = denoise_once(port) if i == 0 else ""
        except RuntimeError:
            sys.stderr.write(podman("logs", name, check=False)[-4000:] + "\n")
            raise
        finally:
            podman("rm", "-f", "-t", "10", name, check=False)
        print(f"container run {i + 1}: podman start returned after {started:.2f} s, start to /ready "
              f"{start:.2f} s, idle RSS {rss:.1f} MB ({cmdline})", flush=True)
        if checked:
            print(f"  then {checked}", flush=True)
        starts.append(start)
        rsss.append(rss)

    over = (size - base) / MB
    rep = Report()
    rep.add("image", image)
    rep.add("image size [MB]", f"{size / MB:.1f}")
    rep.add("base size [MB]", f"{base / MB:.1f} ({args.base})")
    rep.add("added to base [MB]", f"{over:.1f}", f"<= {TARGET_OVER_BASE_MB:g}", over <= TARGET_OVER_BASE_MB)
    rep.add("start to /ready [s]", summary(starts), f"<= {TARGET_READY_S:g}", max(starts) <= TARGET_READY_S)
    rep.add("idle RSS [MB]", summary(rsss), f"<= {TARGET_IDLE_RSS_MB:g}", max(rsss) <= TARGET_IDLE_RSS_MB)
    return rep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--local", action="store_true", help="measure `python -m service` on this machine")
    p.add_argument("--container", action="store_true", help="measure the image (podman, container-smoke storage)")
    p.add_argument("--python", help="interpreter for --local (default: this one)")
    p.add_argument("--image", help="image for --container (default: $SMOKE_IMAGE)")
    p.add_argument("--base", default=DEFAULT_BASE, help=f"base image (default {DEFAULT_BASE})")
    p.add_argument("--repeat", type=int, default=3, help="starts measured (each figure: median, min, max)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds idle after /ready before reading RSS")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds allowed to reach /ready")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    if not (args.local or args.container):
        p.error("pass --local and/or --container")
    print(f"footprint: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} (1 min) "
          "- start-up times grow with the machine's load", flush=True)
    reports = []
    if args.container:
        reports.append(("container", measure_container(args)))
    if args.local:
        reports.append(("local (make serve)", measure_local(args)))
    for title, rep in reports:
        rep.print(title)
    missed = any(rep.missed for _, rep in reports)
    return 1 if (missed and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
