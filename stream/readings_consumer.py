"""The readings stream's Kafka adapter: batches straight from aiokafka, outside Faust's
per-event stream, made durable, then committed.

Why not a Faust agent: Faust wraps every record in an event and walks it through its stream
machinery; a bare agent that does nothing tops out near 13,000 records/s on the 2-core
benchmark machine (``energywatch bench side-by-side``, ``faust_take``), below what the readings
stream has to carry. aiokafka's ``getmany`` hands over whole fetches (about 280,000 records/s
on the same machine). The Faust app still hosts the consumer: it starts and stops with the
worker, sends dead letters through the app's producer, and runs the VOC and production agents.

Each lane (``EW_WORKER_LANES``, default 2) loops over its share of the assigned partitions,
one batch at a time::

    getmany (wait for the first records, then drain what is already fetched, up to N)
      -> handle(records): one database transaction (``stream.ledger_writer``)
      -> commit the batch's offsets to Kafka (after the transaction, never before)

Lanes own disjoint partitions (so a partition's records are still handled in order) and each
has its own connection, so one lane's accounting in Python runs while the database upserts
another's rollups: on 2 cores the two halves of a batch's time overlap. Lanes sharing a
county's rollup rows lock them in key order, so one waits for the other, never deadlocks.

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
from collections.abc import Awaitable, Callable, Iterable, Sequence, Set
from typing import Final

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError
from prometheus_client import Gauge

from energywatch.settings import Settings
from stream.batch import RawRecord
from stream.consumer_lag import partition_lags

log = logging.getLogger(__name__)

#: how long one ``getmany`` waits for the first record of a batch before checking for stop
_IDLE_POLL_SECONDS: Final = 1.0

#: while a backlog waits, how long one fetch for more of it may take (local Kafka: milliseconds)
_BACKLOG_FETCH_WAIT_SECONDS: Final = 0.05

#: how often the lag gauge is refreshed (as ``stream.lag_monitor`` does for the agents)
LAG_REFRESH_SECONDS: Final = 2.0


async def backlog(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> int:
    """Records of ``partitions`` in Kafka beyond the consumer's position, as of the last fetch
    (partitions not fetched yet, or no longer assigned, count none)."""
    assigned = consumer.assignment()
    behind = 0
    for tp in partitions:
        high = consumer.highwater(tp) if tp in assigned else None
        if high is not None:
            behind += max(0, high - await consumer.position(tp))
    return behind


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


def lane_partitions(assigned: Set[TopicPartition], lanes: int, lane: int) -> list[TopicPartition]:
    """The assigned partitions lane ``lane`` of ``lanes`` handles: dealt in turn in
    partition order, so every partition has exactly one lane."""
    return [tp for i, tp in enumerate(sorted(assigned)) if i % lanes == lane]


class BatchConsumer:
    """One topic consumed in batches, a lane per handle (each with its own connection),
    offsets committed once the handle returns."""

    def __init__(
        self,
        settings: Settings,
        topic: str,
        group: str,
        handles: Sequence[Handle],
        lag_gauge: Gauge,
    ) -> None:
        if not handles:
            raise ValueError("a batch consumer needs at least one handle (lane)")
        self._settings = settings
        self._topic = topic
        self._group = group
        self._handles = list(handles)
        self._lag_gauge = lag_gauge
        self._consumer: AIOKafkaConsumer | None = None
        #: per lane, held while its batch is being made durable; a rebalance waits for them
        self._busy = [asyncio.Lock() for _ in handles]
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
        lanes = [
            asyncio.create_task(self._lane(consumer, n), name=f"readings-lane-{n}")
            for n in range(len(self._handles))
        ]
        try:
            await asyncio.gather(*lanes)  # the first failing lane's error stops them all
        finally:
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
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

    async def _lane(self, consumer: AIOKafkaConsumer, lane: int) -> None:
        handle, busy, lanes = self._handles[lane], self._busy[lane], len(self._handles)
        while not self._stopping.is_set():
            mine = lane_partitions(consumer.assignment(), lanes, lane)
            if not mine:
                await asyncio.sleep(0.1)  # nothing assigned to this lane (yet)
                continue
            try:
                batch = await self._take(consumer, mine)
            except IllegalStateError:
                continue  # a rebalance took a partition away while waiting: look again
            if batch:
                async with busy:
                    await handle(batch)
                    self._durable.update(next_offsets(batch))
                await self._commit(consumer, next_offsets(batch))

    async def _take(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Wait for the first records of ``partitions`` (up to a second), then add what is
        already fetched; while Kafka already holds enough of these partitions to fill the
        batch, fetch it (for up to ``worker_batch_seconds``). A stream that is caught up goes
        on in small batches (low latency); a backlog is drained in full ones, whose
        readings share more hour, day and month rollup rows (a 3,600-reading batch of the
        benchmark's fleet touched 6 rollup rows per reading, a 30,000-reading one 2.3)."""
        size = self._settings.worker_batch_size
        fetched = await consumer.getmany(
            *partitions, timeout_ms=int(_IDLE_POLL_SECONDS * 1000), max_records=size
        )
        batch = [r for records in fetched.values() for r in records]
        deadline = time.monotonic() + self._settings.worker_batch_seconds
        while batch and len(batch) < size:
            more = await consumer.getmany(*partitions, timeout_ms=0, max_records=size - len(batch))
            if not more:
                left = deadline - time.monotonic()
                if left <= 0 or await backlog(consumer, partitions) < size - len(batch):
                    break  # what Kafka holds would not fill it: never wait for producers
                more = await consumer.getmany(
                    *partitions,
                    timeout_ms=int(min(left, _BACKLOG_FETCH_WAIT_SECONDS) * 1000) + 1,
                    max_records=size - len(batch),
                )
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
        """For a rebalance: wait for the batches in hand, commit what is durable in
        ``partitions``, and forget them (their next owner reports their lag)."""
        consumer = self._consumer
        async with contextlib.AsyncExitStack() as stack:
            for busy in self._busy:
                await stack.enter_async_context(busy)
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
