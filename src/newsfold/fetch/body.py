"""Read a response body under a size cap on both the wire bytes and the decoded bytes.

httpx's own decoders inflate a whole network chunk at once, so one 64 KiB chunk
of a gzip bomb can become ~64 MiB before any check runs. Here every
decompression call is bounded (``zlib`` ``max_length``), so memory stays near
the cap however hostile the body: the compressed stream is counted as it
arrives, the inflated stream as it is produced, and the read stops at the
first byte over either limit.

We only ask for ``gzip, deflate`` (``ACCEPT_ENCODING``); any other coding the
server sends anyway is refused rather than stored undecoded.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Iterator

ACCEPT_ENCODING = "gzip, deflate"
# Largest piece one decompression call may produce.
_PIECE = 64 * 1024


# Internal signals; the fetcher maps both to FetchError with the URL.
class BodyTooLarge(Exception):
    def __init__(self, which: str, limit: int) -> None:
        super().__init__(f"{which} body exceeds the {limit:,}-byte cap")
        self.which = which


class BadEncoding(Exception):
    pass


class _Inflater:
    """One ``gzip``/``deflate`` layer with bounded output per call."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        # gzip: wbits 16+15. deflate per RFC 9110 is zlib-wrapped, but servers
        # often send raw deflate: try zlib first and fall back on the first chunk.
        self._wbits = 31 if coding == "gzip" else 15
        self._obj = zlib.decompressobj(self._wbits)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                out = self._obj.decompress(data, _PIECE)
            except zlib.error as e:
                if self.coding == "deflate" and not self._started and self._wbits == 15:
                    self._wbits = -15
                    self._obj = zlib.decompressobj(-15)
                    continue
                raise BadEncoding(f"invalid {self.coding} data: {e}") from e
            self._started = True
            if out:
                yield out
            data = self._obj.unconsumed_tail
            if self._obj.eof and self._obj.unused_data:
                # Concatenated gzip members (RFC 1952 §2.2) decode as one stream.
                data = self._obj.unused_data
                self._obj = zlib.decompressobj(self._wbits)

    def flush(self) -> Iterator[bytes]:
        # Everything was already drained with max_length; flush returns what
        # little remains buffered, bounded by the same piece size.
        out = self._obj.flush(_PIECE)
        if out:
            yield out


def decoders_for(content_encoding: str | None) -> list[_Inflater]:
    """Decoders to apply in order (the header lists codings in the order applied)."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    layers: list[_Inflater] = []
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            layers.append(_Inflater("gzip"))
        elif coding == "deflate":
            layers.append(_Inflater("deflate"))
        else:
            raise BadEncoding(f"unsupported Content-Encoding {coding!r}")
    return layers


def _through(layers: list[_Inflater], data: bytes) -> Iterator[bytes]:
    if not layers:
        yield data
        return
    head, rest = layers[0], layers[1:]
    for piece in head.feed(data):
        yield from _through(rest, piece)


def _flush(layers: list[_Inflater]) -> Iterator[bytes]:
    for i, layer in enumerate(layers):
        for piece in layer.flush():
            yield from _through(layers[i + 1 :], piece)


async def read_capped(
    raw: AsyncIterable[bytes],
    *,
    content_encoding: str | None,
    max_bytes: int,
) -> tuple[bytes, int]:
    """The decoded body and the number of bytes on the wire.

    Raises ``BodyTooLarge`` the moment either count passes ``max_bytes`` and
    ``BadEncoding`` for an unknown coding or corrupt compressed data.
    """
    layers = decoders_for(content_encoding)
    body = bytearray()
    wire = 0

    def take(piece: bytes) -> None:
        body.extend(piece)
        if len(body) > max_bytes:
            raise BodyTooLarge("decompressed" if layers else "response", max_bytes)

    async for chunk in raw:
        wire += len(chunk)
        if wire > max_bytes:
            raise BodyTooLarge("compressed" if layers else "response", max_bytes)
        for piece in _through(layers, chunk):
            take(piece)
    for piece in _flush(layers):
        take(piece)
    return bytes(body), wire


__all__ = ["ACCEPT_ENCODING", "BadEncoding", "BodyTooLarge", "decoders_for", "read_capped"]
