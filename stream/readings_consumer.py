"""The readings stream's Kafka adapter: batches straight from aiokafka, outside Faust's
per-event stream, made durable, then committed.

Why not a Faust agent: Faust wraps every record in an event and walks it through its stream
machinery; a bare agent that does nothing tops out near 13,000 records/s on the 2-core
benchmark machine (``energywatch bench side-by-side``, ``faust_take``), below what the readings
stream has to carry. aiokafka's ``getmany`` hands over whole fetches (about 280,000 records/s
on the same machine). The Faust app still hosts the consumer: it starts and stops with the
worker, sends dead letters through the app's producer, and runs the VOC and production agents.

The loop, one batch at a time::

    getmany (wait for the first records, then drain what is already fetched, up to N)
      -> handle(records): one database transaction (``stream.ledger_writer``)
      -> commit the batch's offsets to Kafka (after the transaction, never before)

A crash before the transaction commits redelivers the batch; after it, the database's own
progress (``stream_progress``) skips what was done, so a commit lost to a crash or a rebalance
costs a re-read, never a double count. A rebalance waits for the batch in hand to finish, then
commits it, so the next owner starts where this one stopped.

The group is ``worker_app_id`` (the same name the database keys the readings' progress by),
whether or not the worker also runs the Faust agents, which use a group of their own.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from prometheus_client import Gauge

from energywatch.settings import Settings
from stream.batch import RawRecord
from stream.consumer_lag import partition_lags

log = logging.getLogger(__name__)

#: how long one ``getmany`` waits for the first record of a batch before checking for stop
_IDLE_POLL_SECONDS: Final = 1.0

#: how often the lag gauge is refreshed (as ``stream.lag_monitor`` does for the agents)
LAG_REFRESH_SECONDS: Final = 2.0


def raw_record(record: ConsumerRecord[bytes, bytes]) -> RawRecord:
    """An aiokafka record as the pure cores take it."""
    return RawRecord(record.value, record.topic, record.partition, record.offset)


def produced_at(record: ConsumerRecord[bytes, bytes]) -> float | None:
    """The producer's CreateTime in epoch seconds, or None when the record has none."""
    return record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else None


def next_offsets(records: Iterable[ConsumerRecord[bytes, bytes]]) -> dict[TopicPartition, int]:
    """Per partition, the offset after the batch's last record: what Kafka is told."""
    after: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        after[tp] = max(after.get(tp, 0), r.offset + 1)
    return after


Handle = Callable[[Sequence[ConsumerRecord[bytes, bytes]]], Awaitable[None]]


class BatchConsumer:
    """One topic consumed in batches by ``handle``, offsets committed once it returns."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        group: str,
        handle: Handle,
        lag_gauge: Gauge,
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._group = group
        self._handle = handle
        self._lag_gauge = lag_gauge
        self._consumer: AIOKafkaConsumer | None = None
        #: held while a batch is being made durable; a rebalance waits for it
        self._busy = asyncio.Lock()
        #: per partition, the next offset after what is durable (this process's view)
        self._durable: dict[TopicPartition, int] = {}
        self._stopping = asyncio.Event()
        self._running = False
        self._finished = asyncio.Event()
        self._reported: set[TopicPartition] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until ``stop``; a failing batch raises (the worker then stops, so its
        supervisor restarts it and the batch is read again)."""
        s = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap,
            group_id=self._group,
            client_id=f"{self._group}-readings",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(s.worker_session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(s.worker_session_timeout_seconds * 1000 / 4),
            max_poll_records=s.worker_batch_size,
        )
        consumer.subscribe([self._topic], listener=_FinishBatchFirst(self))
        self._running = True
        try:
            await consumer.start()
        except BaseException:
            self._finished.set()
            raise
        self._consumer = consumer
        lag = asyncio.create_task(self._refresh_lag_forever(), name="readings-lag")
        try:
            while not self._stopping.is_set():
                batch = await self._take(consumer)
                if batch:
                    async with self._busy:
                        await self._handle(batch)
                        self._durable.update(next_offsets(batch))
                    await self._commit(consumer, next_offsets(batch))
        finally:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag
            self._consumer = None
            try:
                await consumer.stop()  # leaves the group: the others take over at once
            finally:
                self._finished.set()

    async def stop_and_wait(self, within_seconds: float) -> None:
        """Finish the batch in hand and leave the group, waiting up to ``within_seconds``
        (a batch stuck on an unreachable database is then abandoned: it was not committed,
        so it is read again)."""
        self._stopping.set()
        if self._running:
            try:
                await asyncio.wait_for(self._finished.wait(), within_seconds)
            except TimeoutError:
                log.warning("the readings batch in hand did not finish in %.0fs", within_seconds)

    # -- batches -----------------------------------------------------------------------------

    async def _take(self, consumer: AIOKafkaConsumer) -> list[ConsumerRecord[bytes, bytes]]:
        """Wait for the first records (up to a second), then add what is already fetched,
        without waiting, up to the batch size: batches are small when the stream is quiet
        (low latency) and grow while a backlog builds up behind a slow write."""
        size = self._settings.worker_batch_size
        fetched = await consumer.getmany(
            timeout_ms=int(_IDLE_POLL_SECONDS * 1000), max_records=size
        )
        batch = [r for records in fetched.values() for r in records]
        while batch and len(batch) < size:
            more = await consumer.getmany(timeout_ms=0, max_records=size - len(batch))
            if not more:
                break
            batch.extend(r for records in more.values() for r in records)
        return batch

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Tell Kafka; a failure only means the next owner re-reads records the database
        will skip, so it is logged, not raised."""
        assigned = consumer.assignment()
        offsets = {tp: o for tp, o in offsets.items() if tp in assigned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            log.info("offsets not committed (%s); the database's progress skips the re-read", exc)

    async def finish_and_commit(self, partitions: Iterable[TopicPartition]) -> None:
        """For a rebalance: wait for the batch in hand, commit what is durable in
        ``partitions``, and forget them (their next owner reports their lag)."""
        consumer = self._consumer
        async with self._busy:
            offsets = {tp: self._durable.pop(tp) for tp in partitions if tp in self._durable}
        if consumer is not None and offsets:
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                log.info("offsets not committed before the rebalance (%s)", exc)

    # -- lag ---------------------------------------------------------------------------------

    async def _refresh_lag_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(LAG_REFRESH_SECONDS)
            try:
                await asyncio.wait_for(self.refresh_lag(), 10.0)
            except (KafkaError, OSError, TimeoutError) as exc:
                if not failing:
                    log.warning("readings lag not refreshed (%s); retrying", exc)
                failing = True
            else:
                failing = False

    async def refresh_lag(self) -> None:
        """Set the lag gauge of every assigned partition: its end offset minus the next
        offset to process (durable here, else the group's commit, else the log start)."""
        consumer = self._consumer
        if consumer is None:
            return
        assigned = sorted(consumer.assignment())
        lags: dict[tuple[str, int], int] = {}
        if assigned:
            ends = await consumer.end_offsets(assigned)
            unknown = [tp for tp in assigned if tp not in self._durable]
            committed = {tp: await consumer.committed(tp) for tp in unknown}
            starts = await consumer.beginning_offsets(unknown) if unknown else {}
            lags = partition_lags(
                [(tp.topic, tp.partition) for tp in assigned],
                {(tp.topic, tp.partition): o for tp, o in ends.items()},
                {(tp.topic, tp.partition): o for tp, o in self._durable.items()},
                {(tp.topic, tp.partition): o for tp, o in committed.items()},
                {(tp.topic, tp.partition): o for tp, o in starts.items()},
            )
        for topic, partition in {(tp.topic, tp.partition) for tp in self._reported} - set(lags):
            self._lag_gauge.remove(self._group, topic, str(partition))
        for (topic, partition), value in lags.items():
            self._lag_gauge.labels(self._group, topic, str(partition)).set(value)
        self._reported = {TopicPartition(t, p) for t, p in lags}


class _FinishBatchFirst(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions leave this consumer only after the batch in hand is durable and committed."""

    def __init__(self, consumer: BatchConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        started = time.perf_counter()
        await self._consumer.finish_and_commit(revoked)
        log.info("partitions handed over after %.2fs", time.perf_counter() - started)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("readings partitions assigned: %s", sorted(tp.partition for tp in assigned))
