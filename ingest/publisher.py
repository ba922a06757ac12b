"""Publishes what the gateways accepted, and dead-letters what they refused, to Kafka.

Every publish waits for the broker's acknowledgement (acks=all) before the gateway answers the
sender: an "accepted" answer means the record is durable, and nothing accepted is lost.
"""

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import Counter, Histogram

from contracts.dead_letters import DeadLetter, encode_dead_letter
from energywatch.settings import Settings
from ingest.metrics import IngestMetrics

Message = tuple[bytes | None, bytes]
#: From this many records on, one record batch per partition beats a send per record; below
#: it, batches of one would each wait for their partition's previous request to finish.
_BATCH_API_FROM = 50


class KafkaPublisher:
    def __init__(self, settings: Settings, metrics: IngestMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._children: dict[str, tuple[Histogram, Counter]] = {}
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
        """Send and wait until the broker has every message (``headers`` go on each).

        Messages are grouped into one record batch per partition (the producer's own
        partitioner, murmur2 of the key as in every Kafka client, so a meter's records land
        on the same partition whichever channel sent them): far cheaper than one send each.
        """
        if not messages:
            return
        started = time.perf_counter()
        extra = list(headers) if headers else None
        if len(messages) < _BATCH_API_FROM:
            # a few records (an HJ 212 packet, a small upload): the producer's accumulator
            # merges them with other connections' records while it lingers
            sent = [
                await self._producer.send(
                    topic, value=v, key=k, headers=extra, partition=await self._partition(topic, k)
                )
                for k, v in messages
            ]
            for future in sent:
                await future
            self._observe(channel, started, len(messages))
            return
        partitions = sorted(await self._producer.partitions_for(topic))
        by_partition: dict[int, list[Message]] = {}
        for key, value in messages:
            partition = (
                self._partitioner(key, partitions, partitions)
                if key is not None
                else partitions[len(by_partition) % len(partitions)]
            )
            by_partition.setdefault(partition, []).append((key, value))
        futures = []
        for partition, batch_messages in by_partition.items():
            batch = self._producer.create_batch()
            for key, value in batch_messages:
                if batch.append(key=key, value=value, timestamp=None, headers=extra) is None:
                    futures.append(
                        await self._producer.send_batch(batch, topic, partition=partition)
                    )
                    batch = self._producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=extra)
            futures.append(await self._producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
        self._observe(channel, started, len(messages))

    def _observe(self, channel: str, started: float, count: int) -> None:
        children = self._children.get(channel)
        if children is None:
            children = self._children[channel] = (
                self._metrics.publish_seconds.labels(channel=channel),
                self._metrics.accepted.labels(channel=channel),
            )
        children[0].observe(time.perf_counter() - started)
        children[1].inc(count)

    async def _partition(self, topic: str, key: bytes | None) -> int | None:
        """The key's partition, as the producer would pick it, remembered per key: a Python
        murmur2 per record cost more than the rest of a send. Keyless records: the producer.
        (Adding partitions to a topic re-keys it for every producer; restart the gateways.)"""
        if key is None:
            return None
        cached = self._partitions.get((topic, key))
        if cached is None:
            partitions = sorted(await self._producer.partitions_for(topic))
            cached = self._partitioner(key, partitions, partitions)
            if len(self._partitions) > 100_000:  # bounded: one entry per device
                self._partitions.clear()
            self._partitions[(topic, key)] = cached
        return cached

    async def dead_letter(
        self, channel: str, kind: str, reason: str, raw: bytes, now: datetime
    ) -> None:
        await self.dead_letters(channel, [(kind, reason, raw)], now)

    async def dead_letters(
        self, channel: str, rejected: Sequence[tuple[str, str, bytes]], now: datetime
    ) -> None:
        """Dead-letter refused records (kind, reason, raw bytes), all acknowledged on return."""
        futures = []
        for kind, reason, raw in rejected:
            letter = DeadLetter(
                stage=f"ingest.{channel}",
                kind=kind,
                reason=reason[:2000],
                raw_base64=DeadLetter.encode_raw(raw),
                rejected_at=now,
            )
            futures.append(
                await self._producer.send(
                    self._settings.dead_letter_topic, encode_dead_letter(letter)
                )
            )
        await asyncio.gather(*futures)
        self._metrics.dead_letters.labels(channel=channel).inc(len(rejected))
