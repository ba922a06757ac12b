"""The HJ 212 TCP gateway: VOC monitors' data loggers connect and upload; we answer.

A thin asyncio adapter around ``ingest.hj212_core.handle_frame``. Every connection is bounded:
a frame longer than ``max_frame_bytes`` closes it (after a dead letter), a silent one is closed
after ``idle_timeout_seconds``, or after ``login_timeout_seconds`` until it has sent a frame of
a registered device with its password (a client without credentials holds a connection by
trickling bytes for a short while only, and each frame it completes is dead-lettered); a
client that does not read its replies is closed once a reply has waited
``idle_timeout_seconds`` to go out; at most ``max_connections`` are open, and each may send at
most ``packets_per_second`` (faster senders are slowed down, not dropped). Memory per
connection is bounded by the stream reader's limit (``max_frame_bytes``; asyncio stops reading
at twice that) and the transport's write buffer. A sample is published to Kafka, and
acknowledged there, before its 9014 reply goes out: a logger that gets no reply sends again,
and storage is idempotent, so nothing accepted is lost.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.partition_keys import unit_key
from energywatch.settings import Settings
from ingest.hj212_core import CHANNEL, FrameOutcome, handle_frame, mask_password
from ingest.metrics import IngestMetrics
from ingest.publisher import KafkaPublisher
from plans.register import Register

log = logging.getLogger(__name__)
RAW_HEADER = "ew-raw"


@dataclass(frozen=True)
class ConnectionLimits:
    max_frame_bytes: int = 4096
    idle_timeout_seconds: float = 600.0
    max_connections: int = 2000
    packets_per_second: float = 100.0
    login_timeout_seconds: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> "ConnectionLimits":
        """The limits ``EW_HJ212_*`` configure."""
        return cls(
            max_frame_bytes=settings.hj212_max_frame_bytes,
            idle_timeout_seconds=settings.hj212_idle_timeout_seconds,
            max_connections=settings.hj212_max_connections,
            packets_per_second=settings.hj212_packets_per_second,
            login_timeout_seconds=settings.hj212_login_timeout_seconds,
        )


class _Closed(Exception):
    """The gateway closes a connection that broke a limit; ``kind`` is the metric label."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Hj212Gateway:
    def __init__(
        self,
        settings: Settings,
        register: Register,
        publisher: KafkaPublisher,
        metrics: IngestMetrics,
        limits: ConnectionLimits = ConnectionLimits(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._register = register
        self._publisher = publisher
        self._metrics = metrics
        self._limits = limits
        self._clock = clock
        self._open = 0
        # labelled children looked up once: .labels() costs more than the increment
        self._received = metrics.received.labels(channel=CHANNEL)
        self._connections = metrics.connections.labels(channel=CHANNEL)

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(
            self._connection, host, port, limit=self._limits.max_frame_bytes
        )

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._limits.max_connections:
            self._metrics.rejected.labels(channel=CHANNEL, kind="too_many_connections").inc()
            writer.close()
            return
        self._open += 1
        self._connections.inc()
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the logger went away: it will reconnect and resend what was not answered
        except _Closed as closed:
            self._metrics.rejected.labels(channel=CHANNEL, kind=closed.kind).inc()
        except Exception:
            log.exception("HJ 212 connection failed; closing it (unanswered data will be resent)")
        finally:
            self._open -= 1
            self._connections.dec()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limits = self._limits
        spacing = 1.0 / limits.packets_per_second
        next_allowed = time.monotonic()
        logged_in = False
        while True:
            timeout = limits.idle_timeout_seconds
            if not logged_in:
                timeout = min(timeout, limits.login_timeout_seconds)
            try:
                frame = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
            except TimeoutError:
                if not logged_in:
                    raise _Closed("login_timeout") from None
                return  # idle
            except asyncio.IncompleteReadError as end:
                if end.partial.strip():
                    await self._handle(end.partial, writer)
                return
            except asyncio.LimitOverrunError:
                head = await reader.read(limits.max_frame_bytes)
                await self._reject(
                    "too_long",
                    f"no frame end within {limits.max_frame_bytes} bytes: connection closed",
                    mask_password(head),
                )
                return
            now = time.monotonic()
            if now < next_allowed:
                await asyncio.sleep(next_allowed - now)  # slow a flooding logger down
            next_allowed = max(now, next_allowed) + spacing
            logged_in = await self._handle(frame, writer) or logged_in

    async def _handle(self, frame: bytes, writer: asyncio.StreamWriter) -> bool:
        """Handle one frame; whether it came from a registered device with its password."""
        self._received.inc()
        outcome: FrameOutcome = handle_frame(frame, self._register)
        if outcome.sample_json is not None and outcome.device is not None:
            await self._publisher.publish(
                CHANNEL,
                self._settings.voc_topic,
                [(unit_key(outcome.sample_json, outcome.device), outcome.sample_json)],
                headers=[(RAW_HEADER, outcome.masked_raw)],
            )
        if outcome.rejection is not None:
            kind, reason = outcome.rejection
            if outcome.auth_failure:
                self._metrics.auth_failures.labels(channel=CHANNEL).inc()
            log.warning("HJ 212 frame from %s refused: %s", outcome.device or "?", reason)
            await self._reject(kind, reason, outcome.masked_raw)
        if outcome.reply is not None:
            writer.write(outcome.reply)
            try:
                await asyncio.wait_for(writer.drain(), self._limits.idle_timeout_seconds)
            except TimeoutError:
                raise _Closed("slow_reader") from None  # it does not read its replies
        return outcome.device is not None and not outcome.auth_failure

    async def _reject(self, kind: str, reason: str, masked_raw: bytes) -> None:
        self._metrics.rejected.labels(channel=CHANNEL, kind=kind).inc()
        await self._publisher.dead_letter(CHANNEL, kind, reason, masked_raw, self._clock())


async def serve_hj212(
    settings: Settings,
    register: Register,
    metrics: IngestMetrics,
    limits: ConnectionLimits = ConnectionLimits(),
    started: Callable[[asyncio.Server], None] = lambda server: None,
) -> None:
    """Serve until cancelled, on ``settings.hj212_host:hj212_port`` (loopback by default)."""
    from energywatch.kafka_topics import ensure_topics

    await asyncio.to_thread(ensure_topics, settings)
    publisher = KafkaPublisher(settings, metrics)
    await publisher.start()
    try:
        gateway = Hj212Gateway(settings, register, publisher, metrics, limits)
        server = await gateway.start(settings.hj212_host, settings.hj212_port)
        started(server)
        async with server:
            await server.serve_forever()
    finally:
        await publisher.stop()
