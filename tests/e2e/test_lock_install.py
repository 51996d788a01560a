"""The lock install works with whatever pip a fresh venv bundles, whatever the index holds.

The class of breakage: a locked package asks for another locked package *with an extra*
(justext asks for `lxml[html_clean]`). pip 23.2 (bundled with Python 3.11) reads that extra as
an unpinned requirement in hash-checking mode and takes the newest release on the index, so an
install from the lock fails the day upstream publishes. Here the index is a local wheel
directory made in the test, holding a newer release of a locked package, so the test does not
depend on what PyPI holds today. The install runs the way `make`, CI, the README and the image
do: first the pinned pip of requirements-bootstrap.lock, then the lock."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _wheel(
    directory: Path, name: str, version: str, requires: list[str], extras: list[str]
) -> Path:
    """A minimal pure-Python wheel (PEP 427) declaring `requires` and `extras`."""
    dist = f"{name}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Provides-Extra: {extra}" for extra in extras]
    meta += [f"Requires-Dist: {req}" for req in requires]
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": "\n".join(meta) + "\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    out = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return out


def _pinned(wheel: Path, name: str, version: str) -> str:
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"{name}=={version} \\\n    --hash=sha256:{digest}\n"


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, check=False)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_lock_install_ignores_a_newer_release_of_a_locked_package(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    # `app` is locked with `lib` 1.0 and asks for `lib[extra]`, as justext asks for lxml[html_clean];
    # the index also holds lib 2.0, published "after the lock was made".
    app = _wheel(index, "nfapp", "1.0", ["nflib[extra]>=1"], [])
    lib = _wheel(index, "nflib", "1.0", ['nfextra>=1; extra == "extra"'], ["extra"])
    extra = _wheel(index, "nfextra", "1.0", [], [])
    _wheel(index, "nflib", "2.0", ['nfextra>=1; extra == "extra"'], ["extra"])
    lock = tmp_path / "test.lock"
    lock.write_text(
        _pinned(app, "nfapp", "1.0")
        + _pinned(lib, "nflib", "1.0")
        + _pinned(extra, "nfextra", "1.0")
    )

    venv = tmp_path / "v"
    base = getattr(sys, "_base_executable", sys.executable)
    assert _run([base, "-m", "venv", str(venv)], dict(os.environ)).returncode == 0
    python = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSFOLD_", "PIP_FIND_LINKS"))}

    # The installer pinned by the project, hash-checked (from the package index: the pin and
    # its hashes fix what is installed, whatever the index's newest pip is).
    boot = _run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--require-hashes",
            "--no-deps",
            "-r",
            str(REPO / "requirements-bootstrap.lock"),
        ],
        env,
    )
    assert boot.returncode == 0, boot.stdout[-2000:] + boot.stderr[-2000:]

    hermetic = {**env, "PIP_CONFIG_FILE": os.devnull}
    install = _run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--require-hashes",
            "--no-index",
            "--find-links",
            str(index),
            "-r",
            str(lock),
        ],
        hermetic,
    )
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    shown = _run([python, "-c", "import nflib; print(nflib.VERSION)"], hermetic)
    assert shown.stdout.strip() == "1.0"


def test_every_lock_install_bootstraps_the_pinned_pip_first() -> None:
    """make, the image and the README each install requirements-bootstrap.lock before a lock."""
    sources = {
        "Makefile": (REPO / "Makefile").read_text(),
        "docker/Dockerfile": (REPO / "docker" / "Dockerfile").read_text(),
        "README.md": (REPO / "README.md").read_text(),
    }
    for name, text in sources.items():
        lock_installs = [
            m.start()
            for m in re.finditer(r"--require-hashes[^\n]*-r requirements(-dev)?\.lock", text)
        ]
        boot = text.find("-r requirements-bootstrap.lock")
        assert lock_installs, f"{name} installs no lock"
        assert 0 <= boot < min(lock_installs), f"{name} installs a lock before the pinned pip"
    pins = (REPO / "requirements-bootstrap.lock").read_text()
    assert re.search(r"^pip==[0-9.]+ \\\n    --hash=sha256:", pins, re.M)
