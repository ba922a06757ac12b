"""Every SQL panel of every dashboard, run on real data: the demo scenario (plus one stuck
meter) through the real pipeline (Kafka -> worker -> TimescaleDB -> alert evaluator), the
register and plans synced into the reference tables, and each panel's SQL expanded as
Grafana's PostgreSQL datasource would (``dashboards.grafana_macros``) and run on TimescaleDB.
"""

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from contracts.identifiers import CHINA_STANDARD_TIME
from dashboards.grafana_macros import CustomAllValue, expand_sql
from dashboards.queries import PanelQuery, default_variables, panel_queries
from energywatch import demo
from energywatch.service_process import ServiceProcess
from energywatch.settings import Settings
from plans.targets import load_city_plans
from simulators.scenario import Scenario, load_scenario
from storage.reference_data import sync_reference_data
from storage.rollup_queries import SubjectKind, quality
from tests.conftest import fresh_database, isolated_pipeline, wait_until

pytestmark = pytest.mark.services
REPO = Path(__file__).parent.parent
CST = CHINA_STANDARD_TIME
#: the scenario's first nine and a half days: the hospital meter is silent at the end of it
FROM = datetime(2026, 3, 1, tzinfo=CST)
TO = datetime(2026, 3, 10, 12, tzinfo=CST)
SQL_QUERIES = [q for q in panel_queries() if q.datasource == "timescaledb"]

#: the columns each panel's SQL returns, by (dashboard uid, panel title)
EXPECTED_COLUMNS: dict[tuple[str, str], list[str]] = {
    ("ew-overview", "Counties by warning level 预警等级"): ["red", "orange", "yellow", "green"],
    ("ew-overview", "Warning levels and progress vs plan 预警与目标进度"): [
        "kind",
        "region",
        "division",
        "level",
        "intensity_level",
        "total_level",
        "tce",
        "last_year_tce",
        "change_pct",
        "intensity_cut_pct",
        "intensity_target",
        "cap_tce",
        "unit_budgets_tce",
    ],
    ("ew-overview", "Energy by county 区县能耗 (tce)"): ["time", "metric", "tce"],
    ("ew-overview", "Budget burn and year-end forecast 用能预算"): [
        "unit",
        "enterprise_code",
        "county",
        "budget_tce",
        "used_tce",
        "used_pct",
        "expected_pct",
        "pace",
        "forecast_tce",
        "forecast_pct",
        "alerts",
    ],
    ("ew-overview", "Top consumers 重点耗能 (tce)"): [
        "unit",
        "enterprise_code",
        "county",
        "industry",
        "tce",
        "share_pct",
    ],
    ("ew-overview", "Active alerts 当前告警"): [
        "time",
        "severity",
        "rule_id",
        "subject",
        "who",
        "region_code",
        "message",
        "acknowledged_by",
    ],
    ("ew-unit", "Unit 单位"): [
        "name",
        "enterprise_code",
        "county",
        "industry",
        "two_high",
        "emergency_grade",
        "meters",
        "budget_tce",
    ],
    ("ew-unit", "Energy by type 分品种能耗 (tce)"): ["time", "metric", "tce"],
    ("ew-unit", "Energy by type in physical units 实物量"): [
        "energy_type",
        "physical_unit",
        "physical_quantity",
        "tce",
        "tce_counted",
        "tce_equivalent",
    ],
    ("ew-unit", "Product unit energy vs limits 单位产品能耗"): ["time", "metric", "value"],
    ("ew-unit", "Products against limit, baseline and benchmark 限额与标杆"): [
        "product",
        "days",
        "unit_energy",
        "worst_day",
        "value_unit",
        "limit_value",
        "baseline",
        "benchmark",
        "of_limit_pct",
    ],
    ("ew-unit", "Budget pace 预算进度 (tce since New Year)"): [
        "time",
        "used_tce",
        "budget_pace_tce",
        "budget_tce",
    ],
    ("ew-unit", "Data quality by day 每日数据质量"): [
        "time",
        "meters",
        "completeness_pct",
        "meets_rule",
        "readings",
        "flagged",
        "stuck",
        "jumps",
        "resets",
        "corrections",
    ],
    ("ew-unit", "Alert history 告警历史"): [
        "time",
        "data_time",
        "kind",
        "rule_id",
        "severity",
        "subject",
        "message",
    ],
    ("ew-voc", "Hourly averages vs limit 小时均值 (mg/m³)"): ["time", "metric", "avg_mg_m3"],
    ("ew-voc", "Concentrations vs limits 浓度与限值"): [
        "monitor_id",
        "pollutant",
        "unit",
        "standard",
        "valid_hours",
        "invalid_hours",
        "max_hourly_avg",
        "hourly_avg_mg_m3",
        "max_single",
        "single_mg_m3",
        "exceedance_hours",
        "hours_over_single_limit",
    ],
    ("ew-voc", "Data flags 数据标记 (hours)"): ["monitor_id", "flag", "hours", "meaning"],
    ("ew-voc", "Exceedance hours per day 超标小时数 (per month beyond 90 days)"): [
        "time",
        "metric",
        "exceedance_hours",
    ],
    ("ew-quality", "Completeness by county per day 区县数据完整率 (%)"): [
        "time",
        "metric",
        "completeness_pct",
    ],
    ("ew-quality", "Completeness by county 区县"): [
        "county",
        "division",
        "meters",
        "completeness_pct",
        "readings",
        "flagged",
        "stuck",
    ],
    ("ew-quality", "Completeness by unit 用能单位数据完整率"): [
        "unit",
        "enterprise_code",
        "county",
        "meters",
        "completeness_pct",
        "readings",
        "flagged",
        "stuck",
        "jumps",
        "resets",
    ],
    ("ew-quality", "Offline devices 离线设备"): [
        "kind",
        "device",
        "unit",
        "county",
        "last_data",
        "silent_hours",
        "firing",
    ],
    ("ew-quality", "Stuck meters 卡滞表计"): [
        "meter_id",
        "unit",
        "county",
        "energy_type",
        "stuck_readings",
        "readings",
        "stuck_pct",
        "last_stuck_day",
    ],
}


@dataclass(frozen=True)
class Filled:
    settings: Settings
    scenario: Scenario

    def code(self, enterprise_id: str) -> str:
        return self.scenario.fleet.enterprise(enterprise_id).code


def _scenario(tmp: Path) -> Scenario:
    """The demo scenario with one more fault: hj-steel's electricity meter stuck for six
    hours on 6 March (the demo has no stuck meter, and a panel lists them)."""
    config = yaml.safe_load((REPO / "scenarios" / "demo.yaml").read_text("utf-8"))
    config["fleet"] = str((REPO / "scenarios" / config["fleet"]).resolve())
    config["faults"] = [
        {
            "type": "stuck",
            "target": "hj-steel/electricity",
            "start": "2026-03-06T08:00:00+08:00",
            "end": "2026-03-06T14:00:00+08:00",
        }
    ]
    path = tmp / "demo-with-a-stuck-meter.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return load_scenario(path)


def _progress(settings: Settings) -> demo.DemoProgress:
    async def read() -> demo.DemoProgress:
        async with await psycopg.AsyncConnection.connect(
            settings.database_url.get_secret_value(), autocommit=True
        ) as conn:
            return await demo.pipeline_progress(conn)

    return asyncio.run(read())


@pytest.fixture(scope="module")
def filled(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    """One database for every panel test, filled once by the whole pipeline."""
    tmp = tmp_path_factory.mktemp("dashboards")
    scenario = _scenario(tmp)
    with fresh_database(local_stack) as database, isolated_pipeline(database) as settings:
        register = demo.scenario_register(scenario)
        asyncio.run(
            sync_reference_data(
                settings.database_url.get_secret_value(),
                register,
                load_city_plans(),
                now=datetime.now(UTC),
            )
        )
        register_path = tmp / "register.yaml"
        register_path.write_text(yaml.safe_dump(register.model_dump(mode="json")), "utf-8")
        env = {
            **settings.as_env(),
            "EW_REGISTER_PATH": str(register_path),
            "EW_EVALUATOR_CLOCK": "data",
            "EW_EVALUATOR_SWEEP_SECONDS": "2",
        }
        services = [
            ServiceProcess(["worker"], env, tmp / "worker.log").start(),
            ServiceProcess(["alerts", "evaluate"], env, tmp / "evaluator.log").start(),
        ]
        try:
            asyncio.run(demo.declare_emergencies(settings, scenario))
            produced = demo.produce(settings, scenario)
            state: dict[str, Any] = {"last": None, "since": time.monotonic()}

            def settled() -> bool:
                now = _progress(settings)
                if now != state["last"]:
                    state["last"], state["since"] = now, time.monotonic()
                done = now.readings >= produced["readings"] and now.dirty == 0
                return done and time.monotonic() - state["since"] > 3

            wait_until(settled, 300, interval=0.5, what="the pipeline to store and judge")
            yield Filled(settings, scenario)
        finally:
            for service in services:
                service.stop()


def _variables(query: PanelQuery, filled: Filled) -> dict[str, Any]:
    """All of everything, but the unit drill-down and the VOC dashboard look at the coking
    plant (budget overrun, a product with limits, a VOC monitor that exceeded)."""
    variables: dict[str, Any] = dict(default_variables())
    if query.dashboard_uid in ("ew-unit", "ew-voc"):
        variables["unit"] = filled.code("hj-coking")
    return variables


def run_panel(
    filled: Filled,
    query: PanelQuery,
    *,
    time_from: datetime = FROM,
    time_to: datetime = TO,
    interval: timedelta = timedelta(hours=1),
    variables: dict[str, Any] | None = None,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    sql = expand_sql(
        query.expr,
        time_from=time_from,
        time_to=time_to,
        interval=interval,
        variables=variables if variables is not None else _variables(query, filled),
    )
    with psycopg.connect(filled.settings.database_url.get_secret_value()) as conn:
        cur = conn.execute(sql.encode())
        assert cur.description is not None
        return [c.name for c in cur.description], cur.fetchall()


def test_every_sql_panel_has_its_expected_columns_listed_here():
    assert {(q.dashboard_uid, q.panel_title) for q in SQL_QUERIES} == set(EXPECTED_COLUMNS)


@pytest.mark.parametrize(
    "query", SQL_QUERIES, ids=[f"{q.dashboard_uid}:{q.panel_title}" for q in SQL_QUERIES]
)
def test_panel_sql_returns_its_columns_and_rows_on_the_scenario(filled, query):
    columns, rows = run_panel(filled, query)
    assert columns == EXPECTED_COLUMNS[query.dashboard_uid, query.panel_title]
    assert rows, f"{query.dashboard_uid} / {query.panel_title}: no rows"


@pytest.mark.parametrize(
    "query", SQL_QUERIES, ids=[f"{q.dashboard_uid}:{q.panel_title}" for q in SQL_QUERIES]
)
def test_panel_sql_runs_over_a_year_with_daily_points_and_default_variables(filled, query):
    """The benchmark's way: a whole year, a one-day interval, every variable at All."""
    columns, _rows = run_panel(
        filled,
        query,
        time_from=datetime(2026, 1, 1, tzinfo=CST),
        time_to=datetime(2026, 12, 31, tzinfo=CST),
        interval=timedelta(days=1),
        variables=dict(default_variables()),
    )
    assert columns == EXPECTED_COLUMNS[query.dashboard_uid, query.panel_title]


def _panel(uid: str, title: str) -> PanelQuery:
    return next(q for q in SQL_QUERIES if (q.dashboard_uid, q.panel_title) == (uid, title))


def test_the_coking_plants_budget_burn_shows_it_running_over_its_pace(filled):
    columns, rows = run_panel(
        filled, _panel("ew-overview", "Budget burn and year-end forecast 用能预算")
    )
    by_code = {
        row[columns.index("enterprise_code")]: dict(zip(columns, row, strict=True)) for row in rows
    }
    coking = by_code[filled.code("hj-coking")]
    assert coking["pace"] > 1, coking
    assert "energy-budget.unit.pace" in (coking["alerts"] or "")


def test_the_silent_hospital_meter_is_listed_offline(filled):
    columns, rows = run_panel(filled, _panel("ew-quality", "Offline devices 离线设备"))
    devices = {row[columns.index("device")] for row in rows}
    hospital = filled.code("yuncheng-hospital-1")
    assert any(device.startswith(hospital) for device in devices), devices


def test_the_stuck_steel_meter_is_listed(filled):
    columns, rows = run_panel(filled, _panel("ew-quality", "Stuck meters 卡滞表计"))
    meters = {row[columns.index("meter_id")] for row in rows}
    assert any(m.startswith(filled.code("hj-steel")) for m in meters), meters


def test_the_drill_downs_daily_completeness_is_rollup_queries_quality(filled):
    """The panel's completeness is the 90% rule's (storage/rollup_queries.quality) for the
    hospital whose meter went silent, day by day."""
    hospital = filled.code("yuncheng-hospital-1")
    variables = {**default_variables(), "unit": hospital}
    columns, rows = run_panel(
        filled, _panel("ew-unit", "Data quality by day 每日数据质量"), variables=variables
    )
    assert rows

    async def judged(day: date) -> Any:
        async with await psycopg.AsyncConnection.connect(
            filled.settings.database_url.get_secret_value()
        ) as conn:
            return await quality(conn, SubjectKind.UNIT, hospital, day)

    compared = 0
    for row in rows:
        panel = dict(zip(columns, row, strict=True))
        day = panel["time"].astimezone(CST).date()
        expected = asyncio.run(judged(day))
        assert expected is not None
        assert panel["meters"] == expected.meters, day
        assert round(float(panel["completeness_pct"]), 2) == round(expected.ratio * 100, 2), day
        assert panel["meets_rule"] == expected.meets_rule, day
        compared += 1
    assert compared >= 9
    assert any(not dict(zip(columns, r, strict=True))["meets_rule"] for r in rows), (
        "the silent days"
    )


def test_a_chosen_county_narrows_the_overview_to_it(filled):
    county = filled.scenario.fleet.enterprise("hj-coking").county.division
    variables = {**default_variables(), "county": [county]}
    columns, rows = run_panel(
        filled, _panel("ew-overview", "Top consumers 重点耗能 (tce)"), variables=variables
    )
    units_there = {e.code for e in filled.scenario.fleet.enterprises if e.county.division == county}
    codes = {row[columns.index("enterprise_code")] for row in rows}
    assert codes
    assert codes <= units_there
    assert default_variables()["county"] == CustomAllValue("'__all'")


@pytest.mark.parametrize("day", [date(2026, 3, 3), date(2026, 3, 9)])
def test_completeness_by_unit_over_a_china_day_is_rollup_queries_quality(filled, day):
    """Over one whole China-local day the quality dashboard's completeness (read from the
    rollups' 'all' and water rows, migration 0009's index) is the 90% rule's, for every unit
    and for the hospital whose meter went silent."""
    start = datetime(day.year, day.month, day.day, tzinfo=CST)
    columns, rows = run_panel(
        filled,
        _panel("ew-quality", "Completeness by unit 用能单位数据完整率"),
        time_from=start,
        time_to=start + timedelta(days=1),
        variables=dict(default_variables()),
    )
    by_code = {
        row[columns.index("enterprise_code")]: dict(zip(columns, row, strict=True)) for row in rows
    }

    async def judged(code: str) -> Any:
        async with await psycopg.AsyncConnection.connect(
            filled.settings.database_url.get_secret_value()
        ) as conn:
            return await quality(conn, SubjectKind.UNIT, code, day)

    compared = 0
    for code, panel in by_code.items():
        expected = asyncio.run(judged(code))
        if expected is None:
            assert panel["completeness_pct"] is None, code
            continue
        assert panel["meters"] == expected.meters, code
        assert round(float(panel["completeness_pct"]), 2) == round(expected.ratio * 100, 2), code
        compared += 1
    assert compared >= 5
    assert filled.code("yuncheng-hospital-1") in by_code
