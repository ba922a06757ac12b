"""VOC samples stored idempotently, and the hourly and daily averages recomputed from them.

A batch is COPYed into a session-local staging table and upserted on the natural key (monitor,
sample kind, interval start, pollutant): a redelivered sample changes nothing, one sent again
with other values replaces the stored one (a correction), and a pollutant the new version no
longer carries is removed with it. Every hour whose minute samples changed is then recomputed
from *all* its stored minutes with ``stream.voc_averages`` and upserted into ``voc_hourly``,
and every day around a changed hour from its stored hours into ``voc_daily``. Recomputing from
stored rows, instead of adding increments, is what makes redelivery, reordering and late data
give the same rows as one in-order delivery.

Everything runs in the caller's transaction. Concurrent writers of one monitor (two workers
around a partition rebalance) are serialised by a transaction-scoped advisory lock per
monitor, so each recomputation sees the other's committed samples.
"""

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta
from statistics import fmean
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from contracts.voc import POLLUTANT_UNITS, DataFlag, PollutantValue, VocSample
from stream.voc_averages import average, emission_mass_kg
from stream.windows import WindowSize, window_start

#: The HJ 212 code of the flue gas flow (m³/s; its ``cou`` is the volume in m³).
FLOW: Final = "a00000"
HOURLY: Final = "voc_hourly"
DAILY: Final = "voc_daily"

_MINUTE_SAMPLES: Final = 60
_HOUR: Final = timedelta(hours=1)
_DAY: Final = timedelta(days=1)
_LOCK_CLASS: Final = 0x564F43  # "VOC": the first key of this module's advisory locks
_FLAGS: Final = {flag.value: flag for flag in DataFlag}
_AVERAGES_SOURCE: Final = "stream"  # the source of hourly averages read back as samples

SampleKey = tuple[str, int, datetime]  # monitor, interval_seconds, data_time
Period = tuple[str, datetime]  # monitor, period start


@dataclass(frozen=True, slots=True)
class PeriodRow:
    """One row of ``voc_hourly`` or ``voc_daily``: a pollutant's average over one period."""

    monitor_id: str
    period_start: datetime
    pollutant: str
    enterprise_code: str
    avg: float | None
    min: float | None
    max: float | None
    cou: float | None
    valid_count: int
    total_count: int
    valid: bool
    flag: str
    emission_mass_kg: float | None


@dataclass(frozen=True)
class VocWriteResult:
    """What one batch changed: samples by outcome, and the average rows written."""

    samples_new: int
    samples_corrected: int
    samples_unchanged: int
    hourly_rows: int
    daily_rows: int


# -- the rows, from samples (pure) ------------------------------------------------------------


def _is_concentration(code: str) -> bool:
    units = POLLUTANT_UNITS.get(code)
    return units is not None and units.unit == "mg/m3"


def _rows(
    period: VocSample, parts: Sequence[VocSample], masses: Mapping[str, float]
) -> list[PeriodRow]:
    rows = []
    for code, value in period.values.items():
        readings = [part.values[code] for part in parts if code in part.values]
        valid = value.flag is DataFlag.NORMAL
        rows.append(
            PeriodRow(
                monitor_id=period.monitor_id,
                period_start=period.data_time,
                pollutant=code,
                enterprise_code=period.enterprise_code,
                avg=value.avg if valid else None,
                min=value.min if valid else None,
                max=value.max if valid else None,
                cou=value.cou if valid else None,
                valid_count=sum(r.flag is DataFlag.NORMAL and r.avg is not None for r in readings),
                total_count=len(readings),
                valid=valid,
                flag=value.flag.value,
                emission_mass_kg=masses.get(code),
            )
        )
    return rows


def hourly_rows(minutes: Sequence[VocSample]) -> list[PeriodRow]:
    """The ``voc_hourly`` rows of one monitor's minute samples within one hour.

    The emission mass of a valid concentration is its hourly average times the hour's gas
    volume, the flow's hourly average (m³/s) times 3600 s, when the flow is valid too. The mean
    rate rather than the sum of the minutes' ``cou``: the sum would miss the volume of minutes
    that were not valid, and both agree when every minute is.
    """
    hour = average(minutes, 3600)
    flow = hour.values.get(FLOW)
    volume_m3 = None
    if flow is not None and flow.flag is DataFlag.NORMAL and flow.avg is not None:
        volume_m3 = flow.avg * _HOUR.total_seconds()
    masses = {}
    if volume_m3 is not None:
        for code, value in hour.values.items():
            if _is_concentration(code) and value.flag is DataFlag.NORMAL and value.avg is not None:
                masses[code] = emission_mass_kg(value.avg, volume_m3)
    return _rows(hour, minutes, masses)


def daily_rows(
    hours: Sequence[VocSample], hourly_masses: Mapping[str, Sequence[float]]
) -> list[PeriodRow]:
    """The ``voc_daily`` rows of one monitor's hourly averages within one China Standard Time
    day. ``hourly_masses`` holds, per code, the emission masses of the day's hours that have
    one; a valid day's mass is their mean times 24: their sum when every hour has one, and the
    same extrapolation as within an hour otherwise."""
    day = average(hours, 86_400)
    masses = {}
    for code, value in day.values.items():
        known = hourly_masses.get(code)
        if value.flag is DataFlag.NORMAL and known:
            masses[code] = fmean(known) * (_DAY / _HOUR)
    return _rows(day, hours, masses)


# -- storage ----------------------------------------------------------------------------------

_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS voc_samples_staging "
    "(LIKE voc_samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_UPSERT_SAMPLES = """
INSERT INTO voc_samples AS s (
    monitor_id, interval_seconds, data_time, pollutant, enterprise_code,
    avg, min, max, cou, flag, source)
SELECT monitor_id, interval_seconds, data_time, pollutant, enterprise_code,
       avg, min, max, cou, flag, source
FROM voc_samples_staging
ORDER BY monitor_id, interval_seconds, data_time, pollutant
ON CONFLICT (monitor_id, interval_seconds, data_time, pollutant) DO UPDATE SET
    enterprise_code = excluded.enterprise_code,
    avg = excluded.avg, min = excluded.min, max = excluded.max, cou = excluded.cou,
    flag = excluded.flag, source = excluded.source, updated_at = now()
WHERE (s.enterprise_code, s.avg, s.min, s.max, s.cou, s.flag)
    IS DISTINCT FROM (excluded.enterprise_code, excluded.avg, excluded.min, excluded.max,
                      excluded.cou, excluded.flag)
RETURNING s.monitor_id, s.interval_seconds, s.data_time, s.xmax = 0
"""
# A new version of a sample replaces the whole sample: codes it no longer carries go.
_DELETE_DROPPED_CODES = """
DELETE FROM voc_samples s
USING (
    SELECT monitor_id, interval_seconds, data_time, array_agg(pollutant) AS codes
    FROM voc_samples_staging GROUP BY monitor_id, interval_seconds, data_time) k
WHERE s.monitor_id = k.monitor_id AND s.interval_seconds = k.interval_seconds
  AND s.data_time = k.data_time AND s.data_time >= %(first)s AND s.data_time <= %(last)s
  AND s.pollutant <> ALL (k.codes)
RETURNING s.monitor_id, s.interval_seconds, s.data_time
"""
_LOAD_MINUTES = """
SELECT s.monitor_id, s.data_time, s.pollutant, s.enterprise_code, s.source,
       s.avg, s.min, s.max, s.cou, s.flag
FROM unnest(%(monitors)s::text[], %(starts)s::timestamptz[]) AS h(monitor_id, hour_start)
JOIN voc_samples s ON s.monitor_id = h.monitor_id AND s.interval_seconds = 60
    AND s.data_time >= h.hour_start AND s.data_time < h.hour_start + interval '1 hour'
WHERE s.data_time >= %(first)s AND s.data_time < %(end)s
ORDER BY s.monitor_id, s.data_time, s.pollutant
"""
# '24 hours', not '1 day': a day is 24 hours in China Standard Time whatever the session's zone
_LOAD_HOURS = """
SELECT h.monitor_id, h.period_start, h.pollutant, h.enterprise_code, %(source)s::text,
       h.avg, h.min, h.max, h.cou, h.flag, h.emission_mass_kg
FROM unnest(%(monitors)s::text[], %(starts)s::timestamptz[]) AS d(monitor_id, day_start)
JOIN voc_hourly h ON h.monitor_id = d.monitor_id
    AND h.period_start >= d.day_start AND h.period_start < d.day_start + interval '24 hours'
WHERE h.period_start >= %(first)s AND h.period_start < %(end)s
ORDER BY h.monitor_id, h.period_start, h.pollutant
"""
_UPSERT_PERIODS = """
INSERT INTO {table} AS p (
    monitor_id, period_start, pollutant, enterprise_code, avg, min, max, cou,
    valid_count, total_count, valid, flag, emission_mass_kg)
SELECT * FROM unnest(
    %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::float8[], %s::float8[],
    %s::float8[], %s::float8[], %s::int4[], %s::int4[], %s::bool[], %s::text[], %s::float8[])
ORDER BY 1, 2, 3
ON CONFLICT (monitor_id, period_start, pollutant) DO UPDATE SET
    enterprise_code = excluded.enterprise_code,
    avg = excluded.avg, min = excluded.min, max = excluded.max, cou = excluded.cou,
    valid_count = excluded.valid_count, total_count = excluded.total_count,
    valid = excluded.valid, flag = excluded.flag, emission_mass_kg = excluded.emission_mass_kg,
    updated_at = now()
WHERE (p.enterprise_code, p.avg, p.min, p.max, p.cou, p.valid_count, p.total_count, p.valid,
       p.flag, p.emission_mass_kg)
    IS DISTINCT FROM (excluded.enterprise_code, excluded.avg, excluded.min, excluded.max,
                      excluded.cou, excluded.valid_count, excluded.total_count, excluded.valid,
                      excluded.flag, excluded.emission_mass_kg)
"""
# A period's codes are exactly those its samples carry now (a correction may drop one).
_DELETE_STALE_CODES = """
DELETE FROM {table} p
USING (
    SELECT monitor_id, period_start, array_agg(pollutant) AS codes
    FROM unnest(%s::text[], %s::timestamptz[], %s::text[]) AS f(monitor_id, period_start, pollutant)
    GROUP BY monitor_id, period_start) k
WHERE p.monitor_id = k.monitor_id AND p.period_start = k.period_start
  AND p.pollutant <> ALL (k.codes)
"""


def _lock_key(monitor_id: str) -> int:
    # stable across processes and Python runs, unlike hash()
    return int.from_bytes(hashlib.sha256(monitor_id.encode()).digest()[:4], "big", signed=True)


async def _lock_monitors(cur: psycopg.AsyncCursor[TupleRow], monitors: Iterable[str]) -> None:
    # in key order, so two writers sharing monitors (or colliding keys) cannot deadlock
    keys = sorted({_lock_key(monitor) for monitor in monitors})
    await cur.execute(
        "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int4[]) AS k", (_LOCK_CLASS, keys)
    )


def _as_samples(
    rows: Iterable[Sequence[Any]], interval_seconds: int
) -> dict[Period, list[VocSample]]:
    """Rows (monitor, data_time, code, enterprise, source, avg, min, max, cou, flag, ...) ordered
    by monitor and time, as samples grouped by the period (hour or day) they fall in."""
    size = WindowSize.HOUR if interval_seconds == 60 else WindowSize.DAY
    values: dict[tuple[str, datetime], dict[str, PollutantValue]] = defaultdict(dict)
    heads: dict[tuple[str, datetime], tuple[str, str]] = {}
    for monitor, at, code, enterprise, source, avg, low, high, cou, flag, *_ in rows:
        # read back from rows the contract's checks let in: no need to validate them again
        values[monitor, at][code] = PollutantValue.model_construct(
            avg=avg, min=low, max=high, cou=cou, flag=_FLAGS[flag]
        )
        heads.setdefault((monitor, at), (enterprise, source))
    grouped: dict[Period, list[VocSample]] = defaultdict(list)
    for (monitor, at), codes in values.items():
        enterprise, source = heads[monitor, at]
        sample = VocSample(
            monitor_id=monitor,
            enterprise_code=enterprise,
            data_time=at,
            interval_seconds=interval_seconds,
            values=codes,
            source=source,
        )
        grouped[monitor, window_start(sample.data_time, size)].append(sample)
    return grouped


def _bounds(periods: Iterable[Period], length: timedelta) -> dict[str, Any]:
    """The query parameters naming ``periods``, and their overall time range, which lets
    TimescaleDB skip the chunks outside it when planning."""
    ordered = sorted(periods)
    starts = [start for _, start in ordered]
    return {
        "monitors": [monitor for monitor, _ in ordered],
        "starts": starts,
        "first": min(starts),
        "end": max(starts) + length,
        "source": _AVERAGES_SOURCE,
    }


async def _write_periods(
    cur: psycopg.AsyncCursor[TupleRow], table: str, rows: Sequence[PeriodRow]
) -> int:
    """Upsert ``rows`` into ``table`` and drop codes their periods no longer have; return
    how many rows were inserted or changed."""
    if not rows:
        return 0
    columns = [list(column) for column in zip(*(astuple(row) for row in rows), strict=True)]
    await cur.execute(sql.SQL(_UPSERT_PERIODS).format(table=sql.Identifier(table)), columns)
    written = cur.rowcount
    await cur.execute(sql.SQL(_DELETE_STALE_CODES).format(table=sql.Identifier(table)), columns[:3])
    return written


async def recompute_hours(
    cur: psycopg.AsyncCursor[TupleRow], hours: Iterable[Period]
) -> tuple[int, set[Period]]:
    """Recompute ``voc_hourly`` for these (monitor, hour start) from the stored minute samples;
    return the rows written and the (monitor, day start) periods the hours fall in."""
    hours = set(hours)
    if not hours:
        return 0, set()
    await cur.execute(_LOAD_MINUTES, _bounds(hours, _HOUR))
    grouped = _as_samples(await cur.fetchall(), _MINUTE_SAMPLES)
    rows = [row for key in sorted(grouped) for row in hourly_rows(grouped[key])]
    written = await _write_periods(cur, HOURLY, rows)
    return written, {(monitor, window_start(start, WindowSize.DAY)) for monitor, start in hours}


async def recompute_days(cur: psycopg.AsyncCursor[TupleRow], days: Iterable[Period]) -> int:
    """Recompute ``voc_daily`` for these (monitor, CST day start) from ``voc_hourly``."""
    days = set(days)
    if not days:
        return 0
    await cur.execute(_LOAD_HOURS, _bounds(days, _DAY))
    stored = await cur.fetchall()
    masses: dict[Period, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for monitor, start, code, *_, mass in stored:
        if mass is not None:
            masses[monitor, window_start(start, WindowSize.DAY)][code].append(mass)
    grouped = _as_samples(stored, 3600)
    rows = [row for key in sorted(grouped) for row in daily_rows(grouped[key], masses[key])]
    return await _write_periods(cur, DAILY, rows)


async def store_voc_samples(
    cur: psycopg.AsyncCursor[TupleRow], samples: Sequence[VocSample]
) -> VocWriteResult:
    """Store ``samples`` and bring the hourly and daily averages they touch up to date, within
    the caller's transaction. Within a batch, the last version of a sample wins (a partition
    delivers a monitor's samples in the order they were sent)."""
    latest: dict[SampleKey, VocSample] = {
        (s.monitor_id, s.interval_seconds, s.data_time): s for s in samples
    }
    if not latest:
        return VocWriteResult(0, 0, 0, 0, 0)
    await _lock_monitors(cur, (monitor for monitor, _, _ in latest))
    await cur.execute(_STAGING)
    async with cur.copy(
        "COPY voc_samples_staging (monitor_id, interval_seconds, data_time, pollutant, "
        "enterprise_code, avg, min, max, cou, flag, source) FROM STDIN"
    ) as copy:
        for s in latest.values():
            for code, value in s.values.items():
                await copy.write_row(
                    (
                        s.monitor_id,
                        s.interval_seconds,
                        s.data_time,
                        code,
                        s.enterprise_code,
                        value.avg,
                        value.min,
                        value.max,
                        value.cou,
                        value.flag.value,
                        s.source,
                    )
                )
    await cur.execute(_UPSERT_SAMPLES)
    inserted: dict[SampleKey, int] = defaultdict(int)
    changed: set[SampleKey] = set()
    for monitor, interval, at, is_new in await cur.fetchall():
        key = (monitor, interval, at)
        changed.add(key)
        inserted[key] += bool(is_new)
    times = [at for _, _, at in latest]
    await cur.execute(_DELETE_DROPPED_CODES, {"first": min(times), "last": max(times)})
    dropped = {(monitor, interval, at) for monitor, interval, at in await cur.fetchall()}
    changed |= dropped
    await cur.execute("TRUNCATE voc_samples_staging")

    # ``latest`` is keyed by UTC times, the database answers in its session's zone: aware
    # datetimes of one instant are equal and hash alike, so the lookup holds
    new = sum(
        1
        for key, count in inserted.items()
        if key not in dropped and count == len(latest[key].values)
    )
    hours = {
        (monitor, window_start(at, WindowSize.HOUR))
        for monitor, interval, at in changed
        if interval == _MINUTE_SAMPLES
    }
    hourly, days = await recompute_hours(cur, hours)
    daily = await recompute_days(cur, days)
    return VocWriteResult(
        samples_new=new,
        samples_corrected=len(changed) - new,
        samples_unchanged=len(samples) - len(changed),  # redeliveries and superseded versions
        hourly_rows=hourly,
        daily_rows=daily,
    )
