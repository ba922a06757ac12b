"""What migration 0009 adds so the dashboards stay fast, against the real database: the VOC
panels' daily summary kept by a trigger as the stream writes hours, the spans ``voc_cover``
cuts a time range into, and the sorted-array count that stands in for counting hours above a
limit."""

import asyncio
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.voc import DataFlag, PollutantValue, VocSample
from energywatch.settings import Settings
from storage.migrate import migrate
from storage.voc import store_voc_samples
from tests.conftest import fresh_database

pytestmark = pytest.mark.services
CODE = "91350100M000100Y43"
NMHC, FLOW = "a24088", "a00000"
MIDNIGHT = datetime(2026, 3, 1, 16, tzinfo=UTC)  # 2026-03-02 00:00 China Standard Time
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def migrated(local_stack: Settings) -> Iterator[str]:
    """The URL of a fresh database with every migration, shared by this module's tests."""
    with fresh_database(local_stack) as database:
        url = database.database_url.get_secret_value()

        async def run() -> None:
            async with await psycopg.AsyncConnection.connect(url) as conn:
                await migrate(conn)

        asyncio.run(run())
        yield url


def _minute(at: datetime, nmhc: float | None, flag: str = "N") -> VocSample:
    """A minute sample; ``nmhc`` None: one without NMHC (a re-send that drops the code)."""
    values = {FLOW: PollutantValue(avg=10.0, cou=600.0, flag=DataFlag.NORMAL)}
    if nmhc is not None:
        values[NMHC] = PollutantValue(avg=nmhc, min=nmhc * 0.9, max=nmhc * 1.1, flag=DataFlag(flag))
    return VocSample(
        monitor_id="YCVOC0001",
        enterprise_code=CODE,
        data_time=at,
        interval_seconds=60,
        values=values,
    )


def _hour(start: datetime, level: float, valid_minutes: int = 60) -> list[VocSample]:
    return [
        _minute(start + m * MINUTE, level + m / 100, "N" if m < valid_minutes else "D")
        for m in range(60)
    ]


def _store(url: str, *batches: list[VocSample]) -> None:
    """Each batch in a transaction of its own, through the stream's storage adapter."""

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            for batch in batches:
                async with conn.transaction(), conn.cursor() as cur:
                    await store_voc_samples(cur, batch)

    asyncio.run(run())


def _kept_and_recounted(conn: psycopg.Connection, table: str) -> tuple[list[Any], list[Any]]:
    """A summary table's rows as the stream's writes left them, and as its refresh function
    recounts them from scratch (rolled back)."""
    select = f"SELECT * FROM {table} ORDER BY monitor_id, pollutant, period_start"
    kept = conn.execute(select.encode()).fetchall()
    with conn.transaction(force_rollback=True):
        conn.execute(f"SELECT {table}_refresh('-infinity', 'infinity')".encode())
        recounted = conn.execute(select.encode()).fetchall()
    return kept, recounted


def test_the_voc_day_summary_follows_the_streams_writes_as_a_recount_would(migrated):
    """Hours on both sides of a China-local midnight, one of them invalid, then a late
    correction of a minute and a minute sent again without NMHC: after each write the trigger's
    rows equal a recount from voc_hourly, and the counts are the hours'."""
    before = MIDNIGHT - timedelta(hours=2)
    _store(
        migrated,
        _hour(before, 3.0) + _hour(before + timedelta(hours=1), 9.0, valid_minutes=30),
        _hour(MIDNIGHT, 5.0),
        _hour(MIDNIGHT + timedelta(hours=1), 7.0),
    )
    _store(migrated, [_minute(MIDNIGHT + 5 * MINUTE, 50.0)])  # a late correction: a new max
    _store(migrated, [_minute(MIDNIGHT + timedelta(hours=1), None)])
    with psycopg.connect(migrated) as conn:
        kept, recounted = _kept_and_recounted(conn, "voc_daily_hours")
        hourly = conn.execute(
            "SELECT date_trunc('day', period_start, 'Asia/Shanghai'), count(*), "
            "count(*) FILTER (WHERE valid), max(avg), "
            "array_agg(avg ORDER BY period_start) FILTER (WHERE valid) "
            "FROM voc_hourly WHERE pollutant = %s GROUP BY 1 ORDER BY 1",
            (NMHC,),
        ).fetchall()
        summary = conn.execute(
            "SELECT period_start, hours, hours_n, avgs[cardinality(avgs)], valid_avgs "
            "FROM voc_daily_hours WHERE pollutant = %s ORDER BY 1",
            (NMHC,),
        ).fetchall()
    assert kept == recounted
    assert [day for day, *_ in summary] == [MIDNIGHT - timedelta(days=1), MIDNIGHT]
    assert [(h, n) for _, h, n, *_ in summary] == [(2, 1), (2, 2)]
    assert summary == [tuple(row) for row in hourly]


def _assert_tiles(spans: list[Any], range_from: datetime, range_to: datetime) -> None:
    """Spans follow one another from ``range_from`` to just after ``range_to`` (included, as
    Grafana's $__timeFilter)."""
    assert spans[0][1] == range_from
    assert spans[-1][2] == range_to + timedelta(microseconds=1)
    for (_, _, end), (_, begin, _) in itertools.pairwise(spans):
        assert end == begin


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=40 * 24 * 4),
    length=st.integers(min_value=0, max_value=40 * 24 * 4),
)
def test_voc_cover_tiles_the_range_and_its_days_are_whole_china_days(migrated, start, length):
    """[from, to] (to included, as $__timeFilter) in quarter hours: spans follow one another
    from ``from`` to just after ``to``; 'day' spans run from a China-local midnight to another,
    and no 'hour' span holds a whole China-local day."""
    range_from = datetime(2026, 1, 1, 3, 15, tzinfo=UTC) + timedelta(minutes=15 * start)
    range_to = range_from + timedelta(minutes=15 * length)
    with psycopg.connect(migrated) as conn:
        spans = conn.execute(
            "SELECT source, span_start, span_end FROM voc_cover(%s, %s) ORDER BY span_start",
            (range_from, range_to),
        ).fetchall()
    _assert_tiles(spans, range_from, range_to)
    for source, begin, end in spans:
        if source == "day":
            local = begin.astimezone(CHINA_STANDARD_TIME)
            assert (local.hour, local.minute, local.second) == (0, 0, 0)
            assert (end - begin) % timedelta(days=1) == timedelta(0)
        else:
            assert source == "hour"
            assert end - begin <= timedelta(days=2)
    assert sum(source == "day" for source, _, _ in spans) <= 1


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=1000, allow_nan=False), max_size=24),
    limit=st.floats(min_value=0, max_value=1000, allow_nan=False),
)
def test_hours_above_a_limit_are_what_width_bucket_counts_in_the_sorted_averages(
    migrated, values, limit
):
    """The VOC panels count hours with avg > limit as cardinality - width_bucket over a day's
    sorted averages; ties with the limit are not above it."""
    values = [*values, *values[:2]]  # some ties
    with psycopg.connect(migrated) as conn:
        row = conn.execute(
            "SELECT cardinality(a) - width_bucket(%s::float8, a) FROM "
            "(SELECT coalesce(array_agg(v ORDER BY v), '{}') AS a "
            " FROM unnest(%s::float8[]) AS v) s",
            (limit, values),
        ).fetchone()
    assert row is not None
    assert row[0] == sum(1 for v in values if v > limit)


# -- migration 0010: months ---------------------------------------------------------------------

MONTH_END = datetime(2026, 3, 31, 13, tzinfo=UTC)  # 2026-03-31 21:00 China Standard Time


def test_the_voc_month_summary_follows_the_streams_writes_as_a_recount_would(migrated):
    """Hours on both sides of a China-local month end, one of them half invalid, then a late
    correction: the month rows the day refresh keeps equal a recount, and hold each month's
    hours, sorted averages and valid hours' sum as voc_hourly has them."""
    hours = [MONTH_END + timedelta(hours=h) for h in range(6)]  # 21:00 CST to 02:00 CST
    _store(
        migrated,
        *[_hour(at, 2.0 + i, valid_minutes=30 if i == 1 else 60) for i, at in enumerate(hours)],
    )
    _store(migrated, [_minute(hours[4] + 7 * MINUTE, 80.0)])  # a late correction
    with psycopg.connect(migrated) as conn:
        kept, recounted = _kept_and_recounted(conn, "voc_monthly_hours")
        hourly = conn.execute(
            "SELECT date_trunc('month', period_start, 'Asia/Shanghai'), count(*), "
            "count(*) FILTER (WHERE valid), "
            "array_agg(avg ORDER BY avg) FILTER (WHERE avg IS NOT NULL), "
            "coalesce(sum(avg) FILTER (WHERE valid), 0) "
            "FROM voc_hourly WHERE pollutant = %s AND period_start >= %s GROUP BY 1 ORDER BY 1",
            (NMHC, datetime(2026, 2, 28, 16, tzinfo=UTC)),
        ).fetchall()
        summary = conn.execute(
            "SELECT period_start, hours, hours_n, avgs, valid_sum FROM voc_monthly_hours "
            "WHERE pollutant = %s AND period_start >= %s ORDER BY 1",
            (NMHC, datetime(2026, 2, 28, 16, tzinfo=UTC)),
        ).fetchall()
    assert kept == recounted
    march, april = datetime(2026, 2, 28, 16, tzinfo=UTC), datetime(2026, 3, 31, 16, tzinfo=UTC)
    assert [row[0] for row in summary] == [march, april]
    assert [(h, n) for _, h, n, *_ in summary][1] == (3, 3)  # April: 00:00-02:00 CST
    for (_, h, n, avgs, valid_sum), (_, h2, n2, avgs2, sum2) in zip(summary, hourly, strict=True):
        assert (h, n, avgs) == (h2, n2, avgs2)
        assert valid_sum == pytest.approx(sum2)


@settings(max_examples=60, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=200 * 24),
    length=st.integers(min_value=0, max_value=200 * 24),
    months=st.booleans(),
)
def test_voc_cover_with_months_tiles_the_range_with_whole_china_months(
    migrated, start, length, months
):
    """With months, the range's whole China-local months become 'month' spans; the rest is
    tiled as without them (whole days, then ragged hours), and no 'day' span holds a month."""
    range_from = datetime(2026, 1, 1, 3, 15, tzinfo=UTC) + timedelta(hours=start)
    range_to = range_from + timedelta(hours=length)
    with psycopg.connect(migrated) as conn:
        spans = conn.execute(
            "SELECT source, span_start, span_end FROM voc_cover(%s, %s, %s) ORDER BY span_start",
            (range_from, range_to, months),
        ).fetchall()
        plain = conn.execute(
            "SELECT source, span_start, span_end FROM voc_cover(%s, %s) ORDER BY span_start",
            (range_from, range_to),
        ).fetchall()
    _assert_tiles(spans, range_from, range_to)
    if not months:
        assert spans == plain
    for source, begin, end in spans:
        local_begin = begin.astimezone(CHINA_STANDARD_TIME)
        local_end = end.astimezone(CHINA_STANDARD_TIME)
        if source == "month":
            assert months
            assert (local_begin.day, local_begin.hour) == (1, 0)
            assert (local_end.day, local_end.hour, local_end.minute) == (1, 0, 0)
        elif source == "day" and months:  # a day span never holds a whole China-local month
            first = local_begin.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            next_first = (first + timedelta(days=32)).replace(day=1)
            assert not (local_begin == first and local_end >= next_first)
    assert [s for s in spans if s[0] == "hour"] == [s for s in plain if s[0] == "hour"]
    if months and length >= 62 * 24:  # two months long: one holds a whole month
        assert any(source == "month" for source, _, _ in spans)


def test_the_voc_panels_count_the_same_hours_from_months_as_from_days(migrated):
    """The concentration-vs-limits and data-flags counts over a range holding a whole month
    (its ragged ends in hours and days) equal those of the same range served by days and
    hours alone (as the panels do with months off): same hours, exceedances and flags."""
    from dashboards.voc import _COUNTED, _FLAG_COLUMNS, _FLAG_DAYS, _FLAG_HOURS, _summary_rows

    flags = f"""
        SELECT {_FLAG_HOURS} FROM voc_hourly h
        WHERE s.source = 'hour' AND h.monitor_id = l.monitor_id AND h.pollutant = l.pollutant
          AND h.period_start >= s.span_start AND h.period_start < s.span_end
        UNION ALL SELECT {_FLAG_DAYS} {_summary_rows("voc_daily_hours", "day")}
        UNION ALL SELECT {_FLAG_DAYS} {_summary_rows("voc_monthly_hours", "month")}"""
    query = f"""
        SELECT sum(a.valid_hours), sum(a.invalid_hours), max(a.max_avg), max(a.max_single),
               sum(a.exceedance_hours), sum(a.over_single),
               (SELECT array_agg(x) FROM (
                   SELECT sum(f.hours_n), sum(f.hours_d)
                   FROM (VALUES ('YCVOC0001', '{NMHC}')) AS l (monitor_id, pollutant)
                   CROSS JOIN voc_cover(%(from)s, %(to)s, %(months)s) s
                   CROSS JOIN LATERAL ({flags}) f ({_FLAG_COLUMNS})) t (n, d)
                CROSS JOIN LATERAL unnest(ARRAY[t.n, t.d]) AS x)
        FROM (VALUES ('YCVOC0001', '{NMHC}', 4.5::float8, 5.5::float8))
             AS l (monitor_id, pollutant, hourly_avg_mg_m3, single_mg_m3)
        CROSS JOIN voc_cover(%(from)s, %(to)s, %(months)s) s
        CROSS JOIN LATERAL ({_COUNTED}) a"""
    april = datetime(2026, 4, 10, 2, tzinfo=UTC)
    _store(
        migrated,
        _hour(april, 6.0, valid_minutes=20),  # an invalid hour
        _hour(april + timedelta(hours=1), 3.0),
        _hour(april + timedelta(hours=2), 5.0),  # above the 4.5 limit below
        _hour(datetime(2026, 5, 3, 1, tzinfo=UTC), 7.0),  # a ragged end's hour
    )
    # a range from 20 March 09:10 CST to 3 May 10:50 CST: all of April and its ragged ends
    window = {
        "from": datetime(2026, 3, 20, 1, 10, tzinfo=UTC),
        "to": datetime(2026, 5, 3, 2, 50, tzinfo=UTC),
    }
    with psycopg.connect(migrated) as conn:
        spans = conn.execute(
            "SELECT source FROM voc_cover(%(from)s, %(to)s, true)", window
        ).fetchall()
        by_month = conn.execute(query, {**window, "months": True}).fetchone()
        by_day = conn.execute(query, {**window, "months": False}).fetchone()
    assert ("month",) in spans
    assert by_month == by_day
    assert by_month is not None
    assert by_month[0] > 0
    assert by_month[4] > 0
