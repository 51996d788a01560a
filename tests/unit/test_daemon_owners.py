"""When a lease holder is provably dead: the rules of ``daemon.owners``, case by case."""

from __future__ import annotations

import os

import pytest

from newsfold.daemon.owners import (
    Owner,
    issued_here,
    parse_owner,
    pid_alive,
    provably_dead,
    this_process,
)

ME = Owner("web-1", 4242, "effffffc", "a1b2c3d4")
ALIVE = {7, 4242}


@pytest.mark.parametrize(
    ("owner", "sole", "dead"),
    [
        (str(ME), True, False),  # never ourselves
        ("web-1:4242:effffffc:00000000", False, True),  # our PID, another start: gone
        ("web-1:99:effffffc:00000000", False, True),  # same host, no such process
        ("web-1:7:effffffc:00000000", False, False),  # same host, PID in use: maybe alive
        ("web-2:99:effffffc:00000000", False, False),  # another host: cannot tell
        ("web-1:99:e0000001:00000000", False, False),  # another PID namespace (container)
        ("web-1:99", False, False),  # written by an older version
        ("web-2:7:effffffc:00000000", True, True),  # SQLite: the lock allows one daemon
        ("web-1:99", True, True),
    ],
)
def test_provably_dead(owner: str, sole: bool, dead: bool) -> None:
    verdict = provably_dead(owner, me=ME, sole_daemon=sole, pid_alive=ALIVE.__contains__)
    assert verdict is dead


def test_identities_of_this_process_are_never_dead() -> None:
    earlier, me = this_process(), this_process()
    assert earlier != me and earlier.pid == me.pid == os.getpid()
    assert {str(earlier), str(me)} <= issued_here()
    for sole in (False, True):
        assert not provably_dead(
            str(earlier), me=me, sole_daemon=sole, pid_alive=pid_alive, ours=issued_here()
        )


def test_owner_fits_the_column_and_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "node-" + "x" * 80 + ".example.org")
    owner = this_process()
    assert len(str(owner)) <= 64
    assert parse_owner(str(owner)) == owner
    assert pid_alive(os.getpid()) and not pid_alive(0)
