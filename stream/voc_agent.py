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
from prometheus_client import CollectorRegistry
from psycopg.rows import TupleRow

from contracts.dead_letters import DeadLetter
from contracts.voc import VocDecodeError, VocSample, decode_voc_sample
from energywatch.settings import Settings
from storage import alert_dirty
from storage.voc import VocWriteResult, store_voc_samples
from stream.agents import add_batch_agent, close_on_shutdown, raw_records, send_dead_letters
from stream.batch import RawRecord, dead_letter
from stream.metrics import VocMetrics
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


#: VOC batches close after at most this long (readings' batches: ``worker_batch_seconds``).
#: Samples are few (one a minute per monitor) and one above its single-reading limit is an
#: alert: waiting out the readings' half-second batch timer was most of such an alert's
#: Kafka-to-stored time (``energywatch bench alerts``).
VOC_BATCH_SECONDS: Final = 0.1


def voc_batch_settings(settings: Settings) -> Settings:
    """The settings the VOC agent takes its batches by: the worker's, closing sooner."""
    within = min(settings.worker_batch_seconds, VOC_BATCH_SECONDS)
    return settings.model_copy(update={"worker_batch_seconds": within})


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

    add_batch_agent(app, voc_topic, "store-voc-samples", voc_batch_settings(settings), handle)
    close_on_shutdown(app, sink)
