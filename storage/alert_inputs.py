"""What the alert rules read from TimescaleDB (``alerts.sources``), one batched query each.

The evaluator judges after every stream batch (about once a second) for up to hundreds of
units, so every function here takes all the subjects at once (arrays, ``unnest``) and makes
one round trip; none is called per unit. Each names its time range with constants as well as
per subject, so TimescaleDB can skip the chunks outside it when planning.

Numbers come back as floats (the rules compare them with limits; exact decimals are for the
reports in ``storage.rollup_queries``) and instants in UTC.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg.rows import TupleRow

from stream.windows import WindowSize

ALL_ENERGY_TYPES: Final = "all"


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def _fetch(
    conn: psycopg.AsyncConnection[TupleRow], query: str, params: Mapping[str, Any]
) -> list[TupleRow]:
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


# -- VOC ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VocValue:
    """One pollutant's value in a minute sample (``voc_samples``) or an hourly average
    (``voc_hourly``, flag ``N`` exactly when the hour is valid)."""

    monitor_id: str
    data_time: datetime  # the interval's start, UTC
    pollutant: str
    enterprise_code: str
    avg: float | None
    flag: str


_VOC_MINUTES = """
SELECT s.monitor_id, s.data_time, s.pollutant, s.enterprise_code, s.avg, s.flag
FROM unnest(%(monitors)s::text[], %(since)s::timestamptz[]) AS m(monitor_id, since)
JOIN voc_samples s ON s.monitor_id = m.monitor_id AND s.interval_seconds = 60
    AND s.data_time >= m.since
WHERE s.data_time >= %(first)s AND s.pollutant = ANY(%(pollutants)s::text[])
ORDER BY s.monitor_id, s.data_time, s.pollutant
"""
_VOC_HOURS = """
SELECT h.monitor_id, h.period_start, h.pollutant, h.enterprise_code, h.avg, h.flag
FROM unnest(%(monitors)s::text[], %(since)s::timestamptz[]) AS m(monitor_id, since)
JOIN voc_hourly h ON h.monitor_id = m.monitor_id AND h.period_start >= m.since
WHERE h.period_start >= %(first)s AND h.period_start <= %(last_start)s
  AND h.pollutant = ANY(%(pollutants)s::text[])
ORDER BY h.monitor_id, h.period_start, h.pollutant
"""


def _voc_params(since: Mapping[str, datetime], pollutants: Sequence[str]) -> dict[str, Any]:
    monitors = sorted(since)
    return {
        "monitors": monitors,
        "since": [since[m] for m in monitors],
        "first": min(since.values()),
        "pollutants": list(pollutants),
    }


def _voc_values(rows: list[TupleRow]) -> list[VocValue]:
    return [
        VocValue(monitor, _utc(at), code, enterprise, _float(avg), flag)
        for monitor, at, code, enterprise, avg, flag in rows
    ]


async def voc_minute_values(
    conn: psycopg.AsyncConnection[TupleRow],
    since: Mapping[str, datetime],
    pollutants: Sequence[str],
) -> list[VocValue]:
    """The ``pollutants``' values in each monitor's minute samples from ``since[monitor]`` on,
    ordered by monitor, time and pollutant."""
    if not since or not pollutants:
        return []
    return _voc_values(await _fetch(conn, _VOC_MINUTES, _voc_params(since, pollutants)))


async def voc_hourly_values(
    conn: psycopg.AsyncConnection[TupleRow],
    since: Mapping[str, datetime],
    last_start: datetime,
    pollutants: Sequence[str],
) -> list[VocValue]:
    """The ``pollutants``' hourly averages of each monitor for hours starting from
    ``since[monitor]`` up to ``last_start`` included."""
    if not since or not pollutants:
        return []
    params = _voc_params(since, pollutants) | {"last_start": last_start}
    return _voc_values(await _fetch(conn, _VOC_HOURS, params))


# -- rollups ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeriodEnergy:
    subject_kind: str
    subject: str
    period_start: datetime  # UTC
    tce_counted: float


_PERIOD_TCE = """
SELECT r.subject_kind, r.subject, r.period_start, r.tce_counted
FROM unnest(%(kinds)s::text[], %(subjects)s::text[]) AS s(kind, subject)
JOIN energy_rollups r ON r.subject_kind = s.kind AND r.subject = s.subject
    AND r.energy_type = 'all' AND r.window_size = %(window)s
WHERE r.period_start >= %(start)s AND r.period_start < %(end)s
ORDER BY r.subject_kind, r.subject, r.period_start
"""


async def period_tce(
    conn: psycopg.AsyncConnection[TupleRow],
    subjects: Sequence[tuple[str, str]],
    window: WindowSize,
    start: datetime,
    end: datetime,
) -> list[PeriodEnergy]:
    """The controlled total (``tce_counted`` of every energy type) of each (subject kind,
    subject) per China-local ``window`` (a month or a day), for windows starting in
    ``[start, end)``."""
    if not subjects:
        return []
    pairs = sorted(set(subjects))
    rows = await _fetch(
        conn,
        _PERIOD_TCE,
        {
            "kinds": [kind for kind, _ in pairs],
            "subjects": [subject for _, subject in pairs],
            "window": window.value,
            "start": start,
            "end": end,
        },
    )
    return [PeriodEnergy(kind, subject, _utc(at), float(tce)) for kind, subject, at, tce in rows]


@dataclass(frozen=True, slots=True)
class DataSpan:
    """When a subject's data begins and ends within a period: the start of its first quarter
    hour and the end of its last (UTC)."""

    subject_kind: str
    subject: str
    period_start: datetime
    first: datetime
    last_end: datetime


# Two index probes per subject and period (its first and last quarter hour in it).
_DATA_SPANS = """
SELECT s.kind, s.subject, s.period_start, f.period_start, l.period_end
FROM unnest(%(kinds)s::text[], %(subjects)s::text[], %(starts)s::timestamptz[],
            %(ends)s::timestamptz[]) AS s(kind, subject, period_start, period_end)
CROSS JOIN LATERAL (
    SELECT period_start FROM energy_rollups
    WHERE subject_kind = s.kind AND subject = s.subject AND energy_type = 'all'
      AND window_size = '15m' AND period_start >= s.period_start AND period_start < s.period_end
    ORDER BY period_start LIMIT 1) f
CROSS JOIN LATERAL (
    SELECT period_end FROM energy_rollups
    WHERE subject_kind = s.kind AND subject = s.subject AND energy_type = 'all'
      AND window_size = '15m' AND period_start >= s.period_start AND period_start < s.period_end
    ORDER BY period_start DESC LIMIT 1) l
"""


async def data_spans(
    conn: psycopg.AsyncConnection[TupleRow],
    periods: Sequence[tuple[str, str, datetime, datetime]],
) -> list[DataSpan]:
    """For each (subject kind, subject, start, end): when its data (quarter-hour rollups of
    every energy type) begins and ends in ``[start, end)``; absent when it has none there."""
    if not periods:
        return []
    rows = sorted(set(periods))
    found = await _fetch(
        conn,
        _DATA_SPANS,
        {
            "kinds": [kind for kind, _, _, _ in rows],
            "subjects": [subject for _, subject, _, _ in rows],
            "starts": [start for _, _, start, _ in rows],
            "ends": [end for _, _, _, end in rows],
        },
    )
    return [
        DataSpan(kind, subject, _utc(start), _utc(first), _utc(last))
        for kind, subject, start, first, last in found
    ]


_UNIT_HOURS = """
SELECT r.subject, r.period_start, r.physical_quantity
FROM energy_rollups r
WHERE r.subject_kind = 'unit' AND r.subject = ANY(%(units)s::text[])
  AND r.energy_type = %(energy_type)s AND r.window_size = '1h'
  AND r.period_start = ANY(%(starts)s::timestamptz[])
  AND r.period_start >= %(first)s AND r.period_start <= %(last)s
"""


async def unit_hourly_quantity(
    conn: psycopg.AsyncConnection[TupleRow],
    units: Sequence[str],
    energy_type: str,
    hour_starts: Sequence[datetime],
) -> dict[tuple[str, datetime], float]:
    """Each unit's physical quantity of ``energy_type`` (kWh for electricity) in the hours
    starting at ``hour_starts``, by (unit, hour start); hours with no rollup are absent."""
    if not units or not hour_starts:
        return {}
    rows = await _fetch(
        conn,
        _UNIT_HOURS,
        {
            "units": sorted(set(units)),
            "energy_type": energy_type,
            "starts": sorted(set(hour_starts)),
            "first": min(hour_starts),
            "last": max(hour_starts),
        },
    )
    return {(unit, _utc(at)): float(q) for unit, at, q in rows if q is not None}


# -- production ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductPeriod:
    """A unit's output of one product over a day or month and, when the unit made that
    product only (``storage.production.EnergyBasis.SINGLE_PRODUCT``), the energy behind it."""

    enterprise_code: str
    product_code: str
    period: str  # 'day' | 'month'
    period_start: datetime
    output_t: float | None
    output_mwh: float | None
    unit_tce_counted: float | None
    basis: str


_PRODUCTS = """
SELECT enterprise_code, product_code, period, period_start, output_t, output_mwh,
       unit_tce_counted, basis
FROM product_unit_energy
WHERE enterprise_code = ANY(%(units)s::text[]) AND period_start < %(end)s
  AND ((period = 'day' AND period_start >= %(days_from)s)
       OR (period = 'month' AND period_start >= %(months_from)s))
ORDER BY enterprise_code, period, period_start, product_code
"""


async def product_periods(
    conn: psycopg.AsyncConnection[TupleRow],
    units: Sequence[str],
    days_from: datetime,
    months_from: datetime,
    end: datetime,
) -> list[ProductPeriod]:
    """The units' product output per day from ``days_from`` and per month from
    ``months_from`` (periods starting before ``end``), with the energy the
    ``product_unit_energy`` view puts on each (its conventions apply)."""
    if not units:
        return []
    params = {
        "units": sorted(set(units)),
        "days_from": days_from,
        "months_from": months_from,
        "end": end,
    }
    rows = await _fetch(conn, _PRODUCTS, params)
    return [
        ProductPeriod(code, product, period, _utc(at), _float(t), _float(mwh), _float(tce), basis)
        for code, product, period, at, t, mwh, tce, basis in rows
    ]


# -- data quality ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeterDay:
    """What a meter's aggregated readings covered on one China-local day (zeros: nothing)."""

    meter_id: str
    day_start: datetime
    readings: int
    covered_seconds: int
    #: the meter has data on this day or an earlier one: it was being monitored (a day
    #: before a meter's first data says nothing about its completeness)
    monitored: bool = True


_METER_DAYS = """
SELECT d.meter_id, d.day_start, coalesce(sum(r.readings), 0), coalesce(sum(r.covered_seconds), 0),
       EXISTS (SELECT 1 FROM energy_rollups e WHERE e.subject_kind = 'meter'
               AND e.subject = d.meter_id AND e.window_size = '1d'
               AND e.period_start <= d.day_start)
FROM unnest(%(meters)s::text[], %(starts)s::timestamptz[]) AS d(meter_id, day_start)
LEFT JOIN energy_rollups r ON r.subject_kind = 'meter' AND r.subject = d.meter_id
    AND r.window_size = '1d' AND r.period_start = d.day_start AND r.energy_type <> 'all'
    AND r.period_start >= %(first)s AND r.period_start <= %(last)s
GROUP BY d.meter_id, d.day_start
ORDER BY d.meter_id, d.day_start
"""


async def meter_days(
    conn: psycopg.AsyncConnection[TupleRow], days: Sequence[tuple[str, datetime]]
) -> list[MeterDay]:
    """For each (meter, China-local day start): its readings and the seconds they cover."""
    if not days:
        return []
    pairs = sorted(set(days))
    starts = [start for _, start in pairs]
    rows = await _fetch(
        conn,
        _METER_DAYS,
        {
            "meters": [meter for meter, _ in pairs],
            "starts": starts,
            "first": min(starts),
            "last": max(starts),
        },
    )
    return [MeterDay(m, _utc(at), int(n), int(s), bool(seen)) for m, at, n, s, seen in rows]


@dataclass(frozen=True, slots=True)
class MonthlyFigure:
    """A unit's monthly report for one energy type and the sum of its meters' daily rollups
    of that type over the month (in the report's physical unit)."""

    enterprise_code: str
    month_start: datetime
    energy_type: str
    monthly: float
    daily_sum: float
    days_metered: int


_MONTHLY_FIGURES = """
SELECT m.code, m.month_start, t.energy_type, t.quantity,
       coalesce(sum(r.physical_quantity), 0), count(r.period_start)
FROM unnest(%(units)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
    AS m(code, month_start, month_end)
JOIN energy_total_reports t ON t.enterprise_code = m.code AND t.period = 'month'
    AND t.period_start = m.month_start
LEFT JOIN energy_rollups r ON r.subject_kind = 'unit' AND r.subject = m.code
    AND r.energy_type = t.energy_type AND r.window_size = '1d'
    AND r.period_start >= m.month_start AND r.period_start < m.month_end
    AND r.period_start >= %(first)s AND r.period_start < %(end)s
GROUP BY m.code, m.month_start, t.energy_type, t.quantity
ORDER BY m.code, m.month_start, t.energy_type
"""


async def monthly_figures(
    conn: psycopg.AsyncConnection[TupleRow], months: Sequence[tuple[str, datetime, datetime]]
) -> list[MonthlyFigure]:
    """For each (unit, month start, month end): every energy type the unit reported a monthly
    figure for, with its metered daily sum."""
    if not months:
        return []
    triples = sorted(set(months))
    rows = await _fetch(
        conn,
        _MONTHLY_FIGURES,
        {
            "units": [code for code, _, _ in triples],
            "starts": [start for _, start, _ in triples],
            "ends": [end for _, _, end in triples],
            "first": min(start for _, start, _ in triples),
            "end": max(end for _, _, end in triples),
        },
    )
    return [
        MonthlyFigure(code, _utc(at), energy_type, float(q), float(total), int(days))
        for code, at, energy_type, q, total, days in rows
    ]


# -- last heard ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LastHeard:
    """A device's latest period received, and its interval."""

    device: str
    enterprise_code: str
    period_start: datetime
    interval_seconds: int


# One index probe per meter (its newest row), chunk by chunk from the newest: cheap however
# far back ``since`` is, and it answers for meters the register lists but no unit marked.
_METERS_HEARD = """
SELECT m.meter_id, r.enterprise_code, r.period_start, r.interval_seconds
FROM unnest(%(meters)s::text[], %(since)s::timestamptz[]) AS m(meter_id, since)
CROSS JOIN LATERAL (
    SELECT enterprise_code, period_start, interval_seconds FROM meter_readings
    WHERE meter_id = m.meter_id AND period_start >= m.since
    ORDER BY period_start DESC LIMIT 1) r
ORDER BY m.meter_id
"""
_MONITORS_HEARD = """
SELECT m.monitor_id, r.enterprise_code, r.data_time, r.interval_seconds
FROM unnest(%(monitors)s::text[], %(since)s::timestamptz[]) AS m(monitor_id, since)
CROSS JOIN LATERAL (
    SELECT * FROM (
        (SELECT enterprise_code, data_time, interval_seconds FROM voc_samples
         WHERE monitor_id = m.monitor_id AND interval_seconds = 60 AND data_time >= m.since
         ORDER BY data_time DESC LIMIT 1)
        UNION ALL
        (SELECT enterprise_code, data_time, interval_seconds FROM voc_samples
         WHERE monitor_id = m.monitor_id AND interval_seconds = 3600 AND data_time >= m.since
         ORDER BY data_time DESC LIMIT 1)) latest
    ORDER BY data_time + interval_seconds * interval '1 second' DESC, interval_seconds
    LIMIT 1) r
ORDER BY m.monitor_id
"""
_METERS_FIRST_HEARD = """
SELECT m.meter_id, r.enterprise_code, r.period_start, r.interval_seconds
FROM unnest(%(meters)s::text[], %(since)s::timestamptz[]) AS m(meter_id, since)
CROSS JOIN LATERAL (
    SELECT enterprise_code, period_start, interval_seconds FROM meter_readings
    WHERE meter_id = m.meter_id AND period_start >= m.since
    ORDER BY period_start LIMIT 1) r
ORDER BY m.meter_id
"""
_MONITORS_FIRST_HEARD = """
SELECT m.monitor_id, r.enterprise_code, r.data_time, r.interval_seconds
FROM unnest(%(monitors)s::text[], %(since)s::timestamptz[]) AS m(monitor_id, since)
CROSS JOIN LATERAL (
    SELECT enterprise_code, data_time, interval_seconds FROM voc_samples
    WHERE monitor_id = m.monitor_id AND data_time >= m.since
    ORDER BY data_time, interval_seconds LIMIT 1) r
ORDER BY m.monitor_id
"""


_MONITORS_MINUTE_BEFORE = """
SELECT m.monitor_id, r.enterprise_code, r.data_time, r.interval_seconds
FROM unnest(%(monitors)s::text[], %(since)s::timestamptz[]) AS m(monitor_id, since)
CROSS JOIN LATERAL (
    SELECT enterprise_code, data_time, interval_seconds FROM voc_samples
    WHERE monitor_id = m.monitor_id AND interval_seconds = 60 AND data_time < m.since
    ORDER BY data_time DESC LIMIT 1) r
ORDER BY m.monitor_id
"""


def _heard_params(key: str, since: Mapping[str, datetime | None]) -> dict[str, Any]:
    devices = sorted(since)
    floor = datetime(1970, 1, 1, tzinfo=UTC)
    return {key: devices, "since": [since[d] or floor for d in devices]}


async def _heard(
    conn: psycopg.AsyncConnection[TupleRow],
    query: str,
    key: str,
    since: Mapping[str, datetime | None],
) -> list[LastHeard]:
    if not since:
        return []
    rows = await _fetch(conn, query, _heard_params(key, since))
    return [LastHeard(device, code, _utc(at), int(s)) for device, code, at, s in rows]


async def meters_last_heard(
    conn: psycopg.AsyncConnection[TupleRow], since: Mapping[str, datetime | None]
) -> list[LastHeard]:
    """Each meter's newest reading at or after ``since[meter]`` (None: ever), if any."""
    return await _heard(conn, _METERS_HEARD, "meters", since)


async def monitors_last_heard(
    conn: psycopg.AsyncConnection[TupleRow], since: Mapping[str, datetime | None]
) -> list[LastHeard]:
    """Each VOC monitor's newest minute or hourly sample at or after ``since[monitor]`` (None:
    ever), whichever ends later, if any."""
    return await _heard(conn, _MONITORS_HEARD, "monitors", since)


async def meters_first_heard(
    conn: psycopg.AsyncConnection[TupleRow], since: Mapping[str, datetime]
) -> list[LastHeard]:
    """Each meter's oldest reading at or after ``since[meter]``, if any: where its data
    resumed after a silence."""
    return await _heard(conn, _METERS_FIRST_HEARD, "meters", since)


async def monitors_minute_before(
    conn: psycopg.AsyncConnection[TupleRow], before: Mapping[str, datetime]
) -> list[LastHeard]:
    """Each VOC monitor's newest minute sample before ``before[monitor]``, if any: where its
    data stood when the data from ``before`` on came."""
    return await _heard(conn, _MONITORS_MINUTE_BEFORE, "monitors", before)


async def monitors_first_heard(
    conn: psycopg.AsyncConnection[TupleRow], since: Mapping[str, datetime]
) -> list[LastHeard]:
    """Each VOC monitor's oldest sample (minute or hourly) at or after ``since[monitor]``."""
    return await _heard(conn, _MONITORS_FIRST_HEARD, "monitors", since)
