"""Runs the HTTPS ingest API: the publisher, the ASGI app and uvicorn, wired once."""

import asyncio
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

import uvicorn

from energywatch.kafka_topics import ensure_topics
from energywatch.settings import Settings
from ingest.http_api import create_http_app
from ingest.http_limits import CountTooLarge, HttpLimits, bounded_protocol
from ingest.metrics import IngestMetrics
from ingest.publisher import KafkaPublisher
from plans.register import Register


def uvicorn_config(settings: Settings, app: object, metrics: IngestMetrics) -> uvicorn.Config:
    """Bound to ``http_host`` (loopback unless configured); TLS when cert and key are set;
    connections and bodies bounded by ``HttpLimits`` (``EW_HTTP_*``), refusals counted."""
    tls = settings.http_tls_cert is not None and settings.http_tls_key is not None
    limits = HttpLimits.from_settings(settings)
    return uvicorn.Config(
        CountTooLarge(app, metrics.rejected),  # type: ignore[arg-type]
        http=bounded_protocol(limits, metrics.rejected),
        host=settings.http_host,
        port=settings.http_port,
        ssl_certfile=str(settings.http_tls_cert) if tls else None,
        ssl_keyfile=str(settings.http_tls_key) if tls else None,
        ssl_version=ssl.PROTOCOL_TLS_SERVER,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


async def serve_http(
    settings: Settings,
    register: Register,
    metrics: IngestMetrics,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    started: Callable[[uvicorn.Server], None] = lambda server: None,
) -> None:
    """Serve until stopped (SIGINT/SIGTERM, or ``server.should_exit`` set by the caller)."""
    # the topics must exist, or publishing would wait out Kafka's metadata timeout
    await asyncio.to_thread(ensure_topics, settings)
    publisher = KafkaPublisher(settings, metrics)
    await publisher.start()
    try:
        app = create_http_app(settings, register, publisher, metrics, clock)
        server = uvicorn.Server(uvicorn_config(settings, app, metrics))
        started(server)
        await server.serve()
    finally:
        await publisher.stop()
