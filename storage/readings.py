"""Batched, idempotent writes of meter readings.

A batch is COPYed into a session-local staging table and moved into the hypertable with
``ON CONFLICT DO NOTHING`` on the natural key, so a redelivered reading changes nothing and
duplicates inside one batch are harmless. COPY is the fastest way into PostgreSQL.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from contracts.readings import Reading


async def _ensure_staging(cur: psycopg.AsyncCursor[TupleRow]) -> None:
    await cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS meter_readings_staging "
        "(LIKE meter_readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )


async def insert_readings(cur: psycopg.AsyncCursor[TupleRow], readings: Sequence[Reading]) -> int:
    """Insert readings within the caller's transaction; return how many rows were new."""
    if not readings:
        return 0
    await _ensure_staging(cur)
    async with cur.copy(
        "COPY meter_readings_staging (meter_id, period_start, enterprise_code, energy_type, "
        "interval_seconds, physical_quantity, physical_counter, physical_unit, source) FROM STDIN"
    ) as copy:
        for r in readings:
            await copy.write_row(
                (
                    r.meter_id,
                    r.period_start,
                    r.enterprise_code,
                    r.energy_type.value,
                    r.interval_seconds,
                    r.physical_quantity,
                    r.physical_counter,
                    r.physical_unit,
                    r.source,
                )
            )
    await cur.execute(
        "INSERT INTO meter_readings (meter_id, period_start, enterprise_code, energy_type, "
        "interval_seconds, physical_quantity, physical_counter, physical_unit, source) "
        "SELECT meter_id, period_start, enterprise_code, energy_type, interval_seconds, "
        "physical_quantity, physical_counter, physical_unit, source FROM meter_readings_staging "
        "ON CONFLICT (meter_id, period_start) DO NOTHING"
    )
    inserted = cur.rowcount
    await cur.execute("TRUNCATE meter_readings_staging")
    return inserted


@dataclass(frozen=True)
class StoredSummary:
    """What the database holds: for the end of a run and for tests."""

    readings: int
    meters: int
    enterprises: int
    first_period: datetime | None
    last_period: datetime | None
    total_by_unit: dict[str, float]
    alerts: int  # alert events in the history
    alerts_published: int


async def stored_summary(conn: psycopg.AsyncConnection[TupleRow]) -> StoredSummary:
    cur = await conn.execute(
        "SELECT count(*), count(DISTINCT meter_id), count(DISTINCT enterprise_code), "
        "min(period_start), max(period_start) FROM meter_readings"
    )
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute(
        "SELECT physical_unit, sum(physical_quantity) FROM meter_readings GROUP BY 1 ORDER BY 1"
    )
    totals = {str(unit): float(total) for unit, total in await cur.fetchall()}
    cur = await conn.execute("SELECT count(*), count(published_at) FROM alert_history")
    alerts = await cur.fetchone()
    assert alerts is not None
    await conn.rollback()
    return StoredSummary(
        readings=int(row[0]),
        meters=int(row[1]),
        enterprises=int(row[2]),
        first_period=row[3],
        last_period=row[4],
        total_by_unit=totals,
        alerts=int(alerts[0]),
        alerts_published=int(alerts[1]),
    )


async def count_readings(conn: psycopg.AsyncConnection[TupleRow], meter_ids: Sequence[str]) -> int:
    """How many readings are stored for these meters."""
    cur = await conn.execute(
        "SELECT count(*) FROM meter_readings WHERE meter_id = ANY(%s)", (list(meter_ids),)
    )
    row = await cur.fetchone()
    await conn.rollback()
    return int(row[0]) if row else 0
