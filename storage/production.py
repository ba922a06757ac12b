"""Production reports in TimescaleDB: batched upserts on natural keys, and the two questions
asked of them (migration 0006).

* ``upsert_reports``: one multi-row upsert per report kind in the caller's transaction. A report
  whose value differs from the stored one replaces it and bumps ``revision``; the same value
  again changes nothing, and so does a Kafka record redelivered after a crash (its offset is
  at or before the one stored from the same topic partition), so a retried batch is harmless.
* ``product_unit_energy``: kgce per tonne (gce per kWh for power) per unit, product and period,
  from the ``product_unit_energy`` view (its conventions are documented there).
* ``daily_vs_monthly``: a unit's monthly figure for one energy type against the sum of its daily
  rollups, by ``stream.data_quality.daily_vs_monthly`` (DOMAIN.md §5: within 5%).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Literal

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from contracts.production import AnyProductionReport, EnergyTotalReport
from contracts.readings import READING_MODELS, EnergyType
from stream.data_quality import DailyVsMonthly
from stream.data_quality import daily_vs_monthly as compare_daily_with_monthly
from stream.windows import WindowSize, window_end

Period = Literal["day", "month"]
REPORT_KINDS: Final = ("product_output", "energy_total", "output_value", "value_added")


@dataclass(frozen=True)
class ReportSource:
    """Where a report was read from, so a redelivered record can be recognised."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class ReceivedReport:
    report: AnyProductionReport
    received_at: datetime
    source: ReportSource | None = None


@dataclass(frozen=True)
class UpsertCounts:
    new: int = 0
    revised: int = 0  # replaced a stored value
    unchanged: int = 0  # the stored value again, or a redelivered record

    @property
    def stored(self) -> int:
        return self.new + self.revised


@dataclass(frozen=True)
class _Table:
    name: str
    keys: tuple[tuple[str, str], ...]  # (column, SQL type)
    values: tuple[tuple[str, str], ...]
    row: Callable[[Any], tuple[Any, ...]]  # the report's keys then values


def _energy_total_row(r: EnergyTotalReport) -> tuple[Any, ...]:
    unit = READING_MODELS[r.energy_type].physical_unit
    quantity = getattr(r, f"consumption_{unit.lower()}")
    return (r.enterprise_code, r.energy_type.value, r.period, r.period_start, quantity, unit)


_PERIOD_KEYS: Final = (("period", "text"), ("period_start", "timestamptz"))
_TABLES: Final[dict[str, _Table]] = {
    "product_output": _Table(
        "product_output_reports",
        (("enterprise_code", "text"), ("product_code", "text"), *_PERIOD_KEYS),
        (("output_t", "double precision"), ("output_mwh", "double precision")),
        lambda r: (
            r.enterprise_code,
            r.product_code,
            r.period,
            r.period_start,
            r.output_t,
            r.output_mwh,
        ),
    ),
    "energy_total": _Table(
        "energy_total_reports",
        (("enterprise_code", "text"), ("energy_type", "text"), *_PERIOD_KEYS),
        (("quantity", "double precision"), ("physical_unit", "text")),
        _energy_total_row,
    ),
    "output_value": _Table(
        "output_value_reports",
        (("enterprise_code", "text"), *_PERIOD_KEYS),
        (("output_value_cny", "double precision"),),
        lambda r: (r.enterprise_code, r.period, r.period_start, r.output_value_cny),
    ),
    "value_added": _Table(
        "value_added_reports",
        (("enterprise_code", "text"), *_PERIOD_KEYS),
        (("value_added_cny", "double precision"),),
        lambda r: (r.enterprise_code, r.period, r.period_start, r.value_added_cny),
    ),
}
_SOURCE_COLUMNS: Final = (
    ("received_at", "timestamptz"),
    ("source_topic", "text"),
    ("source_partition", "integer"),
    ("source_offset", "bigint"),
)


def _upsert_statement(table: _Table) -> sql.Composed:
    columns = [*table.keys, *table.values, *_SOURCE_COLUMNS]
    names = [sql.Identifier(c) for c, _ in columns]
    keys = [sql.Identifier(c) for c, _ in table.keys]
    values = [sql.Identifier(c) for c, _ in table.values]
    replaced = [*values, *(sql.Identifier(c) for c, _ in _SOURCE_COLUMNS[1:])]
    return sql.SQL(
        """INSERT INTO {table} AS t ({names})
SELECT * FROM unnest({arrays})
ON CONFLICT ({keys}) DO UPDATE SET {sets}, revision = t.revision + 1,
    revised_at = excluded.received_at
WHERE ({stored}) IS DISTINCT FROM ({sent})
  AND (excluded.source_offset IS NULL OR t.source_offset IS NULL
       OR t.source_topic <> excluded.source_topic
       OR t.source_partition <> excluded.source_partition
       OR excluded.source_offset > t.source_offset)
RETURNING xmax = 0"""
    ).format(
        table=sql.Identifier(table.name),
        names=sql.SQL(", ").join(names),
        arrays=sql.SQL(", ").join(
            sql.SQL("{}::{}[]").format(sql.Placeholder(), sql.SQL(kind)) for _, kind in columns
        ),
        keys=sql.SQL(", ").join(keys),
        sets=sql.SQL(", ").join(sql.SQL("{0} = excluded.{0}").format(c) for c in replaced),
        stored=sql.SQL(", ").join(sql.SQL("t.{}").format(c) for c in values),
        sent=sql.SQL(", ").join(sql.SQL("excluded.{}").format(c) for c in values),
    )


_UPSERTS: Final = {kind: _upsert_statement(table) for kind, table in _TABLES.items()}


async def upsert_reports(
    cur: psycopg.AsyncCursor[TupleRow], reports: Sequence[ReceivedReport]
) -> dict[str, UpsertCounts]:
    """Store reports in the caller's transaction; return what happened, per report kind.

    Reports are applied in the order given, as if one at a time: several reports for one
    natural key in a batch are applied in rounds (each key's first, then each key's second,
    ...), so a batch leaves the same values and revisions however the stream was cut."""
    outcome: dict[str, UpsertCounts] = {}
    for kind, table in _TABLES.items():
        per_key: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for received in reports:
            if received.report.kind != kind:
                continue
            row = table.row(received.report)
            source = received.source
            per_key.setdefault(row[: len(table.keys)], []).append(
                (
                    *row,
                    received.received_at,
                    source.topic if source else None,
                    source.partition if source else None,
                    source.offset if source else None,
                )
            )
        if not per_key:
            continue
        new = revised = sent = 0
        # key order: concurrent writers lock rows in the same order and never deadlock
        keys = sorted(per_key)
        for round_ in range(max(len(rows) for rows in per_key.values())):
            rows = [per_key[key][round_] for key in keys if len(per_key[key]) > round_]
            await cur.execute(_UPSERTS[kind], [list(column) for column in zip(*rows, strict=True)])
            inserted = [bool(flag) for (flag,) in await cur.fetchall()]
            new += sum(inserted)
            revised += len(inserted) - sum(inserted)
            sent += len(rows)
        outcome[kind] = UpsertCounts(new, revised, sent - new - revised)
    return outcome


class EnergyBasis(StrEnum):
    """How a product's unit energy was worked out (see the view in migration 0006)."""

    SINGLE_PRODUCT = "single_product"  # the whole unit's energy over its only product
    SEVERAL_PRODUCTS = "several_products"  # not split: figures NULL
    NO_OUTPUT = "no_output"  # output 0: figures NULL
    NO_ENERGY = "no_energy"  # no rollup for the unit and period: figures NULL


@dataclass(frozen=True)
class ProductUnitEnergy:
    enterprise_code: str
    product_code: str
    period: Period
    period_start: datetime
    output_t: float | None
    output_mwh: float | None
    products_made: int  # the unit's products with output > 0 in the period
    unit_tce_counted: float | None  # the unit's controlled total over the period
    basis: EnergyBasis
    kgce_per_t: float | None
    gce_per_kwh: float | None  # power plants: same number as kgce per MWh


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def product_unit_energy(
    conn: psycopg.AsyncConnection[TupleRow],
    enterprise_code: str,
    period: Period,
    start: datetime,
    end: datetime,
) -> list[ProductUnitEnergy]:
    """A unit's products' energy per tonne (or per kWh) for periods starting in [start, end)."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            "SELECT enterprise_code, product_code, period, period_start, output_t, output_mwh, "
            "products_made, unit_tce_counted, basis, kgce_per_t, gce_per_kwh "
            "FROM product_unit_energy "
            "WHERE enterprise_code = %s AND period = %s "
            "AND period_start >= %s AND period_start < %s "
            "ORDER BY period_start, product_code",
            (enterprise_code, period, start, end),
        )
        rows = await cur.fetchall()
    return [
        ProductUnitEnergy(
            enterprise_code=code,
            product_code=product,
            period=kind,
            period_start=at,
            output_t=output_t,
            output_mwh=output_mwh,
            products_made=int(made),
            unit_tce_counted=_float(tce),
            basis=EnergyBasis(basis),
            kgce_per_t=_float(kgce),
            gce_per_kwh=_float(gce),
        )
        for code, product, kind, at, output_t, output_mwh, made, tce, basis, kgce, gce in rows
    ]


@dataclass(frozen=True)
class MonthlyFigureCheck:
    """A unit's monthly figure for one energy type against daily sums (DOMAIN.md §5).

    ``metered`` sums the unit's daily rollups (what its meters sent); ``reported`` sums the
    unit's own daily reports. Both are judged against the monthly report in ``physical_unit``.
    """

    enterprise_code: str
    energy_type: EnergyType
    month_start: datetime
    physical_unit: str
    days_metered: int
    metered: DailyVsMonthly
    days_reported: int
    reported: DailyVsMonthly


async def daily_vs_monthly(
    conn: psycopg.AsyncConnection[TupleRow],
    enterprise_code: str,
    energy_type: EnergyType,
    month_start: datetime,
) -> MonthlyFigureCheck:
    """Judge a unit's monthly report for ``energy_type`` against the month's daily sums.
    ``month_start`` is the 1st, 00:00 China time (aware); anything else is a ValueError."""
    month_end = window_end(month_start, WindowSize.MONTH)
    days = (month_start, month_end)
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(
            "SELECT physical_quantity FROM energy_rollups WHERE subject_kind = 'unit' "
            "AND subject = %s AND energy_type = %s AND window_size = '1d' "
            "AND period_start >= %s AND period_start < %s",
            (enterprise_code, energy_type.value, *days),
        )
        metered = [float(q) for (q,) in await cur.fetchall() if q is not None]
        await cur.execute(
            "SELECT period, quantity FROM energy_total_reports WHERE enterprise_code = %s "
            "AND energy_type = %s AND ((period = 'month' AND period_start = %s) "
            "OR (period = 'day' AND period_start >= %s AND period_start < %s))",
            (enterprise_code, energy_type.value, month_start, *days),
        )
        reports = await cur.fetchall()
    monthly = next((float(q) for period, q in reports if period == "month"), None)
    daily = [float(q) for period, q in reports if period == "day"]
    return MonthlyFigureCheck(
        enterprise_code=enterprise_code,
        energy_type=energy_type,
        month_start=month_start.astimezone(UTC),
        physical_unit=READING_MODELS[energy_type].physical_unit,
        days_metered=len(metered),
        metered=compare_daily_with_monthly(metered, monthly),
        days_reported=len(daily),
        reported=compare_daily_with_monthly(daily, monthly),
    )
