"""The VOC samples agent: a thin adapter around ``storage.voc``, in the readings worker.

    take up to N raw records from the VOC topic (no auto-ack)
      -> core: decode, bad records become dead letters with their reason and raw bytes
      -> dead letters to their topic, awaited                               (durable)
      -> one DB transaction: store the samples, recompute the hourly and daily averages
         they touch                                                         (durable)
      -> ack the records: Faust commits offsets only up to acknowledged records

A crash anywhere before the ack re-delivers the batch. That is harmless: samples are upserted
on their natural key and the averages recomputed from what is stored, so a redelivered batch
changes no row (a dead letter may be sent twice).
"""

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import faust
import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram
from psycopg.rows import TupleRow

from contracts.dead_letters import DeadLetter, encode_dead_letter
from contracts.voc import VocDecodeError, VocSample, decode_voc_sample
from energywatch.settings import Settings
from storage.voc import VocWriteResult, store_voc_samples
from stream.batch import RawRecord
from stream.sink import TimescaleSink

log = logging.getLogger(__name__)

STAGE: Final = "stream.voc"


@dataclass(frozen=True)
class VocBatch:
    """A batch of raw records decoded: the samples, and a dead letter per bad record."""

    samples: list[VocSample] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def decode_voc_records(records: Sequence[RawRecord], now: datetime) -> VocBatch:
    """Decode every record; the bad ones become dead letters saying what was wrong."""
    batch = VocBatch()
    for record in records:
        raw = record.value if record.value is not None else b""
        try:
            if record.value is None:
                raise VocDecodeError("empty", "empty record: a VOC sample needs a JSON value")
            batch.samples.append(decode_voc_sample(raw))
        except VocDecodeError as exc:
            batch.dead_letters.append(
                DeadLetter(
                    stage=STAGE,
                    kind=exc.kind,
                    reason=exc.reason[:2000],
                    source_topic=record.topic,
                    source_partition=record.partition,
                    source_offset=record.offset,
                    raw_base64=DeadLetter.encode_raw(raw),
                    rejected_at=now,
                )
            )
    return batch


@dataclass(frozen=True)
class VocMetrics:
    records_consumed: Counter
    samples_stored: Counter
    samples_corrected: Counter
    samples_duplicate: Counter
    dead_letters: Counter
    hourly_upserted: Counter
    daily_upserted: Counter
    db_write_errors: Counter
    batch_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "VocMetrics":
        return cls(
            records_consumed=Counter(
                "energywatch_voc_samples_consumed_total",
                "Records read from the VOC topic",
                registry=registry,
            ),
            samples_stored=Counter(
                "energywatch_voc_samples_stored_total",
                "VOC samples newly written to TimescaleDB",
                registry=registry,
            ),
            samples_corrected=Counter(
                "energywatch_voc_samples_corrected_total",
                "Stored VOC samples replaced by a version with other values",
                registry=registry,
            ),
            samples_duplicate=Counter(
                "energywatch_voc_samples_duplicate_total",
                "VOC samples already stored as they are (redelivered or replayed): no-ops",
                registry=registry,
            ),
            dead_letters=Counter(
                "energywatch_voc_dead_letters_total",
                "VOC records sent to the dead-letter topic, by kind of problem",
                ["kind"],
                registry=registry,
            ),
            hourly_upserted=Counter(
                "energywatch_voc_hourly_averages_upserted_total",
                "Hourly average rows (monitor, pollutant, hour) inserted or changed",
                registry=registry,
            ),
            daily_upserted=Counter(
                "energywatch_voc_daily_averages_upserted_total",
                "Daily average rows (monitor, pollutant, day) inserted or changed",
                registry=registry,
            ),
            db_write_errors=Counter(
                "energywatch_voc_db_write_errors_total",
                "Failed VOC batch writes (each is retried)",
                registry=registry,
            ),
            batch_seconds=Histogram(
                "energywatch_voc_batch_seconds",
                "Time to make one VOC batch durable: decode, dead-letter, write",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
        )


def add_voc_agent(app: faust.App, settings: Settings, registry: CollectorRegistry) -> None:
    """Add the agent that stores VOC samples and their averages to the worker's ``app``."""
    metrics = VocMetrics.create(registry)
    sink = TimescaleSink(settings.database_url, on_error=lambda exc: metrics.db_write_errors.inc())
    voc_topic = app.topic(settings.voc_topic)
    dead_letter_topic = app.topic(settings.dead_letter_topic)

    async def send_dead_letters(letters: Sequence[DeadLetter]) -> None:
        pending = [
            await dead_letter_topic.send(key=None, value=encode_dead_letter(letter))
            for letter in letters
        ]
        await asyncio.gather(*pending)  # every record acknowledged by the broker
        for letter in letters:
            metrics.dead_letters.labels(kind=letter.kind).inc()
            log.warning(
                "dead-lettered %s[%s]@%s: %s",
                letter.source_topic,
                letter.source_partition,
                letter.source_offset,
                letter.reason,
            )

    async def write(
        conn: psycopg.AsyncConnection[TupleRow], samples: Sequence[VocSample]
    ) -> VocWriteResult:
        async with conn.transaction(), conn.cursor() as cur:
            return await store_voc_samples(cur, samples)

    async def handle(events: Sequence[Any]) -> None:
        started = time.perf_counter()
        records = [
            RawRecord(e.message.value, e.message.topic, e.message.partition, e.message.offset)
            for e in events
        ]
        metrics.records_consumed.inc(len(records))
        batch = decode_voc_records(records, datetime.now(UTC))
        if batch.dead_letters:
            await send_dead_letters(batch.dead_letters)
        if batch.samples:
            result = await sink.run("VOC batch write", lambda conn: write(conn, batch.samples))
            metrics.samples_stored.inc(result.samples_new)
            metrics.samples_corrected.inc(result.samples_corrected)
            metrics.samples_duplicate.inc(result.samples_unchanged)
            metrics.hourly_upserted.inc(result.hourly_rows)
            metrics.daily_upserted.inc(result.daily_rows)
        metrics.batch_seconds.observe(time.perf_counter() - started)

    @app.agent(voc_topic, name="store-voc-samples")
    async def store_voc_samples_agent(stream: Any) -> None:
        async for events in stream.noack_take(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        ):
            await handle(events)
            for event in events:
                await stream.ack(event)

    async def close_sink(app: faust.App, **kwargs: Any) -> None:
        await sink.close()

    app.on_before_shutdown.connect(close_sink)  # type: ignore[arg-type]
