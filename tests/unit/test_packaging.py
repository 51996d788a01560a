"""The lock files agree with pyproject: every dependency pinned inside its range, with
hashes, and the install paths (Makefile, CI) use them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _pins(lock: str) -> dict[str, list[str]]:
    text = (REPO / lock).read_text()
    pins: dict[str, list[str]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        m = re.match(r"([A-Za-z0-9._-]+)==([^ ;\\\n]+)", block)
        if m:
            pins.setdefault(canonicalize_name(m.group(1)), []).append(m.group(2))
            assert "--hash=sha256:" in block, f"{lock}: {m.group(1)} has no hash"
    return pins


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("requirements.lock", ["main"]), ("requirements-dev.lock", ["main", "dev"])],
)
def test_lock_pins_every_dependency_within_its_range(lock: str, groups: list[str]) -> None:
    pins = _pins(lock)
    project = PYPROJECT["project"]
    deps = list(project["dependencies"])
    if "dev" in groups:
        deps += project["optional-dependencies"]["dev"]
    for dep in deps:
        req = Requirement(dep)
        versions = pins.get(canonicalize_name(req.name))
        assert versions, f"{req.name} is not in {lock}: run `make lock`"
        for version in versions:
            assert req.specifier.contains(version, prereleases=True), (
                f"{lock} pins {req.name}=={version} outside {req.specifier}: run `make lock`"
            )


def test_runtime_and_dev_locks_agree() -> None:
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    assert {k: v for k, v in dev.items() if k in runtime} == runtime


def test_installs_come_from_the_lock() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "-r requirements-bootstrap.lock" in makefile  # the lock's own pip, not the venv's
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_license_is_an_spdx_string() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    (setuptools,) = [r for r in PYPROJECT["build-system"]["requires"] if "setuptools" in r]
    assert Requirement(setuptools).specifier.contains("77.0.0")
    assert not Requirement(setuptools).specifier.contains("76.1.0")


def test_extractor_dependency_is_direct() -> None:
    """Not lxml's extra: pip < 24 skips an extra the installed lxml does not declare."""
    names = {canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["dependencies"]}
    assert "lxml-html-clean" in names
