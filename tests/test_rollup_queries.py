"""The read side of the rollups against a real TimescaleDB: rows written straight into the
tables (no worker needed), read back by ``storage.rollup_queries``.

The helpers at the top (``rollup``, ``insert_rollups``, ``set_progress``, ``insert_reading``)
are shared with ``tests/test_export.py``.
"""

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.identifiers import CHINA_STANDARD_TIME
from storage.migrate import migrate
from storage.rollup_queries import (
    ExportPeriod,
    SubjectKind,
    judged_until,
    late_readings,
    parse_cst_date,
    quality,
    rollups,
    stream_watermark,
)
from stream.windows import WindowSize

services = pytest.mark.services

TOPIC = "energywatch.readings.v1"
UNIT = "91140800MA0K00001X"
#: 2026-03-02 00:00 CST = 2026-03-01 16:00 UTC
DAY1 = datetime(2026, 3, 1, 16, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
DAY3 = DAY2 + timedelta(days=1)
DAY4 = DAY3 + timedelta(days=1)

WINDOW_LENGTH = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "1d": timedelta(days=1)}


async def connect(settings) -> psycopg.AsyncConnection:
    conn = await psycopg.AsyncConnection.connect(settings.database_url.get_secret_value())
    await migrate(conn)
    return conn


def rollup(
    kind: str, subject: str, energy_type: str, size: str, start: datetime, **fields: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "subject_kind": kind,
        "subject": subject,
        "energy_type": energy_type,
        "window_size": size,
        "period_start": start,
        "period_end": start + WINDOW_LENGTH[size],
        "physical_quantity": None if energy_type == "all" else Decimal("1000.5"),
        "physical_unit": None if energy_type == "all" else "kWh",
        "tce": Decimal("0.122961450"),
        "tce_counted": Decimal("0.122961450"),
        "tce_equivalent": Decimal("0.300150000"),
        "readings": 96,
        "covered_seconds": 86_400 if size == "1d" else int(WINDOW_LENGTH[size].total_seconds()),
        "flagged": 0,
        "stuck": 0,
        "jumps": 0,
        "resets": 0,
        "off_period_start": 0,
        "corrections": 0,
    }
    row.update(fields)
    return row


async def insert_rollups(conn: psycopg.AsyncConnection, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    async with conn.transaction(), conn.cursor() as cur:
        await cur.executemany(
            f"INSERT INTO energy_rollups ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})",
            [tuple(row[c] for c in columns) for row in rows],
        )


async def set_progress(
    conn: psycopg.AsyncConnection,
    topic: str,
    watermarks: dict[int, datetime | None],
    consumer: str = "energywatch-worker",
) -> None:
    async with conn.transaction():
        for partition, watermark in watermarks.items():
            await conn.execute(
                "INSERT INTO stream_progress (consumer, topic, partition, next_offset, watermark) "
                "VALUES (%s, %s, %s, 1, %s) ON CONFLICT (consumer, topic, partition) "
                "DO UPDATE SET watermark = excluded.watermark",
                (consumer, topic, partition, watermark),
            )


async def insert_reading(
    conn: psycopg.AsyncConnection,
    meter_id: str,
    period_start: datetime,
    enterprise_code: str,
    energy_type: str = "electricity",
    aggregated: bool = True,
) -> None:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO meter_readings (meter_id, period_start, enterprise_code, energy_type, "
            "interval_seconds, physical_quantity, physical_unit, source, aggregated) "
            "VALUES (%s, %s, %s, %s, 900, 12.5, %s, 'test', %s)",
            (
                meter_id,
                period_start,
                enterprise_code,
                energy_type,
                "m3" if energy_type in ("water", "natural_gas") else "kWh",
                aggregated,
            ),
        )


def run(scenario):
    return asyncio.run(scenario())


# -- rollups ----------------------------------------------------------------------------------


@services
def test_rollups_of_one_subject_and_window_come_ordered_by_period_then_energy_type(
    database_settings,
):
    async def scenario():
        async with await connect(database_settings) as conn:
            await insert_rollups(
                conn,
                [
                    rollup("unit", UNIT, "natural_gas", "1d", DAY2),
                    rollup("unit", UNIT, "all", "1d", DAY2),
                    rollup("unit", UNIT, "electricity", "1d", DAY1),
                    rollup("unit", UNIT, "electricity", "1d", DAY2),
                    rollup("unit", UNIT, "all", "1d", DAY1),
                    # not asked for: other days, window sizes, subjects, subject kinds
                    rollup("unit", UNIT, "all", "1d", DAY3),
                    rollup("unit", UNIT, "all", "1d", DAY1 - timedelta(days=1)),
                    rollup("unit", UNIT, "all", "1h", DAY1),
                    rollup("unit", "91140800MA0K00002X", "all", "1d", DAY1),
                    rollup("county", UNIT, "all", "1d", DAY1),
                ],
            )
            everything = await rollups(
                conn, SubjectKind.UNIT, UNIT, WindowSize.DAY, DAY1, DAY3, topic=TOPIC
            )
            gas = await rollups(
                conn,
                SubjectKind.UNIT,
                UNIT,
                WindowSize.DAY,
                DAY1,
                DAY3,
                "natural_gas",
                topic=TOPIC,
            )
            return everything, gas

    everything, gas = run(scenario)
    assert [(r.period_start, r.energy_type) for r in everything] == [
        (DAY1, "all"),
        (DAY1, "electricity"),
        (DAY2, "all"),
        (DAY2, "electricity"),
        (DAY2, "natural_gas"),
    ]
    assert {(r.subject_kind, r.subject, r.window_size) for r in everything} == {
        (SubjectKind.UNIT, UNIT, WindowSize.DAY)
    }
    assert [(r.period_start, r.energy_type) for r in gas] == [(DAY2, "natural_gas")]


@services
def test_numeric_sums_come_back_as_the_exact_decimals_stored(database_settings):
    big = Decimal("123456789012.123456789")

    async def scenario():
        async with await connect(database_settings) as conn:
            await insert_rollups(
                conn,
                [
                    rollup(
                        "city",
                        "运城市",
                        "electricity",
                        "1h",
                        DAY1,
                        tce=big,
                        tce_counted=Decimal("0.000000001"),
                        tce_equivalent=Decimal("0E-9"),
                        physical_quantity=Decimal("1000000000000.000001"),
                    )
                ],
            )
            return await rollups(
                conn, SubjectKind.CITY, "运城市", WindowSize.HOUR, DAY1, DAY2, topic=TOPIC
            )

    (row,) = run(scenario)
    assert isinstance(row.tce, Decimal)
    assert row.tce == big
    assert str(row.tce) == "123456789012.123456789"
    assert row.tce_counted == Decimal("0.000000001")
    assert row.tce_equivalent == 0
    assert row.physical_quantity == Decimal("1000000000000.000001")
    assert row.window_seconds == 3600


@services
def test_a_window_is_final_once_the_lowest_partition_watermark_has_passed_its_end(
    database_settings,
):
    #   DAY1 ------- DAY2 ------- DAY3
    #   [ window 1  )[ window 2  )
    #                ^ partition 1's watermark (the lowest): window 1 final, window 2 not
    #                              ^ partition 0's watermark
    async def finals(conn, topic=TOPIC, consumer=None):
        rows = await rollups(
            conn,
            SubjectKind.COUNTY,
            "140802",
            WindowSize.DAY,
            DAY1,
            DAY3,
            "all",
            topic=topic,
            consumer=consumer,
        )
        return [r.final for r in rows]

    async def scenario():
        async with await connect(database_settings) as conn:
            await insert_rollups(
                conn,
                [
                    rollup("county", "140802", "all", "1d", DAY1),
                    rollup("county", "140802", "all", "1d", DAY2),
                ],
            )
            seen = {"no progress": await finals(conn)}
            await set_progress(conn, TOPIC, {0: DAY3, 1: DAY2})
            seen["partition 1 at DAY2"] = await finals(conn)
            seen["watermark"] = await stream_watermark(conn, TOPIC)
            await set_progress(conn, "another.topic", {0: DAY1})
            seen["another topic ignored"] = await finals(conn)
            await set_progress(conn, TOPIC, {0: DAY3, 1: DAY2 - timedelta(microseconds=1)})
            seen["just before the end"] = await finals(conn)
            await set_progress(conn, TOPIC, {1: DAY3}, consumer="old-worker")
            await set_progress(conn, TOPIC, {1: DAY3})
            seen["both past"] = await finals(conn)
            seen["old worker's only"] = await finals(conn, consumer="old-worker")
            await set_progress(conn, TOPIC, {2: None})
            seen["a partition without a watermark"] = await finals(conn)
            seen["no watermark"] = await stream_watermark(conn, TOPIC)
            return seen

    seen = run(scenario)
    assert seen == {
        "no progress": [False, False],
        "partition 1 at DAY2": [True, False],
        "watermark": DAY2,
        "another topic ignored": [True, False],
        "just before the end": [False, False],
        "both past": [True, True],
        "old worker's only": [True, True],
        "a partition without a watermark": [False, False],
        "no watermark": None,
    }


# -- quality ----------------------------------------------------------------------------------

CST_DAY1 = date(2026, 3, 2)


@services
def test_a_meter_day_is_complete_at_90_percent_coverage_and_counts_its_flags(database_settings):
    async def scenario():
        async with await connect(database_settings) as conn:
            await insert_rollups(
                conn,
                [
                    rollup("meter", "M-ok", "electricity", "1d", DAY1, covered_seconds=77_760),
                    rollup(
                        "meter",
                        "M-short",
                        "electricity",
                        "1d",
                        DAY1,
                        covered_seconds=77_759,
                        readings=86,
                        flagged=5,
                        stuck=2,
                        jumps=1,
                        resets=1,
                        off_period_start=3,
                        corrections=4,
                    ),
                ],
            )
            ok = await quality(conn, SubjectKind.METER, "M-ok", CST_DAY1)
            short = await quality(conn, SubjectKind.METER, "M-short", CST_DAY1)
            unknown = await quality(conn, SubjectKind.METER, "M-nobody", CST_DAY1)
            return ok, short, unknown

    ok, short, unknown = run(scenario)
    assert ok.ratio == 0.9
    assert ok.meets_rule
    assert ok.offline_seconds == 86_400 - 77_760
    assert not short.meets_rule
    assert short.offline_seconds == 86_400 - 77_759
    assert (
        short.readings,
        short.flagged,
        short.stuck,
        short.jumps,
        short.resets,
        short.off_period_start,
        short.corrections,
    ) == (86, 5, 2, 1, 1, 3, 4)
    assert short.judged_until == DAY2
    assert unknown is None


@services
def test_a_meter_silent_all_day_is_zero_percent_complete_not_unknown(database_settings):
    async def scenario():
        async with await connect(database_settings) as conn:
            await insert_reading(conn, "M-quiet", DAY1 - timedelta(days=3), UNIT)
            return await quality(conn, SubjectKind.METER, "M-quiet", CST_DAY1)

    silent = run(scenario)
    assert silent.ratio == 0.0
    assert silent.offline_seconds == 86_400
    assert not silent.meets_rule


@services
def test_a_unit_day_expects_every_meter_the_ledger_knows_and_ignores_the_all_row(
    database_settings,
):
    async def scenario():
        async with await connect(database_settings) as conn:
            # two meters, one of them water (not in 'all'); a third from another unit
            await insert_reading(conn, "E1", DAY1 - timedelta(days=2), UNIT)
            await insert_reading(conn, "W1", DAY1 + timedelta(hours=1), UNIT, "water")
            await insert_reading(conn, "X1", DAY1, "91140800MA0K00002X")
            await insert_rollups(
                conn,
                [
                    rollup("unit", UNIT, "electricity", "1d", DAY1, covered_seconds=86_400),
                    rollup("unit", UNIT, "water", "1d", DAY1, covered_seconds=69_120),
                    rollup("unit", UNIT, "all", "1d", DAY1, covered_seconds=86_400),
                ],
            )
            return await quality(conn, SubjectKind.UNIT, UNIT, CST_DAY1)

    unit = run(scenario)
    assert unit.meters == 2
    assert (unit.completeness.expected, unit.completeness.received) == (2 * 86_400, 155_520)
    assert unit.ratio == 0.9
    assert unit.meets_rule
    assert unit.offline_seconds == 86_400 - 69_120


@services
def test_the_day_in_progress_is_judged_up_to_its_last_whole_quarter_hour(database_settings):
    now = DAY1 + timedelta(hours=6, minutes=10)

    async def scenario():
        async with await connect(database_settings) as conn:
            await insert_rollups(
                conn, [rollup("meter", "M1", "electricity", "1d", DAY1, covered_seconds=6 * 3600)]
            )
            return await quality(conn, SubjectKind.METER, "M1", CST_DAY1, now=now)

    today = run(scenario)
    assert today.judged_until == DAY1 + timedelta(hours=6)
    assert today.ratio == 1.0
    assert today.offline_seconds == 0


def test_judged_until_covers_the_whole_day_once_it_is_over_and_nothing_before_it():
    q = timedelta(minutes=15)
    assert judged_until(CST_DAY1, None, q) == DAY2
    assert judged_until(CST_DAY1, DAY3, q) == DAY2
    assert judged_until(CST_DAY1, DAY1 - timedelta(hours=1), q) == DAY1
    assert judged_until(CST_DAY1, DAY1 + timedelta(minutes=44), q) == DAY1 + 2 * q


@services
def test_quality_is_judged_per_meter_or_unit_only(database_settings):
    async def scenario():
        async with await connect(database_settings) as conn:
            await quality(conn, SubjectKind.COUNTY, "140802", CST_DAY1)

    with pytest.raises(ValueError, match="per meter or unit"):
        run(scenario)


# -- late readings ----------------------------------------------------------------------------


@services
def test_late_readings_lists_only_the_unaggregated_rows_of_the_period(database_settings):
    async def scenario():
        async with await connect(database_settings) as conn:
            await insert_reading(conn, "M2", DAY1 + timedelta(hours=2), UNIT, aggregated=False)
            await insert_reading(conn, "M1", DAY1 + timedelta(hours=2), UNIT, aggregated=False)
            await insert_reading(conn, "M1", DAY1, UNIT, aggregated=False)
            await insert_reading(conn, "M1", DAY1 + timedelta(hours=1), UNIT)  # aggregated
            await insert_reading(conn, "M1", DAY2, UNIT, aggregated=False)  # after the period
            return (
                await late_readings(conn, DAY1, DAY2),
                await late_readings(conn, DAY1, DAY2, limit=1),
            )

    late, first = run(scenario)
    assert late.count == 3
    assert [(r.meter_id, r.period_start) for r in late.rows] == [
        ("M1", DAY1),
        ("M1", DAY1 + timedelta(hours=2)),
        ("M2", DAY1 + timedelta(hours=2)),
    ]
    assert late.rows[0].enterprise_code == UNIT
    assert first.count == 3
    assert len(first.rows) == 1


# -- periods in CST dates ---------------------------------------------------------------------


def test_a_cst_month_is_the_utc_instants_from_16_00_the_day_before():
    march = ExportPeriod.parse("2026-03-01", "2026-03-31")
    assert march.start == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert march.end == datetime(2026, 3, 31, 16, tzinfo=UTC)
    one_day = ExportPeriod.parse("2026-03-02", "2026-03-02")
    assert (one_day.start, one_day.end) == (DAY1, DAY2)


@pytest.mark.parametrize("text", ["2026-3-1", "20260301", "2026-02-30", "2026-03-01T00:00", ""])
def test_only_real_dates_written_yyyy_mm_dd_are_accepted(text):
    with pytest.raises(ValueError, match=r"YYYY-MM-DD|not a date"):
        parse_cst_date(text)


def test_a_period_cannot_end_before_it_starts():
    with pytest.raises(ValueError, match="ends"):
        ExportPeriod.parse("2026-03-31", "2026-03-01")


days = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 30))


@given(days, st.integers(min_value=0, max_value=400), st.integers(min_value=-3, max_value=403))
def test_an_instant_is_in_the_period_exactly_when_its_cst_date_is_between_the_two_days(
    first, length, offset_days
):
    last = first + timedelta(days=length)
    period = ExportPeriod(first, last)
    for at in (
        period.start + timedelta(days=offset_days),
        period.start + timedelta(days=offset_days) - timedelta(microseconds=1),
    ):
        cst_day = at.astimezone(CHINA_STANDARD_TIME).date()
        assert (period.start <= at < period.end) == (first <= cst_day <= last)
    assert period.start.astimezone(CHINA_STANDARD_TIME).time().isoformat() == "00:00:00"
    assert period.end - period.start == timedelta(days=length + 1)


@given(days, st.integers(min_value=0, max_value=60), st.integers(min_value=0, max_value=60))
def test_consecutive_periods_tile_time_without_gap_or_overlap(first, a, b):
    middle = first + timedelta(days=a)
    left = ExportPeriod(first, middle)
    right = ExportPeriod(middle + timedelta(days=1), middle + timedelta(days=1 + b))
    assert left.end == right.start
