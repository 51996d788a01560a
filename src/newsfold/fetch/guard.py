"""SSRF guard: refuse URLs that lead to loopback, private, link-local or multicast hosts.

Two layers, because a URL check alone is not enough:

1. ``check_url`` runs before every request (first URL and every redirect hop):
   scheme must be http(s), the host must exist, and a literal IP host must be public.
2. ``GuardedBackend`` is the network backend under the shared connection pool.
   It resolves the host name itself, refuses if *any* resolved address is not
   public (IPv4, IPv6, IPv4-mapped/6to4/Teredo/NAT64-embedded IPv4 included), then
   connects to the very address it checked. Connecting to the checked address,
   not re-resolving the name, is what defeats DNS rebinding (a name that answers
   public for the check and private for the connect). TLS still verifies the
   certificate against the host name: httpcore passes the origin host as SNI.

``allow_private_networks`` turns the address checks off (tests use 127.0.0.1);
the scheme check always applies.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import httpcore
import httpx

from newsfold.errors import BlockedURLError

if TYPE_CHECKING:
    import ssl

    from httpcore import AsyncNetworkStream

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
# An address policy: why an IP must be refused, or None to allow it.
AddressPolicy = Callable[[str], str | None]

_ALLOWED_SCHEMES = ("http", "https")
# RFC 6052 well-known NAT64 prefix: the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# httpx lets these through in a host name; no resolver should ever see them.
_BAD_HOST_CHARS = re.compile(r"[\s\x00-\x1f\x7f<>\"{}|\\^`%/?#@]")


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address tunnels to, if it is one of the known forms."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]  # (server, client): the client is where traffic lands
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def blocked_reason(ip: str | IPAddress) -> str | None:
    """Why this address must not be fetched from, or ``None`` if it is public."""
    try:
        addr: IPAddress = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    except ValueError:
        return "not an IP address"
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            # Traffic lands on the embedded IPv4 address: judge that one.
            reason = blocked_reason(inner)
            return f"{reason} ({inner} embedded in IPv6)" if reason else None
    # Most specific first: the message tells the user what kind of address it was.
    for attr, name in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(addr, attr):
            return f"a {name} address"
    if not addr.is_global:
        return "a non-public address"  # e.g. 100.64.0.0/10 carrier-grade NAT
    return None


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, *, allow_private_networks: bool) -> httpx.URL:
    """Parse ``url`` and refuse it before any request; returns the parsed URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as e:
        raise BlockedURLError(f"invalid URL {url!r}: {e}", url=url) from e
    scheme = parsed.scheme
    if not scheme:
        raise BlockedURLError(f"not an http(s) URL: {url}", url=url)
    if scheme not in _ALLOWED_SCHEMES:
        raise BlockedURLError(
            f"refused {scheme}: URL (only http and https are fetched): {url}", url=url
        )
    if not parsed.host:
        raise BlockedURLError(f"URL has no host: {url}", url=url)
    if _BAD_HOST_CHARS.search(parsed.host):
        raise BlockedURLError(f"invalid URL {url!r}: bad character in host", url=url)
    if not allow_private_networks:
        ip = _literal_ip(parsed.host)
        if ip is not None:
            reason = blocked_reason(ip)
            if reason:
                raise BlockedURLError(
                    f"refused {url}: {ip} is {reason} "
                    "(set allow_private_networks to fetch from it)",
                    url=url,
                )
    return parsed


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order (IPv4 and IPv6)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for *_, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check every address, then connect to a checked address."""

    def __init__(
        self,
        *,
        allow_private_networks: bool,
        resolver: Resolver | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        self._allow_private = allow_private_networks
        self._resolve = resolver or system_resolver
        self._policy = policy or blocked_reason
        self._inner = httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int, timeout: float | None) -> Sequence[str]:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from e
        except (OSError, UnicodeError) as e:
            raise httpcore.ConnectError(f"cannot resolve host {host}: {e}") from e
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve host {host}: no addresses")
        if not self._allow_private:
            for address in addresses:
                reason = self._policy(address)
                if reason:
                    # The URL is attached by the fetcher, which knows it.
                    raise BlockedURLError(
                        f"refused host {host}: it resolves to {address}, {reason} "
                        "(set allow_private_networks to fetch from it)",
                        url=host,
                    )
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        last: Exception | None = None
        for address in addresses:  # first that answers; all of them passed the check
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise BlockedURLError("unix sockets are never fetched from", url=path)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context per process: each new one reads the CA bundle (~15 ms of
    CPU), and a poll used to build two. Client contexts are safe to share."""
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that uses ``GuardedBackend``.

    httpx has no public parameter for the network backend, so the pool built by
    ``AsyncHTTPTransport.__init__`` is replaced by an equivalent one that uses
    it; request/response conversion and exception mapping stay httpx's own.
    """

    def __init__(
        self,
        *,
        allow_private_networks: bool,
        limits: httpx.Limits,
        resolver: Resolver | None = None,
        policy: AddressPolicy | None = None,
    ) -> None:
        context = _ssl_context()
        super().__init__(verify=context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(
                allow_private_networks=allow_private_networks, resolver=resolver, policy=policy
            ),
        )


__all__ = [
    "AddressPolicy",
    "GuardedBackend",
    "GuardedTransport",
    "Resolver",
    "blocked_reason",
    "check_url",
    "system_resolver",
]
