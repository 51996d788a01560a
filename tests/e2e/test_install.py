"""A plain install works with the pip a fresh venv bundles: `python3 -m venv v && v/bin/pip
install .` gives a working main-text extractor, with no setuptools deprecation warnings."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = (
    b"<html><head><title>Council passes budget</title></head><body><article>"
    b"<h1>Council passes budget</h1><p>Updated 3 hours ago</p>"
    + b"<p>The council voted on the new budget after a long debate about schools.</p>" * 8
    + b"<p>Read more world news</p></article></body></html>"
)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_plain_pip_install_in_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "src-tree"  # a copy: an in-tree build would leave build/ behind
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(
        REPO / "src",
        source / "src",
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"),
    )
    venv = tmp_path / "v"
    # The interpreter itself, not this test run's venv: the new venv gets its bundled pip.
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    proc = subprocess.run(
        [str(venv / "bin" / "pip"), "install", str(source)],
        capture_output=True,
        text=True,
        timeout=1400,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "deprecat" not in (proc.stdout + proc.stderr).lower(), proc.stderr[-3000:]
    page = tmp_path / "page.html"
    page.write_bytes(PAGE)
    out = subprocess.run(
        [str(venv / "bin" / "newsfold"), "extract", str(page), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert out.returncode == 0 and out.stderr == "", out.stderr
    report = json.loads(out.stdout)[0]
    assert report["extractor"] == "trafilatura"
    assert "council voted" in report["text"]
