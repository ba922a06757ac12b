"""The notifier: consumes alert events and POSTs each to the configured webhook.

At-least-once from Kafka, exactly-once to the receiver as far as we can tell: a delivery is
recorded in ``alert_deliveries`` before the offset is committed, so a redelivered event is
skipped, and the receiver can also de-duplicate on ``Idempotency-Key``. An event that cannot
be decoded, or that the webhook still refuses after every retry, goes to the dead-letter
topic with the reason; the offset is committed only after that.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from psycopg.rows import TupleRow
from pydantic import ValidationError

from alerts.metrics import NotifierMetrics
from alerts.webhook import build_request
from contracts.alert_events import AlertEvent, decode_alert
from contracts.dead_letters import DeadLetter, encode_dead_letter
from energywatch.settings import Settings
from storage import alert_outbox
from storage.migrate import migrate

log = logging.getLogger(__name__)
CHANNEL = "webhook"
STAGE = "alerts.notifier"


def utc_now() -> datetime:
    return datetime.now(UTC)


class DeliveryFailed(Exception):
    pass


class Notifier:
    def __init__(
        self,
        settings: Settings,
        metrics: NotifierMetrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not settings.webhook_url:
            raise ValueError("no webhook configured: set EW_WEBHOOK_URL to the receiver's URL")
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def _post(self, client: httpx.AsyncClient, alert: AlertEvent) -> int:
        """POST with exponential backoff; return the attempts it took."""
        secret = self._settings.webhook_secret
        url = self._settings.webhook_url
        assert url is not None
        backoff = 0.5
        last_error = ""
        for attempt in range(1, self._settings.webhook_max_attempts + 1):
            request = build_request(
                alert,
                secret.get_secret_value().encode() if secret else None,
                str(int(self._clock().timestamp())),
            )
            try:
                response = await client.post(url, content=request.body, headers=request.headers)
                if response.status_code < 300:
                    return attempt
                last_error = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the receiver rejects this event: retrying will not help
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            self._metrics.notification_failures.labels(channel=CHANNEL).inc()
            if attempt < self._settings.webhook_max_attempts:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        raise DeliveryFailed(f"webhook delivery failed after {attempt} attempt(s): {last_error}")

    async def _dead_letter(
        self,
        producer: AIOKafkaProducer,
        record: ConsumerRecord[bytes, bytes],
        kind: str,
        reason: str,
    ) -> None:
        letter = DeadLetter(
            stage=STAGE,
            kind=kind,
            reason=reason[:2000],
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            raw_base64=DeadLetter.encode_raw(record.value or b""),
            rejected_at=self._clock(),
        )
        await producer.send_and_wait(self._settings.dead_letter_topic, encode_dead_letter(letter))
        self._metrics.dead_letters.labels(kind=kind).inc()
        log.warning("dead-lettered alert event at offset %s: %s", record.offset, reason)

    async def _handle(
        self,
        record: ConsumerRecord[bytes, bytes],
        conn: psycopg.AsyncConnection[TupleRow],
        client: httpx.AsyncClient,
        producer: AIOKafkaProducer,
    ) -> None:
        started = time.perf_counter()
        self._metrics.alerts_consumed.inc()
        try:
            alert = decode_alert(record.value or b"")
        except ValidationError as exc:
            await self._dead_letter(producer, record, "wrong_schema", str(exc.errors()[0]["msg"]))
            return
        if await alert_outbox.was_delivered(conn, alert.alert_id, CHANNEL):
            self._metrics.notifications_skipped.labels(channel=CHANNEL).inc()
            return
        try:
            attempts = await self._post(client, alert)
        except DeliveryFailed as exc:
            await self._dead_letter(producer, record, "delivery_failed", str(exc))
            return
        await alert_outbox.record_delivery(conn, alert.alert_id, CHANNEL, attempts)
        self._metrics.notifications_sent.labels(channel=CHANNEL).inc()
        self._metrics.delivery_seconds.observe(time.perf_counter() - started)
        log.info("delivered alert %s for %s", alert.alert_id, alert.enterprise_code)

    async def run(self) -> None:
        s = self._settings
        consumer = AIOKafkaConsumer(
            s.alerts_topic,
            bootstrap_servers=s.kafka_bootstrap,
            group_id=s.notifier_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
        conn = await psycopg.AsyncConnection.connect(s.database_url.get_secret_value())
        await migrate(conn)
        await consumer.start()
        await producer.start()
        try:
            async with httpx.AsyncClient(timeout=s.webhook_timeout_seconds) as client:
                while not self._stopping.is_set():
                    batches = await consumer.getmany(timeout_ms=500, max_records=100)
                    for records in batches.values():
                        for record in records:
                            await self._handle(record, conn, client, producer)
                    if batches:
                        await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()
            await conn.close()
