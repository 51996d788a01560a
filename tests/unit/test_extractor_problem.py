"""A missing or broken main-text extractor is said once, loudly: a log line, the /readyz
body and `newsfold extract` name it; pages still get their plain text."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING

import pytest

from newsfold.cli import main
from newsfold.normalise import page as page_mod

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PAGE = (
    b"<html><head><title>T</title></head><body><article>"
    + b"<p>Updated 3 hours ago</p>"
    + b"<p>"
    + b"The council voted on the new budget after a long debate about schools. " * 8
    + b"</p></article></body></html>"
)


@pytest.fixture
def broken(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """trafilatura fails to import, as it did with lxml's html_clean extra missing."""
    page_mod.extractor_problem.cache_clear()
    page_mod._reported.clear()
    monkeypatch.setitem(sys.modules, "trafilatura", None)
    yield
    page_mod.extractor_problem.cache_clear()
    page_mod._reported.clear()


def test_working_extractor_has_no_problem() -> None:
    page_mod.extractor_problem.cache_clear()
    assert page_mod.extractor_problem() is None
    assert page_mod.extract_page(PAGE, "https://a.example/x").extractor == "trafilatura"


@pytest.mark.usefixtures("broken")
def test_broken_extractor_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="newsfold.normalise.page")
    first = page_mod.extract_page(PAGE, "https://a.example/x")
    page_mod.extract_page(PAGE, "https://a.example/y")
    assert first.extractor == "fallback (extractor unavailable)"
    assert "council voted" in first.text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "trafilatura cannot run" in errors[0].getMessage()


@pytest.mark.usefixtures("broken")
def test_extract_command_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    page = tmp_path / "p.html"
    page.write_bytes(PAGE)
    assert main(["extract", str(page), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["extractor"] == "fallback (extractor unavailable)"
    assert err.startswith("warning: trafilatura cannot run") and err.count("\n") == 1
    assert not caplog.records  # said once: the warning, not also a log line


@pytest.mark.usefixtures("broken")
def test_readyz_names_it() -> None:
    from newsfold.daemon.probes import readiness

    class Probe:
        running = True
        last_cycle_at = None

        class service:
            class storage:
                @staticmethod
                def check() -> None:
                    return None

        class settings:
            class daemon:
                tick_s = 5.0

    _ok, checks = readiness(Probe())  # type: ignore[arg-type]
    assert str(checks["extractor"]).startswith("trafilatura cannot run")
