"""Who holds a lease, and when a restarted daemon may prove that holder dead.

A claimed feed's lease names its worker: ``host:pid:pidns:token``. The host and
PID are what a later process can check; the PID namespace keeps two containers
that share a host name (``network_mode: host``) apart, since neither can see the
other's PIDs; the random token tells a restarted process from its predecessor
when both got the same PID (PID 1 in a container, every time).

A lease is reclaimed at once only when its holder is provably dead:

* SQLite: the daemon holds the database's lock file, which allows one daemon,
  so every other holder is gone;
* otherwise (PostgreSQL), the holder ran on this host, in this PID namespace,
  and its PID is either ours (we are the only process with it) or no process.

Anything else (another host, a PID that now belongs to some process, an owner
written by an older version) waits out the lease: reclaiming a live worker's
feed would poll it twice.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

# The lease_owner column holds 64 characters: pid (7) + namespace (8) + token (8) + 3 colons
# leave 38 for the host; a longer name keeps its start and a hash of the whole.
_HOST_CHARS = 38


@dataclass(frozen=True, slots=True)
class Owner:
    host: str
    pid: int
    pidns: str
    token: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.pidns}:{self.token}"


# Every identity handed out in this process: a process may run more than one daemon in
# turn (an embedding program, tests), and none of them is dead while the process lives.
_ISSUED: set[str] = set()


def this_process() -> Owner:
    """A fresh identity for this daemon process (a new token at every start)."""
    owner = Owner(
        _host_key(socket.gethostname()), os.getpid(), _pid_namespace(), secrets.token_hex(4)
    )
    _ISSUED.add(str(owner))
    return owner


def issued_here() -> frozenset[str]:
    """The identities of the daemons this process has run (see ``provably_dead``)."""
    return frozenset(_ISSUED)


def parse_owner(text: str) -> Owner | None:
    """The parts of a lease owner; ``None`` for one this module did not write."""
    parts = text.rsplit(":", 3)
    if len(parts) != 4 or not parts[1].isdigit():
        return None
    host, pid, pidns, token = parts
    return Owner(host, int(pid), pidns, token)


def provably_dead(
    owner: str,
    *,
    me: Owner,
    sole_daemon: bool,
    pid_alive: Callable[[int], bool],
    ours: Collection[str] = (),
) -> bool:
    """May ``owner``'s leases be taken now? ``sole_daemon``: no other daemon can run;
    ``ours``: identities of this very process (alive, whatever their token)."""
    if owner == str(me) or owner in ours:
        return False
    if sole_daemon:
        return True
    other = parse_owner(owner)
    if other is None or (other.host, other.pidns) != (me.host, me.pidns):
        return False
    return other.pid == me.pid or not pid_alive(other.pid)


def pid_alive(pid: int) -> bool:
    """Is there a process with this PID (in our namespace)? Signal 0 only checks."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, run by another user
        return True
    return True


def _host_key(host: str) -> str:
    if len(host) <= _HOST_CHARS:
        return host
    digest = hashlib.sha1(host.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{host[: _HOST_CHARS - 9]}~{digest}"


def _pid_namespace() -> str:
    """The PID namespace's inode (Linux); "-" where there are no PID namespaces."""
    try:
        return format(Path("/proc/self/ns/pid").stat().st_ino & 0xFFFFFFFF, "x")
    except OSError:
        return "-"


__all__ = ["Owner", "issued_here", "parse_owner", "pid_alive", "provably_dead", "this_process"]
