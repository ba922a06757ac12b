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

from contracts.dead_letters import DeadLetter
from contracts.voc import VocDecodeError, VocSample, decode_voc_sample
from energywatch.settings import Settings
from storage import alert_dirty
from storage.voc import VocWriteResult, store_voc_samples
from stream.agents import add_batch_agent, close_on_shutdown, raw_records, send_dead_letters
from stream.batch import RawRecord, dead_letter
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
        try:
            if record.value is None:
                raise VocDecodeError("empty", "empty record: a VOC sample needs a JSON value")
            batch.samples.append(decode_voc_sample(record.value))
        except VocDecodeError as exc:
            batch.dead_letters.append(dead_letter(STAGE, record, exc.kind, exc.reason, now))
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

    async def write(
        conn: psycopg.AsyncConnection[TupleRow], samples: Sequence[VocSample]
    ) -> VocWriteResult:
        async with conn.transaction(), conn.cursor() as cur:
            result = await store_voc_samples(cur, samples)
            changed = ((s.enterprise_code, s.data_time) for s in samples)
            await alert_dirty.mark_dirty(cur, "voc", alert_dirty.earliest_by_unit(changed))
            return result

    async def handle(events: Sequence[Any]) -> None:
        started = time.perf_counter()
        records = raw_records(events)
        metrics.records_consumed.inc(len(records))
        batch = decode_voc_records(records, datetime.now(UTC))
        if batch.dead_letters:
            await send_dead_letters(dead_letter_topic, batch.dead_letters, metrics.dead_letters)
        if batch.samples:
            result = await sink.run("VOC batch write", lambda conn: write(conn, batch.samples))
            metrics.samples_stored.inc(result.samples_new)
            metrics.samples_corrected.inc(result.samples_corrected)
            metrics.samples_duplicate.inc(result.samples_unchanged)
            metrics.hourly_upserted.inc(result.hourly_rows)
            metrics.daily_upserted.inc(result.daily_rows)
        metrics.batch_seconds.observe(time.perf_counter() - started)

    add_batch_agent(app, voc_topic, "store-voc-samples", settings, handle)
    close_on_shutdown(app, sink)
