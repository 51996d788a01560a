"""Progress of long commands on stderr, for a person at a terminal.

A bar with counts and what the command is waiting on, shown only when stderr is a
terminal and the command prints for people: piped output and ``--json`` get nothing,
so scripts and logs see exactly what they did before.
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from newsfold.cli._common import err_console

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from newsfold.types import FeedSource

# What the bar's other columns take beside the counts: the spinner, "fetching", the bar,
# the time and the gaps between them.
_BAR_CELLS = 46
_MIN_WAITING = 24  # a narrower terminal wraps the line rather than lose the first host


class Bar:
    """One task's progress; every method does nothing when no bar is shown."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def update(
        self, *, done: int | None = None, total: int | None = None, doing: str | None = None
    ) -> None:
        """Set the count done, the total, and/or what is being waited on now."""
        if self._progress is None or self._task is None:
            return
        if doing is None:
            self._progress.update(self._task, completed=done, total=total)
        else:
            self._progress.update(self._task, completed=done, total=total, doing=doing)
        if not self._progress.live.auto_refresh:
            self._progress.refresh()

    def advance(self, n: int = 1, *, doing: str | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.advance(self._task, n)
        self.update(doing=doing)


class PollBar:
    """``newsfold fetch``'s bar (a ``PollWatcher``): feeds done, and the hosts the rest wait
    on: one host's feeds are fetched one after another, a politeness delay apart."""

    def __init__(self, bar: Bar) -> None:
        self.bar = bar
        self.pending: Counter[str] = Counter()
        self.total = 0

    def started(self, sources: Sequence[FeedSource]) -> None:
        self.total = len(sources)
        self.pending.update(_host(s.url) for s in sources)
        self.bar.update(done=0, total=len(sources), doing=self._waiting())

    def fetched(self, source: FeedSource) -> None:
        self.pending[_host(source.url)] -= 1
        self.pending = +self.pending  # drop the hosts with none left
        self.bar.advance(doing=self._waiting())

    def writing(self, count: int) -> None:
        self.bar.update(doing=f"storing {count} {_feeds(count)}")

    def _waiting(self) -> str:
        """``waiting: 127.0.0.1 ×3, example.org +2 hosts``: the busiest hosts and their feeds
        left, as many as fit the line beside the bar's other columns."""
        if not self.pending:
            return ""
        hosts = [host + (f" ×{n}" if n > 1 else "") for host, n in self.pending.most_common()]
        total = self.total or 1
        # "n/N" takes twice the digits of N and a slash.
        room = max(_MIN_WAITING, err_console.width - _BAR_CELLS - 2 * len(str(total)) - 1)

        def line(shown: int) -> str:
            rest = len(hosts) - shown
            more = f" +{rest} host{'s' if rest > 1 else ''}" if rest else ""
            return "waiting: " + ", ".join(hosts[:shown]) + more

        shown = 1
        while shown < len(hosts) and len(line(shown + 1)) <= room:
            shown += 1
        if len(line(shown)) > room and len(hosts) > 1:
            return f"waiting: {len(hosts)} hosts"  # a host name too long to show with the rest
        return line(shown)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url
    except ValueError:
        return url


def _feeds(n: int) -> str:
    return "feed" if n == 1 else "feeds"


def shown(json_out: bool = False) -> bool:
    """Whether a command printing for people (not ``--json``) shows progress here."""
    return not json_out and err_console.is_terminal


@contextmanager
def progress(
    what: str, total: int | None, *, enabled: bool, refresh_thread: bool = True
) -> Iterator[Bar]:
    """A bar on stderr while the block runs, gone when it ends (``transient``).

    ``refresh_thread=False`` redraws only on updates: a process that forks workers
    (``eval``) must not have a second thread running when it forks.
    """
    if not enabled:
        yield Bar(None, None)
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[doing]}", style="dim"),
        console=err_console,
        transient=True,
        auto_refresh=refresh_thread,
    )
    with bar:
        task = bar.add_task(what, total=total, doing="")
        yield Bar(bar, task)


__all__ = ["Bar", "PollBar", "progress", "shown"]
