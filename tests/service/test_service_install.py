"""The service-only install (what the image gets) holds no ML toolkit and no compiler-backed stack.

Installs like the Dockerfile does, into a fresh venv: ``pip install --no-deps -r
requirements/service.lock`` then ``pip install --no-deps`` of a copy of the files the
image copies (so no build output lands in the work tree); then adds the ``bench`` extra, as
``make benchmark`` does, and runs the benchmark there. ~40 s on a 2-core machine with the
wheels reachable (pip's cache, the local wheel folders or PyPI).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "service.lock"

#: distributions (and their import names) that must stay out of the service's runtime
FORBIDDEN = {
    "librosa": "librosa",
    "scipy": "scipy",
    "numba": "numba",
    "llvmlite": "llvmlite",
    "scikit-learn": "sklearn",
    "tensorflow": "tensorflow",
    "tensorflow-cpu": "tensorflow",
}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_lock_pins_no_forbidden_distribution():
    pinned = {_norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", LOCK.read_text(), re.M)}
    assert {"onnxruntime", "numpy", "soxr", "soundfile", "fastapi", "uvicorn"} <= pinned
    assert not pinned & {_norm(n) for n in FORBIDDEN}
    # every pin is hashed (the Dockerfile installs with --require-hashes)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().split("\n", 2)[-1])
    assert all("--hash=sha256:" in b for b in blocks if "==" in b)


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(argv)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.e2e
def test_service_only_install_has_no_ml_toolkit(tmp_path):
    # the project files the image copies, so the build writes nothing into the work tree
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in ("denoise_core", "service"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=ignore)
    (src / "training").mkdir()
    shutil.copy2(ROOT / "training" / "__init__.py", src / "training" / "__init__.py")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    _run([*pip, "-r", str(LOCK)], cwd=tmp_path)
    _run([*pip, str(src)], cwd=tmp_path)

    listed = json.loads(_run([str(py), "-m", "pip", "list", "--format", "json"], cwd=tmp_path).stdout)
    installed = {_norm(d["name"]) for d in listed}
    assert "rainclean" in installed and "onnxruntime" in installed
    assert not installed & {_norm(n) for n in FORBIDDEN}, sorted(installed & {_norm(n) for n in FORBIDDEN})

    # the app imports there (from the installed copy, not the work tree) and loads none of them
    probe = (
        "import sys, service.app, service.__main__, denoise_core.model_file;"
        "assert service.app.__file__.startswith(sys.prefix), service.app.__file__;"
        f"print(sorted({set(FORBIDDEN.values())!r} & {{m.split('.')[0] for m in sys.modules}}))"
    )
    out = _run([str(py), "-I", "-c", probe], cwd=tmp_path).stdout.strip()
    assert out == "[]", out

    # `make benchmark` adds the bench extra to this install, and the benchmark runs the app there
    _run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{src}[bench]"], cwd=tmp_path)
    env = {"PATH": os.environ["PATH"], "MODEL_PATH": str(ROOT / "models" / "denoiser.onnx"), "LOG_LEVEL": "WARNING"}
    bench = subprocess.run([str(py), "-I", "-m", "service.benchmark", "--durations", "1", "--repeats", "1"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert bench.returncode == 0, bench.stderr[-3000:]
    rows = [line.split() for line in bench.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [float(r[0]) for r in rows] == [1.0] and float(rows[0][4]) > 0, bench.stdout

