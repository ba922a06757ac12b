"""The read side of the rollups: what alerts, dashboards and ``energywatch export`` ask of
``energy_rollups``, ``stream_progress`` and the ledger (``meter_readings``).

Numeric sums come back as :class:`~decimal.Decimal`, exactly as stored (each reading's tce is
rounded to 1e-9 t before it is summed, so the digits are already the ones to report); nothing
here turns them into floats.

**Final.** A window is final when its end is at or before the stream's watermark: the lowest
watermark over the readings topic's partitions in ``stream_progress`` (a county's rollups
gather meters from every partition, so the slowest partition decides). With no progress row,
or a partition that has no watermark yet, nothing is final. A final window can still receive
a correction from a reading that was late but within the allowed lateness (its
``corrections`` count says so); readings later still are stored with ``aggregated = false``
and listed by :func:`late_readings`.

**Days and months** are cut at China Standard Time midnight. :class:`ExportPeriod` turns the
CST dates people type into the UTC instants the tables hold. A window belongs to a period
when it *starts* inside it, so a monthly window needs a period from the 1st.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final

import psycopg
from psycopg.rows import TupleRow

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import EnergyType
from stream.data_quality import Completeness
from stream.windows import WindowSize

#: the energy type of the rollups summing every energy type in tce (water is never in it)
ALL_ENERGY_TYPES: Final = "all"
DAY_SECONDS: Final = 86_400
#: a meter the ledger has heard from this long before a day is expected to report on that day
METER_LOOKBACK: Final = timedelta(days=31)
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SubjectKind(StrEnum):
    METER = "meter"
    UNIT = "unit"
    COUNTY = "county"
    CITY = "city"
    INDUSTRY = "industry"


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One row of ``energy_rollups``, and whether its window is final."""

    subject_kind: SubjectKind
    subject: str
    energy_type: str  # an EnergyType value or 'all'
    window_size: WindowSize
    period_start: datetime  # UTC
    period_end: datetime  # UTC
    physical_quantity: Decimal | None  # None for 'all', whose types have different units
    physical_unit: str | None
    tce: Decimal  # every flow, excluded ones included
    tce_counted: Decimal  # the controlled total: exclusions left out
    tce_equivalent: Decimal  # electricity at its equal-value factor
    readings: int
    covered_seconds: int
    flagged: int
    stuck: int
    jumps: int
    resets: int
    off_period_start: int
    corrections: int
    final: bool

    @property
    def window_seconds(self) -> int:
        return int((self.period_end - self.period_start).total_seconds())


#: the lowest watermark over the topic's partitions, or NULL (see the module docstring)
_WATERMARK = """
SELECT CASE WHEN count(*) > 0 AND count(*) = count(watermark) THEN min(watermark) END
FROM stream_progress
WHERE topic = %(topic)s AND (%(consumer)s::text IS NULL OR consumer = %(consumer)s)
"""
_WITH_MARK = f"WITH mark AS ({_WATERMARK})\n"

# The watermark (as _WATERMARK) and the rows in one statement, so one snapshot: a window judged
# final has every contribution the watermark promises.
_ROLLUPS = _WITH_MARK + (  # noqa: S608 - constants only
    """
SELECT r.subject_kind, r.subject, r.energy_type, r.window_size, r.period_start, r.period_end,
       r.physical_quantity, r.physical_unit, r.tce, r.tce_counted, r.tce_equivalent,
       r.readings, r.covered_seconds, r.flagged, r.stuck, r.jumps, r.resets,
       r.off_period_start, r.corrections,
       coalesce(r.period_end <= (SELECT * FROM mark), false)
FROM energy_rollups r
WHERE r.subject_kind = %(kind)s AND r.subject = %(subject)s AND r.window_size = %(size)s
  AND r.period_start >= %(start)s AND r.period_start < %(end)s
  AND (%(energy_type)s::text IS NULL OR r.energy_type = %(energy_type)s)
ORDER BY r.period_start, r.energy_type
"""
)

# A meter's quarter-hours and hours are not kept in energy_rollups (storage.rollups says why):
# they are summed here from the ledger rows, as the rollups would have summed them. The one
# thing the ledger cannot tell is whether a reading came after its window closed, so
# ``corrections`` counts the rows in the window that were corrected (revision > 0).
_METER_FROM_LEDGER = _WITH_MARK + (  # noqa: S608 - constants only
    """
SELECT 'meter', m.meter_id, m.energy_type, %(size)s, w.start_at, w.start_at + %(width)s,
       coalesce(sum(m.consumption::numeric), 0), min(m.physical_unit),
       coalesce(sum(m.tce::numeric), 0),
       coalesce(sum(m.tce::numeric) FILTER (WHERE m.counted), 0),
       coalesce(sum(m.tce_equivalent::numeric), 0), count(*), sum(m.interval_seconds),
       count(*) FILTER (WHERE m.quality_flags <> '{}'),
       count(*) FILTER (WHERE m.quality_flags && ARRAY['stuck']),
       count(*) FILTER (WHERE m.quality_flags && ARRAY['implausible_jump']),
       count(*) FILTER (WHERE m.quality_flags && ARRAY['reset', 'rollover']),
       count(*) FILTER (WHERE m.quality_flags && ARRAY['off_period_start']),
       count(*) FILTER (WHERE m.revision > 0),
       coalesce(w.start_at + %(width)s <= (SELECT * FROM mark), false)
FROM meter_readings m
CROSS JOIN LATERAL (SELECT time_bucket(%(width)s, m.period_start) AS start_at) AS w
WHERE m.meter_id = %(subject)s AND m.aggregated
  AND m.period_start >= %(start)s AND m.period_start < %(end)s
  AND (%(energy_type)s::text IS NULL OR m.energy_type = %(energy_type)s)
GROUP BY m.meter_id, m.energy_type, w.start_at
ORDER BY w.start_at, m.energy_type
"""
)
_FROM_LEDGER: Final = {
    WindowSize.QUARTER_HOUR: timedelta(minutes=15),
    WindowSize.HOUR: timedelta(hours=1),
}


async def stream_watermark(
    conn: psycopg.AsyncConnection[TupleRow], topic: str, consumer: str | None = None
) -> datetime | None:
    """The lowest watermark over ``topic``'s partitions (of ``consumer``, or of every
    consumer); None when there is no progress row or a partition has no watermark yet."""
    async with conn.transaction():
        cur = await conn.execute(_WATERMARK, {"topic": topic, "consumer": consumer})
        row = await cur.fetchone()
    return None if row is None or row[0] is None else _utc(row[0])


async def rollups(
    conn: psycopg.AsyncConnection[TupleRow],
    subject_kind: SubjectKind,
    subject: str,
    window_size: WindowSize,
    start: datetime,
    end: datetime,
    energy_type: str | None = None,
    *,
    topic: str,
    consumer: str | None = None,
) -> list[RollupRow]:
    """A subject's rollups of one window size whose windows start in ``[start, end)``, of one
    energy type or of all (``'all'`` being one of them), ordered by period start then energy
    type. ``topic`` (the readings topic) and ``consumer`` say whose watermark decides
    ``final``. A meter's quarter-hours and hours are summed from the ledger."""
    _require_aware(start, end)
    width = _FROM_LEDGER.get(WindowSize(window_size))
    from_ledger = SubjectKind(subject_kind) is SubjectKind.METER and width is not None
    async with conn.transaction():
        cur = await conn.execute(
            _METER_FROM_LEDGER if from_ledger else _ROLLUPS,
            {
                "topic": topic,
                "consumer": consumer,
                "kind": SubjectKind(subject_kind).value,
                "subject": subject,
                "size": window_size.value,
                "start": start,
                "end": end,
                "energy_type": energy_type,
                "width": width,
            },
        )
        rows = await cur.fetchall()
    return [_rollup_row(row) for row in rows]


def _rollup_row(row: TupleRow) -> RollupRow:
    return RollupRow(
        subject_kind=SubjectKind(row[0]),
        subject=row[1],
        energy_type=row[2],
        window_size=WindowSize(row[3]),
        period_start=_utc(row[4]),
        period_end=_utc(row[5]),
        physical_quantity=row[6],
        physical_unit=row[7],
        tce=row[8],
        tce_counted=row[9],
        tce_equivalent=row[10],
        readings=int(row[11]),
        covered_seconds=int(row[12]),
        flagged=int(row[13]),
        stuck=int(row[14]),
        jumps=int(row[15]),
        resets=int(row[16]),
        off_period_start=int(row[17]),
        corrections=int(row[18]),
        final=bool(row[19]),
    )


# -- meters expected to report ------------------------------------------------------------


async def meters_by_energy_type(
    conn: psycopg.AsyncConnection[TupleRow],
    subject_kind: SubjectKind,
    subject: str,
    start: datetime,
    end: datetime,
) -> dict[str, int]:
    """How many meters of a meter or unit are expected to report in ``[start, end)``, per
    energy type and in ``'all'`` (every type but water): those the ledger has heard from
    between ``METER_LOOKBACK`` before ``start`` and ``end``. A meter silent for longer than
    that no longer counts against the unit's completeness.

    Rollups do not say how many meters a county, city or industry has (that is the register's
    business), so only meters and units can be asked."""
    _require_aware(start, end)
    column = {SubjectKind.METER: "meter_id", SubjectKind.UNIT: "enterprise_code"}.get(
        SubjectKind(subject_kind)
    )
    if column is None:
        raise ValueError(f"meters are counted for a meter or a unit, not a {subject_kind}")
    async with conn.transaction():
        cur = await conn.execute(
            f"SELECT energy_type, count(DISTINCT meter_id) FROM meter_readings "  # noqa: S608 - column from a fixed map
            f"WHERE {column} = %s AND period_start >= %s AND period_start < %s "
            "GROUP BY energy_type",
            (subject, start - METER_LOOKBACK, end),
        )
        counts = {str(t): int(n) for t, n in await cur.fetchall()}
    counts[ALL_ENERGY_TYPES] = sum(n for t, n in counts.items() if t != EnergyType.WATER.value)
    return counts


def completeness_ratio(row: RollupRow, meters: Mapping[str, int] | None) -> Decimal | None:
    """The share of a window the expected meters covered, ``covered_seconds / (window ×
    meters)``, exact; None when the number of meters is not known or is zero."""
    if meters is None:
        return None
    count = 1 if row.subject_kind is SubjectKind.METER else meters.get(row.energy_type, 0)
    if count <= 0 or row.window_seconds <= 0:
        return None
    return Decimal(row.covered_seconds) / Decimal(row.window_seconds * count)


# -- daily data quality ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayQuality:
    """A meter's or unit's data quality on one China-local day, from its 1d rollups.

    ``completeness`` counts seconds, not uploads: ``expected`` is meters × the seconds judged,
    ``received`` the seconds their aggregated readings cover (capped at ``expected``). Seconds
    weigh a 60-minute meter's upload like four 15-minute ones, which is what "90% of the
    expected data" means when intervals differ."""

    subject_kind: SubjectKind
    subject: str
    day: date  # China-local
    meters: int  # expected to report (water meters included)
    judged_until: datetime  # UTC: the day's end, or for the current day the last interval end
    completeness: Completeness
    readings: int
    flagged: int
    stuck: int
    jumps: int
    resets: int
    off_period_start: int
    corrections: int

    @property
    def ratio(self) -> float:
        return self.completeness.ratio

    @property
    def meets_rule(self) -> bool:
        """At least 90% complete (DOMAIN.md §5)."""
        return self.completeness.meets_rule

    @property
    def offline_seconds(self) -> int:
        """Meter-seconds with no data: for one meter on a whole day, 86400 - covered."""
        return self.completeness.expected - self.completeness.received


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A China-local day as UTC instants ``[start, end)``."""
    start = datetime(day.year, day.month, day.day, tzinfo=CHINA_STANDARD_TIME).astimezone(UTC)
    return start, start + timedelta(days=1)


def judged_until(day: date, now: datetime | None, interval: timedelta) -> datetime:
    """How much of ``day`` to judge at ``now``: all of it once it is over (or without ``now``);
    for the day in progress, up to the end of the last whole ``interval`` (from CST midnight);
    nothing before it starts."""
    start, end = day_bounds(day)
    if now is None or now >= end:
        return end
    if now <= start:
        return start
    return start + ((now - start) // interval) * interval


async def quality(
    conn: psycopg.AsyncConnection[TupleRow],
    subject_kind: SubjectKind,
    subject: str,
    day: date,
    *,
    now: datetime | None = None,
    interval: timedelta = timedelta(minutes=15),
) -> DayQuality | None:
    """A meter's or unit's data quality on a China-local ``day``; None when nothing is known
    of the subject (no rollup that day, no reading in the ledger for ``METER_LOOKBACK``).

    For the day in progress (``now`` inside it) only the part up to the last whole
    ``interval`` is judged. The interval just ended may still be on its way through the
    stream, so a day in progress can read a little low; judge a day as a whole after the
    watermark has passed its end."""
    kind = SubjectKind(subject_kind)
    if kind not in (SubjectKind.METER, SubjectKind.UNIT):
        raise ValueError(f"quality is judged per meter or unit, not per {kind}")
    start, end = day_bounds(day)
    until = judged_until(day, now, interval)
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT count(*), coalesce(sum(covered_seconds), 0), coalesce(sum(readings), 0), "
            "coalesce(sum(flagged), 0), coalesce(sum(stuck), 0), coalesce(sum(jumps), 0), "
            "coalesce(sum(resets), 0), coalesce(sum(off_period_start), 0), "
            "coalesce(sum(corrections), 0) FROM energy_rollups "
            "WHERE subject_kind = %s AND subject = %s AND window_size = %s "
            "AND period_start = %s AND energy_type <> %s",
            (kind.value, subject, WindowSize.DAY.value, start, ALL_ENERGY_TYPES),
        )
        row = await cur.fetchone()
    assert row is not None  # an aggregate always returns a row
    rollup_rows, covered, *counts = (int(v) for v in row)
    by_type = await meters_by_energy_type(conn, kind, subject, start, end)
    meters = sum(n for t, n in by_type.items() if t != ALL_ENERGY_TYPES)
    if kind is SubjectKind.METER:
        meters = min(1, meters + rollup_rows)
    if meters == 0:
        return None
    expected = meters * int((until - start).total_seconds())
    # readings stamped a little ahead (within the clock tolerance) may cover more than has
    # elapsed of a day in progress
    received = min(covered, expected)
    readings, flagged, stuck, jumps, resets, off_start, corrections = counts
    return DayQuality(
        subject_kind=kind,
        subject=subject,
        day=day,
        meters=meters,
        judged_until=until,
        completeness=Completeness(day=day, expected=expected, received=received),
        readings=readings,
        flagged=flagged,
        stuck=stuck,
        jumps=jumps,
        resets=resets,
        off_period_start=off_start,
        corrections=corrections,
    )


# -- readings too late to aggregate --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LateReading:
    """A reading stored beyond the allowed lateness: in the ledger, in no rollup."""

    meter_id: str
    period_start: datetime  # UTC
    enterprise_code: str
    energy_type: str
    interval_seconds: int
    physical_quantity: float | None
    physical_counter: float | None
    physical_unit: str
    source: str
    ingested_at: datetime  # UTC


@dataclass(frozen=True, slots=True)
class LateReadings:
    count: int  # all of them in the period
    rows: tuple[LateReading, ...]  # the first ``limit`` by period start and meter


async def late_readings(
    conn: psycopg.AsyncConnection[TupleRow],
    start: datetime,
    end: datetime,
    *,
    limit: int = 1000,
) -> LateReadings:
    """Readings for periods starting in ``[start, end)`` that were stored but not aggregated
    (they arrived beyond the allowed lateness): how many, and the first ``limit``."""
    _require_aware(start, end)
    async with conn.transaction():
        cur = await conn.execute(
            "SELECT count(*) FROM meter_readings "
            "WHERE NOT aggregated AND period_start >= %s AND period_start < %s",
            (start, end),
        )
        total = await cur.fetchone()
        cur = await conn.execute(
            "SELECT meter_id, period_start, enterprise_code, energy_type, interval_seconds, "
            "physical_quantity, physical_counter, physical_unit, source, ingested_at "
            "FROM meter_readings WHERE NOT aggregated AND period_start >= %s AND period_start < %s "
            "ORDER BY period_start, meter_id LIMIT %s",
            (start, end, limit),
        )
        rows = await cur.fetchall()
    return LateReadings(
        count=int(total[0]) if total else 0,
        rows=tuple(
            LateReading(
                meter_id=r[0],
                period_start=_utc(r[1]),
                enterprise_code=r[2],
                energy_type=r[3],
                interval_seconds=int(r[4]),
                physical_quantity=r[5],
                physical_counter=r[6],
                physical_unit=r[7],
                source=r[8],
                ingested_at=_utc(r[9]),
            )
            for r in rows
        ),
    )


# -- periods as people type them -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportPeriod:
    """China Standard Time dates ``first_day`` to ``last_day``, both included, as the UTC
    instants ``[start, end)`` the tables hold: 2026-03-01 to 2026-03-31 is 2026-02-28T16:00Z
    to 2026-03-31T16:00Z."""

    first_day: date
    last_day: date

    def __post_init__(self) -> None:
        if self.last_day < self.first_day:
            raise ValueError(
                f"the period ends ({self.last_day}) before it starts ({self.first_day})"
            )

    @property
    def start(self) -> datetime:
        return day_bounds(self.first_day)[0]

    @property
    def end(self) -> datetime:
        return day_bounds(self.last_day)[1]

    @classmethod
    def parse(cls, first_day: str, last_day: str) -> "ExportPeriod":
        """From ``YYYY-MM-DD`` texts; ValueError says which is wrong and how to write it."""
        return cls(parse_cst_date(first_day), parse_cst_date(last_day))


def parse_cst_date(text: str) -> date:
    """A China-local date written ``YYYY-MM-DD`` (nothing else: ``20260301`` or a time of
    day would be ambiguous about the zone)."""
    value = text.strip()
    if _DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a date: {exc}") from exc
    raise ValueError(f"{text!r}: write a China Standard Time date as YYYY-MM-DD, e.g. 2026-03-01")


def _require_aware(*instants: datetime) -> None:
    for at in instants:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"instants must be timezone-aware, got naive {at.isoformat()}")


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)
