"""The readings ledger (``meter_readings``): accounted rows in, what was new out.

``insert_new`` COPYs a batch into a session-local staging table and moves it into the
hypertable with ``ON CONFLICT DO NOTHING``, returning the keys that were new; the rare keys
that were already there are loaded with ``load`` and, when the core decides so, overwritten
with ``replace`` (a correction; the core counts it in ``revision``). All in the caller's
transaction.
"""

from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from stream.accounting import LedgerRow

Key = tuple[str, datetime]

#: the columns a ledger row is written with, in the order of :func:`copy_values`
COLUMNS = (
    "meter_id, period_start, enterprise_code, energy_type, interval_seconds, physical_quantity, "
    "physical_counter, physical_unit, source, consumption, tce, tce_equivalent, counted, "
    "exclusion, quality_flags, aggregated, revision"
)

_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS ledger_staging AS SELECT {COLUMNS} "  # noqa: S608 - constant
    "FROM meter_readings WITH NO DATA"
)
_COPY = "COPY ledger_staging FROM STDIN"
_INSERT = (
    f"INSERT INTO meter_readings ({COLUMNS}) TABLE ledger_staging "
    "ON CONFLICT (meter_id, period_start) DO NOTHING RETURNING meter_id, period_start"
)
_LOAD = (
    "SELECT m.meter_id, m.period_start, m.enterprise_code, m.energy_type, m.interval_seconds, "
    "m.physical_quantity, m.physical_counter, m.physical_unit, m.source, m.consumption, m.tce, "
    "m.tce_equivalent, m.counted, m.exclusion, m.quality_flags, m.aggregated, m.revision "
    "FROM meter_readings m JOIN unnest(%s::text[], %s::timestamptz[]) AS k(meter_id, period_start) "
    "USING (meter_id, period_start)"
)
_REPLACE = (
    "UPDATE meter_readings SET enterprise_code = %s, energy_type = %s, interval_seconds = %s, "
    "physical_quantity = %s, physical_counter = %s, physical_unit = %s, source = %s, "
    "consumption = %s, tce = %s, tce_equivalent = %s, counted = %s, exclusion = %s, "
    "quality_flags = %s, aggregated = %s, revision = %s, ingested_at = now() "
    "WHERE meter_id = %s AND period_start = %s"
)


def copy_values(row: LedgerRow) -> tuple[object, ...]:
    return (
        row.meter_id,
        row.period_start,
        row.enterprise_code,
        row.energy_type,
        row.interval_seconds,
        row.physical_quantity,
        row.physical_counter,
        row.physical_unit,
        row.source,
        row.consumption,
        row.tce,
        row.tce_equivalent,
        row.counted,
        row.exclusion,
        list(row.quality_flags),
        row.aggregated,
        row.revision,
    )


async def insert_new(cur: psycopg.AsyncCursor[TupleRow], rows: Sequence[LedgerRow]) -> set[Key]:
    """Insert the rows whose keys are not stored yet; return those keys. Keys must be unique
    within ``rows``."""
    if not rows:
        return set()
    await cur.execute(_STAGING)
    async with cur.copy(_COPY) as copy:
        for row in rows:
            await copy.write_row(copy_values(row))
    await cur.execute(_INSERT)
    inserted = {(str(m), p) for m, p in await cur.fetchall()}
    await cur.execute("TRUNCATE ledger_staging")
    return inserted


def _row(values: Sequence[object]) -> LedgerRow:
    (
        meter_id,
        period_start,
        enterprise_code,
        energy_type,
        interval_seconds,
        physical_quantity,
        physical_counter,
        physical_unit,
        source,
        consumption,
        tce,
        tce_equivalent,
        counted,
        exclusion,
        quality_flags,
        aggregated,
        revision,
    ) = values
    return LedgerRow(
        meter_id=str(meter_id),
        period_start=period_start,  # type: ignore[arg-type]
        enterprise_code=str(enterprise_code),
        energy_type=str(energy_type),
        interval_seconds=int(interval_seconds),  # type: ignore[call-overload]
        physical_quantity=physical_quantity,  # type: ignore[arg-type]
        physical_counter=physical_counter,  # type: ignore[arg-type]
        physical_unit=str(physical_unit),
        source=str(source),
        consumption=consumption,  # type: ignore[arg-type]
        tce=tce,  # type: ignore[arg-type]
        tce_equivalent=tce_equivalent,  # type: ignore[arg-type]
        counted=bool(counted) if counted is not None else True,
        exclusion=None if exclusion is None else str(exclusion),
        quality_flags=tuple(quality_flags or ()),  # type: ignore[arg-type]
        aggregated=bool(aggregated),
        revision=int(revision),  # type: ignore[call-overload]
    )


async def load(cur: psycopg.AsyncCursor[TupleRow], keys: Sequence[Key]) -> dict[Key, LedgerRow]:
    """The stored rows with these keys."""
    if not keys:
        return {}
    await cur.execute(_LOAD, ([k[0] for k in keys], [k[1] for k in keys]))
    rows = [_row(values) for values in await cur.fetchall()]
    return {row.key: row for row in rows}


async def replace(cur: psycopg.AsyncCursor[TupleRow], rows: Sequence[LedgerRow]) -> None:
    """Overwrite stored rows with corrected versions (same keys)."""
    if not rows:
        return
    await cur.executemany(
        _REPLACE, [(*copy_values(row)[2:], row.meter_id, row.period_start) for row in rows]
    )
