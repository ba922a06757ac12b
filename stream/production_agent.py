"""The production-reports agent: daily and monthly reports from the production topic into
TimescaleDB (``storage.production``), beside the readings agent in the worker's Faust app.

Same shape as the readings agent in ``stream.app``:

    take up to N raw records (no auto-ack)
      -> core (``decode_reports``, pure): decode, dead-letter bad records with the reason
      -> dead letters to their topic, awaited                    (durable)
      -> reports upserted in one DB transaction on natural keys   (durable)
      -> ack the records: Faust commits offsets only up to acknowledged records

A crash before the ack redelivers the batch; the upsert recognises records it already stored
by their offset, so a redelivery changes nothing.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import faust
import psycopg
from prometheus_client import CollectorRegistry
from psycopg.rows import TupleRow
from pydantic import TypeAdapter

from contracts.dead_letters import DeadLetter
from contracts.decoding import DecodeError, decode_json
from contracts.production import AnyProductionReport, ProductionReport
from energywatch.settings import Settings
from storage import alert_dirty
from storage.production import ReceivedReport, ReportSource, UpsertCounts, upsert_reports
from stream.agents import add_batch_agent, close_on_shutdown, raw_records, send_dead_letters
from stream.batch import RawRecord, dead_letter
from stream.metrics import ProductionMetrics
from stream.sink import TimescaleSink
from stream.windows import WindowSize, window_start

log = logging.getLogger(__name__)

STAGE: Final = "stream.production"
_PERIOD_WINDOWS: Final = {"day": WindowSize.DAY, "month": WindowSize.MONTH}
# the contract's union, decoded through the shared decoder so reasons read as everywhere else
_REPORTS: Final[TypeAdapter[AnyProductionReport]] = TypeAdapter(ProductionReport)


@dataclass(frozen=True)
class DecodedReports:
    accepted: list[tuple[RawRecord, AnyProductionReport]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


def _decode(record: RawRecord) -> AnyProductionReport:
    if record.value is None:
        raise DecodeError("empty", "empty record: a production report needs a JSON value")
    report = decode_json(_REPORTS, record.value, DecodeError)
    start = window_start(report.period_start, _PERIOD_WINDOWS[report.period])
    if start != report.period_start:
        # the gateway snaps starts onto boundaries; one off a boundary would join no rollup
        boundary = "00:00" if report.period == "day" else "the 1st, 00:00"
        raise DecodeError(
            "bad_period",
            f"period_start {report.period_start.isoformat()} is not the start of a "
            f"{report.period} ({boundary} China time), e.g. {start.isoformat()}",
        )
    return report


def decode_reports(records: Sequence[RawRecord], now: datetime) -> DecodedReports:
    """Decode every record into a report, or a dead letter saying exactly what was wrong."""
    outcome = DecodedReports()
    for record in records:
        try:
            outcome.accepted.append((record, _decode(record)))
        except DecodeError as exc:
            outcome.dead_letters.append(dead_letter(STAGE, record, exc.kind, exc.reason, now))
    return outcome


def _utc_now() -> datetime:
    return datetime.now(UTC)


def add_production_agent(
    app: faust.App,
    settings: Settings,
    registry: CollectorRegistry,
    *,
    clock: Callable[[], datetime] = _utc_now,
) -> None:
    """Add the agent that stores production reports to the worker's ``app``; it opens its
    own database connection when it first writes and closes it on shutdown."""
    metrics = ProductionMetrics.create(registry)
    sink = TimescaleSink(settings.database_url, on_error=lambda exc: metrics.db_write_errors.inc())
    production_topic = app.topic(settings.production_topic)
    dead_letter_topic = app.topic(settings.dead_letter_topic)

    async def handle(events: Sequence[Any]) -> None:
        started = time.perf_counter()
        records = raw_records(events)
        metrics.reports_consumed.inc(len(records))
        now = clock()
        decoded = decode_reports(records, now)
        if decoded.dead_letters:
            await send_dead_letters(dead_letter_topic, decoded.dead_letters, metrics.dead_letters)
        received = [
            ReceivedReport(report, now, ReportSource(r.topic, r.partition, r.offset))
            for r, report in decoded.accepted
        ]
        if received:

            async def work(conn: psycopg.AsyncConnection[TupleRow]) -> dict[str, UpsertCounts]:
                async with conn.transaction(), conn.cursor() as cur:
                    counts = await upsert_reports(cur, received)
                    changed = ((r.report.enterprise_code, r.report.period_start) for r in received)
                    await alert_dirty.mark_dirty(
                        cur, "production", alert_dirty.earliest_by_unit(changed)
                    )
                    return counts

            for kind, counts in (await sink.run("production reports write", work)).items():
                metrics.reports_stored.labels(kind=kind).inc(counts.stored)
                metrics.reports_revised.labels(kind=kind).inc(counts.revised)
                metrics.reports_unchanged.labels(kind=kind).inc(counts.unchanged)
        metrics.batch_seconds.observe(time.perf_counter() - started)

    add_batch_agent(app, production_topic, "store-production-reports", settings, handle)
    close_on_shutdown(app, sink)
