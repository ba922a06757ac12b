"""Data quality over settled periods a change touched: each registered meter's daily
completeness, and each unit's monthly figures against its meters' daily sums.

* Completeness counts uploads: a meter's day expects 86,400 s / its interval (the interval its
  readings cover; 15 minutes when it sent none), and received the readings aggregated that
  day. Every meter the register lists for the unit is expected, so a meter that sent nothing
  all day reads 0%.
* Monthly deviation compares a unit's monthly report for an energy type (its own figure) with
  the sum of its meters' daily rollups of that type (what was measured), once the month is
  over; an energy type the unit meters on no day of the month is not compared. The rule id
  carries the energy type (``data-quality.monthly-deviation.electricity``).
"""

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from alerts.rules.condition import Condition
from alerts.rules.data_quality import evaluate_completeness, evaluate_monthly_deviation
from alerts.sources.context import Lookup
from alerts.sources.periods import cst_date, touched
from storage.alert_inputs import meter_days, monthly_figures
from stream.windows import WindowSize

_DAY: Final = timedelta(days=1)
_DEFAULT_INTERVAL_SECONDS: Final = 900


async def judge_completeness(
    conn: psycopg.AsyncConnection[TupleRow],
    lookup: Lookup,
    since: Mapping[str, datetime],
    settled: datetime,
) -> list[Condition]:
    """The completeness of every registered meter of the units whose readings changed, on
    each settled day from the one before ``since[code]``'s."""
    owners: dict[str, str] = {}
    pairs: list[tuple[str, datetime]] = []
    for code, first in since.items():
        days = [start for start, _ in touched(first, settled, WindowSize.DAY)]
        for meter in lookup.meters.get(code, ()):
            owners[meter.meter_id] = code
            pairs += [(meter.meter_id, start) for start in days]
    conditions = []
    for row in await meter_days(conn, pairs):
        if not row.monitored:
            continue  # before the meter's first data: not yet monitored, not incomplete
        interval = (
            row.covered_seconds // row.readings if row.readings else _DEFAULT_INTERVAL_SECONDS
        )
        condition = evaluate_completeness(
            subject=row.meter_id,
            day=cst_date(row.day_start),
            expected=int(_DAY.total_seconds()) // max(1, interval),
            received=row.readings,
            at=row.day_start + _DAY,
            config=lookup.context.quality,
            enterprise_code=owners[row.meter_id],
        )
        if condition is not None:
            conditions.append(condition)
    return conditions


async def judge_monthly_deviation(
    conn: psycopg.AsyncConnection[TupleRow],
    lookup: Lookup,
    since: Mapping[str, datetime],
    settled: datetime,
) -> list[Condition]:
    """Each settled month's figures against the meters' daily sums, from the month before
    ``since[code]``'s, for units whose readings or reports changed."""
    months = [
        (code, start, end)
        for code, first in since.items()
        for start, end in touched(first, settled, WindowSize.MONTH)
    ]
    ends = {(code, start): end for code, start, end in months}
    conditions = []
    for row in await monthly_figures(conn, months):
        if row.days_metered == 0:
            continue
        condition = evaluate_monthly_deviation(
            subject=row.enterprise_code,
            month=cst_date(row.month_start),
            daily_sum=row.daily_sum,
            monthly=row.monthly,
            at=ends[row.enterprise_code, row.month_start],
            config=lookup.context.quality,
            enterprise_code=row.enterprise_code,
        )
        if condition is not None:
            conditions.append(
                replace(
                    condition,
                    rule_id=f"{condition.rule_id}.{row.energy_type}",
                    message=f"{row.energy_type}: {condition.message}",
                )
            )
    return conditions
