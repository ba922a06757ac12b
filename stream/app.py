"""The readings worker: a Faust app built by ``create_app(settings)``.

The agent is a thin adapter around ``stream.batch.process_batch``:

    take up to N raw records (no auto-ack)
      -> core: decode, dead-letter bad records, judge readings against the threshold
      -> dead letters to their topic, awaited          (durable)
      -> readings + new alerts in one DB transaction  (durable)
      -> pending alerts to the alerts topic, awaited, then marked published
      -> ack the records: Faust commits offsets only up to acknowledged records

A crash anywhere before the ack re-delivers the batch; idempotent writes and deterministic
alert ids make that harmless.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from alerts.static_threshold import StaticThreshold
from contracts.alert_events import AlertEvent, encode_alert
from contracts.dead_letters import encode_dead_letter
from energywatch.settings import Settings
from stream.batch import RawRecord, process_batch
from stream.metrics import WorkerMetrics
from stream.sink import TimescaleSink

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    clock: Clock = utc_now,
) -> faust.App:
    """Build the worker's Faust app; nothing connects until the worker starts."""
    metrics = WorkerMetrics.create(registry or CollectorRegistry())
    threshold = StaticThreshold(limit_kwh_per_interval=settings.threshold_kwh_per_interval)
    sink = TimescaleSink(settings.database_url, on_error=lambda exc: metrics.db_write_errors.inc())

    app = faust.App(
        settings.worker_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=settings.worker_commit_interval_seconds,
        broker_session_timeout=settings.worker_session_timeout_seconds,
        broker_heartbeat_interval=settings.worker_session_timeout_seconds / 4,
        stream_wait_empty=True,
    )
    readings_topic = app.topic(settings.readings_topic)
    alerts_topic = app.topic(settings.alerts_topic)
    dead_letter_topic = app.topic(settings.dead_letter_topic)

    async def send_all(topic: faust.TopicT, messages: Sequence[tuple[bytes | None, bytes]]) -> None:
        pending = [await topic.send(key=key, value=value) for key, value in messages]
        await asyncio.gather(*pending)  # every record acknowledged by the broker

    async def publish_alerts(alerts: Sequence[AlertEvent]) -> None:
        await send_all(
            alerts_topic, [(a.enterprise_code.encode(), encode_alert(a)) for a in alerts]
        )
        metrics.alerts_published.inc(len(alerts))

    async def handle(events: Sequence[Any]) -> None:
        started = time.perf_counter()
        records = [
            RawRecord(e.message.value, e.message.topic, e.message.partition, e.message.offset)
            for e in events
        ]
        metrics.records_consumed.inc(len(records))
        metrics.batch_size.observe(len(records))
        outcome = process_batch(records, threshold, clock())
        if outcome.dead_letters:
            await send_all(
                dead_letter_topic, [(None, encode_dead_letter(d)) for d in outcome.dead_letters]
            )
            for letter in outcome.dead_letters:
                metrics.dead_letters.labels(kind=letter.kind).inc()
                log.warning(
                    "dead-lettered %s[%s]@%s: %s",
                    letter.source_topic,
                    letter.source_partition,
                    letter.source_offset,
                    letter.reason,
                )
        result = await sink.write(outcome.readings, outcome.alerts)
        metrics.readings_stored.inc(result.readings_inserted)
        metrics.readings_duplicate.inc(len(outcome.readings) - result.readings_inserted)
        metrics.alerts_raised.inc(len(result.new_alert_ids))
        if result.new_alert_ids:
            await sink.publish_pending(publish_alerts, clock)
        metrics.batch_seconds.observe(time.perf_counter() - started)

    @app.agent(readings_topic, name="store-readings")
    async def store_readings(stream: Any) -> None:
        async for events in stream.noack_take(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        ):
            await handle(events)
            for event in events:
                await stream.ack(event)

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]
    async def publish_leftover_alerts() -> None:
        """Alerts stored before a crash but never published go out here."""
        await sink.publish_pending(publish_alerts, clock)

    async def close_sink(app: faust.App, **kwargs: Any) -> None:
        await sink.close()

    app.on_before_shutdown.connect(close_sink)  # type: ignore[arg-type]

    app.energywatch_metrics = metrics  # type: ignore[attr-defined]
    return app
