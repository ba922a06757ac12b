"""Publishes what the gateways accepted, and dead-letters what they refused, to Kafka.

Every publish waits for the broker's acknowledgement (acks=all) before the gateway answers the
sender: an "accepted" answer means the record is durable, and nothing accepted is lost.
"""

import time
from collections.abc import Sequence
from datetime import datetime

from aiokafka import AIOKafkaProducer

from contracts.dead_letters import DeadLetter, encode_dead_letter
from energywatch.settings import Settings
from ingest.metrics import IngestMetrics

Message = tuple[bytes | None, bytes]


class KafkaPublisher:
    def __init__(self, settings: Settings, metrics: IngestMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks="all",
            linger_ms=5,
            max_batch_size=1024 * 1024,
            client_id="energywatch-ingest",
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(
        self,
        channel: str,
        topic: str,
        messages: Sequence[Message],
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        """Send and wait until the broker has every message (``headers`` go on each)."""
        if not messages:
            return
        started = time.perf_counter()
        extra = list(headers) if headers else None
        futures = [
            await self._producer.send(topic, value=v, key=k, headers=extra) for k, v in messages
        ]
        for future in futures:
            await future
        self._metrics.publish_seconds.labels(channel=channel).observe(time.perf_counter() - started)
        self._metrics.accepted.labels(channel=channel).inc(len(messages))

    async def dead_letter(
        self, channel: str, kind: str, reason: str, raw: bytes, now: datetime
    ) -> None:
        letter = DeadLetter(
            stage=f"ingest.{channel}",
            kind=kind,
            reason=reason[:2000],
            raw_base64=DeadLetter.encode_raw(raw),
            rejected_at=now,
        )
        await self._producer.send_and_wait(
            self._settings.dead_letter_topic, encode_dead_letter(letter)
        )
        self._metrics.dead_letters.labels(channel=channel).inc()
