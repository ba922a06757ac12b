"""The reference tables (migration 0008): the register and plans as rows, synced whole, and
the rollup cover the dashboards sum over."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from contracts.identifiers import CHINA_STANDARD_TIME
from energywatch.cli import app
from plans.register import load_register
from plans.targets import load_city_plans
from storage.reference_data import COLUMNS, reference_rows, sync_reference_data

REGISTER = Path(__file__).parent.parent / "plans" / "registers" / "demo.yaml"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_every_unit_budget_meter_and_county_of_the_register_becomes_a_row():
    register, plans = load_register(REGISTER), load_city_plans()
    data = reference_rows(register, plans, synced_at=NOW)
    assert {r[0] for r in data.rows("ref_units")} == {e.code for e in register.enterprises}
    assert len(data.rows("ref_meters")) == len(register.meters)
    budgets = sum(len(e.energy_budgets) for e in register.enterprises)
    assert len(data.rows("ref_unit_budgets")) == budgets
    counties = {r[0] for r in data.rows("ref_counties")}
    assert {e.county for e in register.enterprises} <= counties
    assert {r[0] for r in data.rows("ref_cities")} == set(plans)
    for table, rows in data.tables.items():
        assert all(len(row) == len(COLUMNS[table]) for row in rows), table


def test_plan_targets_carry_the_yuncheng_cut_and_product_limits_the_plan_gives():
    register, plans = load_register(REGISTER), load_city_plans()
    data = reference_rows(register, plans, synced_at=NOW)
    cut = [
        r
        for r in data.rows("ref_plan_targets")
        if r[1] == "yuncheng" and r[3] == "intensity_basic_pct"
    ]
    assert cut
    assert cut[0][6] == 15.5
    keys = [(r[0], r[1], r[5], r[6]) for r in data.rows("ref_product_limits")]
    assert len(keys) == len(set(keys)), "one row per unit, product, level and scope"
    alumina = [r for r in data.rows("ref_product_limits") if r[1] == "alumina" and r[5] == "limit"]
    assert alumina
    assert all(r[7] == 370 for r in alumina)


def test_naive_sync_times_are_refused():
    with pytest.raises(ValueError, match="timezone"):
        reference_rows(load_register(REGISTER), {}, synced_at=datetime(2026, 3, 1))


@pytest.mark.services
def test_register_sync_fills_the_tables_and_a_second_sync_replaces_them(database_settings):
    env = {**database_settings.as_env(), "EW_REGISTER_PATH": str(REGISTER)}
    runner = CliRunner()
    first = runner.invoke(app, ["register", "sync"], env=env)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["register", "sync"], env=env)
    assert second.exit_code == 0, second.output
    register = load_register(REGISTER)
    with psycopg.connect(database_settings.database_url.get_secret_value()) as conn:
        units = conn.execute("SELECT count(*) FROM ref_units").fetchone()
        synced = conn.execute("SELECT count(*), min(register_name) FROM ref_sync").fetchone()
    assert units == (len(register.enterprises),)
    assert synced == (1, register.name)


@pytest.mark.services
def test_register_sync_of_a_missing_register_names_the_file(database_settings, tmp_path):
    missing = tmp_path / "no-such-register.yaml"
    result = CliRunner().invoke(
        app, ["register", "sync", "--register", str(missing)], env=database_settings.as_env()
    )
    assert result.exit_code == 2
    assert "no-such-register" in result.output
    assert "cannot read it" in result.output


@pytest.fixture(scope="module")
def migrated(local_stack):
    from tests.conftest import fresh_database

    with fresh_database(local_stack) as settings:
        asyncio.run(
            sync_reference_data(
                settings.database_url.get_secret_value(),
                load_register(REGISTER),
                load_city_plans(),
                now=NOW,
            )
        )
        with psycopg.connect(settings.database_url.get_secret_value()) as conn:
            yield conn


quarter_hours = st.integers(min_value=0, max_value=4 * 24 * 800).map(
    lambda n: datetime(2025, 12, 20, tzinfo=CHINA_STANDARD_TIME) + timedelta(minutes=15 * n)
)
offsets = st.integers(min_value=0, max_value=899).map(lambda s: timedelta(seconds=s))


@pytest.mark.services
@settings(max_examples=150, deadline=None)
@given(quarter_hours, quarter_hours, offsets, offsets)
def test_rollup_cover_tiles_exactly_the_quarter_hours_starting_in_the_range(
    migrated, a, b, skew_a, skew_b
):
    """Spans are whole China-local windows of their size, do not overlap, and together are
    exactly the quarter hours that start in [from, to)."""
    start, end = sorted((a + skew_a, b + skew_b))
    rows = migrated.execute("SELECT * FROM rollup_cover(%s, %s)", (start, end)).fetchall()
    covered = []
    for size, span_start, span_end in rows:
        local = span_start.astimezone(CHINA_STANDARD_TIME)
        if size == "1mo":
            assert (local.day, local.hour, local.minute) == (1, 0, 0)
        if size == "1d":
            assert (local.hour, local.minute) == (0, 0)
        if size == "1h":
            assert local.minute == 0
        at = span_start
        while at < span_end:
            covered.append(at)
            at += timedelta(minutes=15)
    expected = []
    at = datetime(2025, 12, 20, tzinfo=CHINA_STANDARD_TIME)
    while at < end:
        if at >= start:
            expected.append(at)
        at += timedelta(minutes=15)
    assert sorted(covered) == expected
    assert len(rows) <= 7
