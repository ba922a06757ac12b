"""How the readings consumer sizes its batches (real Kafka): a backlog is drained in full
batches, however little one fetch brings; a stream that is caught up is never held back
waiting for producers."""

import asyncio
import time
from collections.abc import Sequence

import pytest
from aiokafka import ConsumerRecord
from kafka import KafkaProducer
from prometheus_client import CollectorRegistry

from energywatch.settings import Settings
from stream.metrics import WorkerMetrics
from stream.readings_consumer import BatchConsumer

pytestmark = pytest.mark.services

#: large enough that one partition fetch (aiokafka's default: 1 MiB) holds about 400 records
PAYLOAD = b"x" * 2500


def _produce(settings: Settings, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=20)
    for n in range(count):
        producer.send(settings.readings_topic, key=f"unit-{n % 60}".encode(), value=PAYLOAD)
    producer.flush()
    producer.close()


class _Recorder:
    """A lane's handle that keeps each batch's size and when it arrived."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, float]] = []
        self._grew = asyncio.Event()

    async def __call__(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        self.batches.append((len(records), time.monotonic()))
        self._grew.set()

    async def reached(self, count: int, seconds: float) -> None:
        async with asyncio.timeout(seconds):
            while self.records < count:
                self._grew.clear()
                await self._grew.wait()

    @property
    def records(self) -> int:
        return sum(size for size, _ in self.batches)


async def _consume_until(settings: Settings, recorder: _Recorder, expected: int, then=None):
    consumer = BatchConsumer(
        settings,
        settings.readings_topic,
        settings.worker_app_id,
        [recorder],
        WorkerMetrics.create(CollectorRegistry()).consumer_lag,
    )
    task = asyncio.create_task(consumer.run())
    try:
        await recorder.reached(expected, 60)
        if then is not None:
            await then()
    finally:
        await consumer.stop_and_wait(10)
        task.cancel()


def test_a_backlog_is_taken_in_full_batches_across_fetches(pipeline_settings: Settings):
    """6,000 records wait in six partitions, about 1,000 (2.5 MB) each: one fetch brings at
    most 1 MiB of each partition, so the first fetch holds about 2,400 records. The first
    batch still has the full 5,000, fetched on while Kafka held enough to fill it."""
    settings = pipeline_settings.model_copy(
        update={"worker_batch_size": 5000, "worker_lanes": 1, "worker_batch_seconds": 5.0}
    )
    _produce(settings, 6000)
    recorder = _Recorder()
    asyncio.run(_consume_until(settings, recorder, 6000))
    sizes = [size for size, _ in recorder.batches]
    assert sizes[0] == 5000, sizes
    assert sum(sizes) == 6000


def test_a_stream_that_is_caught_up_is_not_held_back_for_a_full_batch(
    pipeline_settings: Settings,
):
    """After the backlog, records trickle in (20 every 50 ms for 2.5 s), always fewer than a
    batch: each is handled as it comes, not after ``worker_batch_seconds`` (5 s here) spent
    gathering a full batch from producers."""
    settings = pipeline_settings.model_copy(
        update={"worker_batch_size": 5000, "worker_lanes": 1, "worker_batch_seconds": 5.0}
    )
    _produce(settings, 100)
    recorder = _Recorder()
    started: list[float] = []

    def trickle_producer() -> None:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        started.append(time.monotonic())
        for _ in range(50):
            for k in range(20):
                producer.send(settings.readings_topic, key=f"unit-{k}".encode(), value=PAYLOAD)
            producer.flush()
            time.sleep(0.05)
        producer.close()

    async def trickle() -> None:
        await asyncio.sleep(1.0)  # the consumer is idle, waiting for records
        await asyncio.to_thread(trickle_producer)
        await recorder.reached(1100, 10)

    asyncio.run(_consume_until(settings, recorder, 100, then=trickle))
    assert recorder.records == 1100
    first_of_trickle = next(at for at in (t for _, t in recorder.batches[1:]))
    assert first_of_trickle - started[0] < 1.5, "the trickle waited to fill a batch"
    assert len(recorder.batches) > 10, [size for size, _ in recorder.batches]
