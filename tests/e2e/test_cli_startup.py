"""What a command imports before it does anything: ``--help`` and the commands that only read
never load the dedup stack (numpy, scipy through datasketch and the story partition), the
fetcher, or, for ``--help``, the settings and SQL layers. Each is a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(120)

# Run in a fresh interpreter: the modules it loaded, then the command's exit code.
_PROBE = """
import json, sys
from newsfold.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""
DEDUP = {"scipy", "datasketch", "newsfold.dedup", "newsfold.pipeline.service", "newsfold.fetch"}


def _loaded(tmp_path: Path, *args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,  # no config/newsfold.toml here
        env={"NEWSFOLD_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", "PATH": "/usr/bin:/bin"},
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr
    return set(report["modules"])


def test_help_loads_neither_the_pipeline_nor_the_settings(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, "--help")
    assert not (DEDUP | {"numpy", "sqlalchemy", "pydantic", "newsfold.config"}) & loaded


@pytest.mark.parametrize(
    "command", [["stats"], ["clusters", "list"], ["articles", "list"], ["feeds", "list"]]
)
def test_read_only_commands_load_no_pipeline(tmp_path: Path, command: list[str]) -> None:
    loaded = _loaded(tmp_path, *command)
    assert "newsfold.storage" in loaded  # the probe ran the command
    assert not DEDUP & loaded, sorted(DEDUP & loaded)


def test_minhash_loads_datasketch_only_for_its_permutations() -> None:
    probe = (
        "import sys, numpy as np; from newsfold.dedup import minhash; "
        "before = 'datasketch' in sys.modules; minhash.signature(np.arange(3, dtype=np.uint32), 16); "
        "print(before, 'datasketch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.split() == ["False", "True"]
