"""The dashboards benchmark's generator and timer, at a tiny size against the real database
(the benchmark itself is ``energywatch bench dashboards``, run by hand)."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.dashboards import (
    grafana_interval,
    prepare_dataset,
    selection,
    sql_targets,
    time_queries,
    variable_variants,
)
from benchmarks.year_of_data import VOC_CODES, DatasetSpec, chunks, plan_dataset
from contracts.identifiers import CHINA_STANDARD_TIME
from storage.scratch_databases import drop_database

END = datetime(2026, 3, 4, 6, 15, tzinfo=UTC)


@given(
    days=st.integers(min_value=1, max_value=400),
    offset=st.integers(min_value=0, max_value=400 * 96),
)
@settings(max_examples=50, deadline=None)
def test_chunks_tile_the_span_one_china_month_each(days: int, offset: int) -> None:
    end = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * offset)
    spec = DatasetSpec(units=1, days=days, end=end)
    parts = chunks(spec)
    assert parts[0].start == spec.start
    assert parts[-1].end == spec.end
    for before, after in itertools.pairwise(parts):
        assert before.end == after.start
    for part in parts:
        first = part.start.astimezone(CHINA_STANDARD_TIME)
        last = (part.end - timedelta(microseconds=1)).astimezone(CHINA_STANDARD_TIME)
        assert (
            (first.year, first.month)
            == (last.year, last.month)
            == (
                part.cst_month.year,
                part.cst_month.month,
            )
        )


def test_grafana_interval_follows_the_range() -> None:
    assert grafana_interval(timedelta(days=1)) == timedelta(minutes=1)
    assert grafana_interval(timedelta(days=7)) == timedelta(minutes=10)
    assert grafana_interval(timedelta(days=30)) == timedelta(minutes=30)
    assert grafana_interval(timedelta(days=365)) == timedelta(hours=6)


def test_one_unit_selection_sets_its_county_and_city_too() -> None:
    defaults = {"county": ["a", "b"], "unit": "__all", "city": "__all", "pollutant": "x"}
    variants = variable_variants(defaults, "U1", "C1", "CITY")
    assert variants["one unit"] == {
        "county": ["C1"],
        "unit": "U1",
        "city": "CITY",
        "pollutant": "x",
    }
    assert variants["one county"]["unit"] == "__all"
    assert variants["defaults"] == defaults


@pytest.fixture(scope="module")
def tiny_dataset(local_stack):
    admin_url = local_stack.database_url.get_secret_value()
    name = f"ew_test_benchdash_{uuid.uuid4().hex[:8]}"
    spec = DatasetSpec(units=3, days=3, end=END, voc_minute_days=1)
    try:
        yield prepare_dataset(admin_url, spec, refill=True, database=name, step=lambda *_: None)
    finally:
        drop_database(admin_url, name)


def _whole_hours(start: datetime, end: datetime) -> int:
    """Whole clock hours in [start, end)."""
    first = (start + timedelta(minutes=59, seconds=59)).replace(minute=0, second=0)
    return max(0, int((end - first) / timedelta(hours=1)))


def _one(conn: psycopg.Connection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_generator_fills_every_table_at_the_pipelines_row_counts(tiny_dataset) -> None:
    plan = plan_dataset(tiny_dataset.spec)
    assert plan.monitors, "the tiny fleet has a coking unit, so a VOC monitor"
    intervals = 3 * 96
    with psycopg.connect(tiny_dataset.url) as conn:
        readings = _one(conn, "SELECT count(*) FROM meter_readings")
        # every meter at every quarter hour but its planned gaps, less ~0.2% lost at random
        gaps = {
            (gap.key, gap.start + timedelta(minutes=15 * n))
            for gap in plan.meter_gaps
            for n in range(int((gap.end - gap.start) / timedelta(minutes=15)))
        }
        expected = len(plan.meters) * intervals - len(gaps)
        assert 0.99 * expected <= readings <= expected
        # the unit per energy type at 15 minutes: one rollup row per stored reading
        quarter = _one(
            conn,
            "SELECT count(*) FROM energy_rollups WHERE subject_kind = 'unit' "
            "AND window_size = '15m' AND energy_type <> 'all'",
        )
        assert quarter == readings
        # rollups are sums of the ledger, as the worker keeps them: exact, water left out
        raw, rolled = conn.execute(  # type: ignore[misc]
            "SELECT (SELECT sum(tce::numeric) FROM meter_readings "
            "        WHERE energy_type <> 'water'), "
            "       (SELECT sum(tce) FROM energy_rollups WHERE subject_kind = 'city' "
            "        AND energy_type = 'all' AND window_size = '1d')"
        ).fetchone()
        assert raw == rolled
        meter_windows = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT window_size FROM energy_rollups WHERE subject_kind = 'meter'"
            )
        }
        assert meter_windows == {"1d", "1mo"}
        kinds = {r[0] for r in conn.execute("SELECT DISTINCT subject_kind FROM energy_rollups")}
        assert kinds == {"meter", "unit", "county", "city", "industry"}
        # every whole hour of the span, on the hour as the stream's are (it starts at 06:15)
        series = len(plan.monitors) * len(VOC_CODES)
        assert _whole_hours(tiny_dataset.spec.start, END) == 3 * 24 - 1
        hours = series * _whole_hours(tiny_dataset.spec.start, END)
        assert _one(conn, "SELECT count(*) FROM voc_hourly") == hours
        off_the_hour = (
            "SELECT count(*) FROM voc_hourly WHERE date_trunc('hour', period_start) <> period_start"
        )
        assert _one(conn, off_the_hour) == 0
        assert _one(conn, "SELECT count(*) FROM voc_samples WHERE interval_seconds = 3600") == hours
        minutes = _one(conn, "SELECT count(*) FROM voc_samples WHERE interval_seconds = 60")
        assert minutes == series * 60 * _whole_hours(tiny_dataset.spec.voc_minutes_from, END)
        # the VOC panels' daily summary (migration 0009), summed after the trigger was deferred
        assert _one(conn, "SELECT sum(hours) FROM voc_daily_hours") == hours
        assert _one(conn, "SELECT sum(hours_n) FROM voc_daily_hours") == _one(
            conn, "SELECT count(*) FROM voc_hourly WHERE valid"
        )
        assert _one(conn, "SELECT count(*) FROM voc_daily") == _one(
            conn,
            "SELECT count(DISTINCT (monitor_id, pollutant, "
            "date_trunc('day', period_start AT TIME ZONE 'Asia/Shanghai'))) FROM voc_hourly",
        )
        assert _one(conn, "SELECT count(*) FROM product_output_reports") > 0
        assert _one(conn, "SELECT count(*) FROM alerts") == _one(
            conn, "SELECT count(DISTINCT alert_id) FROM alert_history"
        )
    assert tiny_dataset.rows["meter_readings"] == readings
    assert tiny_dataset.sizes_mb["energy_rollups"] > 0


def test_a_second_run_keeps_the_data_unless_refilled(tiny_dataset, local_stack) -> None:
    admin_url = local_stack.database_url.get_secret_value()
    name = psycopg.conninfo.conninfo_to_dict(tiny_dataset.url)["dbname"]
    later = DatasetSpec(units=3, days=3, end=END + timedelta(days=1), voc_minute_days=1)
    kept = prepare_dataset(admin_url, later, refill=False, database=name, step=lambda *_: None)
    assert kept.reused
    assert kept.spec.end == END  # ranges end where the kept data ends


def test_timer_returns_a_result_for_every_sql_panel(tiny_dataset) -> None:
    targets, _, why_not = sql_targets()
    if why_not is not None:
        pytest.skip(why_not)
    from dashboards.queries import default_variables

    variants = variable_variants(default_variables(), *selection(tiny_dataset.url))
    measured = time_queries(
        tiny_dataset.url,
        tiny_dataset.spec,
        targets,
        variants,
        repeats=1,
        timeout_seconds=30,
        step=lambda *_: None,
        ranges={"24h": timedelta(days=1)},
    )
    per_target = {(m.dashboard_uid, m.panel_title, m.ref_id) for m in measured}
    assert per_target == {(t.dashboard_uid, t.panel_title, t.ref_id) for t in targets}
    assert len(measured) == len(targets) * 2 * len(variants)  # 24h and the whole dataset
    failed = [f"{m.panel_title} [{m.range}, {m.variant}]: {m.error}" for m in measured if m.error]
    assert not failed, failed
    assert all(m.runs_ms or m.same_as for m in measured)
