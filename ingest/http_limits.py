"""What bounds the HTTPS upload API against hostile clients (``EW_HTTP_*`` limits).

uvicorn already bounds a request's headers (h11: 16 KiB) and closes a keep-alive connection
idle between requests (5 s). It does not bound how long a client may take to send its
headers or its body, nor how many connections are open, so a handful of slow clients
(slowloris) or a flood of idle connections would hold sockets and memory for ever.
``bounded_protocol`` adds what is missing to uvicorn's h11 protocol:

- at most ``max_connections`` open at once; one more is closed as soon as it opens
  (``too_many_connections``);
- a request's headers must arrive within ``header_timeout_seconds`` of the connection opening,
  or of the previous response (``header_timeout``);
- a request, body included, must be answered within ``request_timeout_seconds`` of its
  headers (``request_timeout``).

Bodies over ``max_body_bytes`` are refused with 413 by FastAPI's own ``max_body_size``
(``CountTooLarge`` counts them: ``too_large``). Every closed connection and refused body is
counted in ``energywatch_ingest_rejected_total{channel="http"}`` with its kind.

``KeepRawBody`` keeps an upload's bytes in its ASGI scope, so a request refused as a whole
(not JSON, not the schema) can be dead-lettered byte for byte.

The protocol subclasses uvicorn's ``H11Protocol`` (uvicorn's public ``http=`` option takes a
protocol class) and relies on four of its members: ``connections``, ``cycle``, ``loop`` and
``on_response_complete``; ``tests/test_hostile_http.py`` proves each limit on a real server.
"""

import asyncio
from dataclasses import dataclass
from typing import Final

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from energywatch.settings import Settings

CHANNEL: Final = "http"
#: Where ``KeepRawBody`` leaves the request's bytes in the ASGI scope.
RAW_BODY: Final = "energywatch.raw_body"


@dataclass(frozen=True)
class HttpLimits:
    max_body_bytes: int = 8 * 1024 * 1024
    max_connections: int = 1000
    header_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "HttpLimits":
        """The limits ``EW_HTTP_*`` configure."""
        return cls(
            max_body_bytes=settings.http_max_body_bytes,
            max_connections=settings.http_max_connections,
            header_timeout_seconds=settings.http_header_timeout_seconds,
            request_timeout_seconds=settings.http_request_timeout_seconds,
        )


def bounded_protocol(limits: HttpLimits, rejected: Counter) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with the connection limits above; ``rejected`` is the
    ``energywatch_ingest_rejected_total`` counter (labels ``channel``, ``kind``)."""
    refused = {
        kind: rejected.labels(channel=CHANNEL, kind=kind)
        for kind in ("too_many_connections", "header_timeout", "request_timeout")
    }

    class BoundedH11Protocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _timed_cycle: object = None
        _timer_kind: str = "header_timeout"

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                refused["too_many_connections"].inc()
                transport.close()
                return
            self._arm("header_timeout", limits.header_timeout_seconds)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if cycle is not None and cycle is not self._timed_cycle:
                # a new request's headers are complete: now its body and answer are timed
                self._timed_cycle = cycle
                if not cycle.response_complete:
                    self._arm("request_timeout", limits.request_timeout_seconds)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # the next request's headers are timed from here (uvicorn's keep-alive timer
            # closes a connection that sends nothing at all sooner)
            self._arm("header_timeout", limits.header_timeout_seconds)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, kind: str, seconds: float) -> None:
            self._disarm()
            self._timer_kind = kind
            self._timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if not self.transport.is_closing():
                refused[self._timer_kind].inc()
                self.transport.close()

    return BoundedH11Protocol


class CountTooLarge:
    """Counts the 413 answers FastAPI's body limit gives (it answers before any route runs)."""

    def __init__(self, app: ASGIApp, rejected: Counter) -> None:
        self._app = app
        self._too_large = rejected.labels(channel=CHANNEL, kind="too_large")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 413:
                self._too_large.inc()
            await send(message)

        await self._app(scope, receive, counting)


class KeepRawBody:
    """Reads the body of a request to one of ``paths``, keeps its bytes in the scope under
    ``RAW_BODY`` and hands them on to the app unchanged. Bounded by the body limit, which
    runs outside it."""

    def __init__(self, app: ASGIApp, paths: frozenset[str]) -> None:
        self._app = app
        self._paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self._paths:
            await self._app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self._app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope[RAW_BODY] = body
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self._app(scope, _replay([whole], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def raw_body(scope: Scope) -> bytes:
    """The bytes ``KeepRawBody`` kept for this request (empty if it kept none)."""
    body = scope.get(RAW_BODY, b"")
    return body if isinstance(body, bytes) else b""
