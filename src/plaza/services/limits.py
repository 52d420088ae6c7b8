"""Limits on a request's head (request line and header fields), enforced in the HTTP
protocol before the app sees anything.

Theory of operation. Every service runs under uvicorn's httptools protocol, which
hands each received chunk to the parser; the parser keeps an unfinished header line
in memory until its end arrives, so without a limit one connection can grow the
process by whatever it sends. :class:`LimitedHttpProtocol` wraps that protocol and
follows each connection through two states:

- *awaiting a head* — from the accepted connection, and again from the end of each
  request's message (the next bytes are the next request's head). Bytes go to the
  parser only while the head's running total stays within ``max_bytes``; a chunk that
  would cross it is cut at the limit, and if the head has not ended within the cut the
  connection is answered ``431`` and closed. A timer started when the connection is
  accepted (or, between requests, when the next head's first bytes arrive) answers
  ``408`` and closes if the head has not ended within ``timeout_s``.
- *in a request* — from the end of the head (the timer stops) until its message ends;
  bytes pass through untouched, and so does a WebSocket once upgraded.

The parser's callbacks count the header fields and tally the URL and header lines
again, so a head that began inside an earlier chunk (a pipelined request) meets the
same limits; a callback refuses by raising, which stops the parser, and the
protocol answers with the refusal's status. A refused request never reaches the app.

The bytes buffered for one connection's head are thus at most ``max_bytes`` (plus one
read, for a head pipelined behind a body); :class:`HeadStats` records the largest head
any connection handed the parser, and the refusals.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD_BYTES: Final = 16 * 1024
MAX_HEADER_FIELDS: Final = 100
HEAD_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class HeadLimits:
    """How large a request head may be, in how many fields, sent in how long.

    ``max_bytes`` counts the request line and header lines with their line ends.
    """

    max_bytes: int = MAX_HEAD_BYTES
    max_fields: int = MAX_HEADER_FIELDS
    timeout_s: float = HEAD_TIMEOUT_S


DEFAULT_HEAD_LIMITS: Final = HeadLimits()


@dataclass
class HeadStats:
    """Counters shared by every connection of the servers using one protocol class."""

    largest_head: int = 0  # most bytes of one unfinished head handed to the parser
    too_large: int = 0  # heads answered 431 for their size
    too_many_fields: int = 0  # heads answered 431 for their field count
    timed_out: int = 0  # heads answered 408


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head over the limits."""


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`HeadLimits` on every request head.

    Use :func:`limited_protocol` to get a subclass bound to a set of limits.
    """

    limits: ClassVar[HeadLimits] = DEFAULT_HEAD_LIMITS
    stats: ClassVar[HeadStats] = HeadStats()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._fed = 0  # bytes handed to the parser since the head began
        self._tally = 0  # URL and header-line bytes the callbacks saw
        self._fields = 0
        self._heads = 0  # heads ended on this connection
        self._timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str, str] | None = None

    # -- connection --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._awaiting_head:
            self._feed(data)
            return
        if self.transport.is_closing():
            return
        if self._timer is None:
            self._arm()
        room = self.limits.max_bytes - self._fed
        if len(data) <= room:
            self._fed += len(data)
            self._note_fed()
            self._feed(data)
            return
        # Hand over only what the limit allows; if the head ends within it, the rest of
        # the chunk belongs to the body (or the next request) and follows normally.
        self._fed += room
        self._note_fed()
        heads = self._heads
        if room:
            self._feed(data[:room])
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        if self._heads == heads:
            self.stats.too_large += 1
            self._respond(*_too_large(self.limits))
            return
        self.data_received(data[room:])

    def _feed(self, data: bytes) -> None:
        """uvicorn's ``data_received``, answering a refusal from a callback with its status
        instead of logging it as an invalid request."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._respond(*self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    # -- parser callbacks --------------------------------------------------------------
    def on_url(self, url: bytes) -> None:
        self._tally += len(url)
        if self._tally > self.limits.max_bytes:
            self._refusal = _too_large(self.limits)
            self.stats.too_large += 1
            raise _HeadRefused
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        self._tally += len(name) + len(value) + 4  # ": " and the line end
        if self._fields > self.limits.max_fields:
            self._refusal = (
                431,
                "RequestHeaderFieldsTooLarge",
                f"more than {self.limits.max_fields} header fields",
            )
            self.stats.too_many_fields += 1
            raise _HeadRefused
        if self._tally > self.limits.max_bytes:
            self._refusal = _too_large(self.limits)
            self.stats.too_large += 1
            raise _HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._heads += 1
        self._awaiting_head = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head = True
        self._fed = self._tally = self._fields = 0

    # -- limits ------------------------------------------------------------------------
    def _note_fed(self) -> None:
        self.stats.largest_head = max(self.stats.largest_head, self._fed)

    def _arm(self) -> None:
        self._timer = self.loop.call_later(self.limits.timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self._awaiting_head and not self.transport.is_closing():
            self.stats.timed_out += 1
            limit = f"{self.limits.timeout_s:g} s"
            self._respond(408, "RequestTimeout", f"request headers not received within {limit}")

    def _respond(self, status: int, error: str, message: str) -> None:
        """Answer ``status`` with a JSON error body and close the connection."""
        body = json.dumps({"error": error, "message": message}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
        self._disarm()
        self._awaiting_head = False
        self.transport.write(b"".join(head))
        self.transport.close()


def _too_large(limits: HeadLimits) -> tuple[int, str, str]:
    return 431, "RequestHeaderFieldsTooLarge", f"request head over {limits.max_bytes} bytes"


def limited_protocol(
    limits: HeadLimits, stats: HeadStats | None = None
) -> type[LimitedHttpProtocol]:
    """A :class:`LimitedHttpProtocol` bound to ``limits``, counting into ``stats``; pass
    it as ``http=`` to :class:`uvicorn.Config`."""
    namespace = {"limits": limits, "stats": stats if stats is not None else HeadStats()}
    return type("BoundLimitedHttpProtocol", (LimitedHttpProtocol,), namespace)
