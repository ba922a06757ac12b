# ruff: noqa: S608 - panel SQL for Grafana, composed from constants: nothing here runs it
"""Supervision overview (节能监察总览): where each county and city stands, who uses the most,
whose budget is going, and what is firing now.

Warning levels are the alert evaluator's: an active ``barometer.*`` alert of a region is its
level (red or yellow), none is green; nothing here recomputes the NDRC rules. Totals over the
time range read the coarsest rollups that cover it (``rollup_cover``: months, then days, hours
and quarter hours at the edges), so a year costs a few dozen rows per subject.
"""

from typing import Final

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import stat, table, timeseries
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.common import (
    CHOSEN_REGIONS,
    CHOSEN_UNITS,
    EVERY_REGION,
    EVERY_UNIT,
    TIMESCALEDB,
    Sql,
    among,
    coloured_cells,
    cover_rows,
    dashboard,
    level_mappings,
    region_variables,
    unit_variable,
)

UID: Final = "ew-overview"

#: a region's worst active barometer level (red above orange above yellow), by division
LEVELS_BY_DIVISION: Final = """SELECT a.subject AS division,
           max(CASE WHEN a.rule_id = 'barometer.intensity' THEN l.rank END) AS intensity_rank,
           max(CASE WHEN a.rule_id = 'barometer.total' THEN l.rank END) AS total_rank,
           max(l.rank) AS rank
    FROM alerts a
    CROSS JOIN LATERAL (
        SELECT CASE coalesce(a.latest->>'level',
                             CASE a.severity WHEN 'critical' THEN 'red' ELSE 'yellow' END)
                   WHEN 'red' THEN 3 WHEN 'orange' THEN 2 WHEN 'yellow' THEN 1 ELSE 0 END AS rank
    ) l
    WHERE a.status = 'firing' AND a.rule_id LIKE 'barometer%'
    GROUP BY a.subject"""


def _level(rank: str) -> str:
    return (
        f"CASE coalesce({rank}, 0) WHEN 3 THEN 'red' WHEN 2 THEN 'orange' "
        "WHEN 1 THEN 'yellow' ELSE 'green' END"
    )


def _cover_sum(kind: str, subjects: str, every: str, range_from: str, range_to: str) -> str:
    """``tce_counted`` of 'all' per subject of ``kind`` over the windows covering the range:
    of ``subjects`` when the variables narrow them (``every`` false), else of every subject
    of the kind. The caller joins the chosen ones to the sums (a semi-join into the grouped
    rows would have the planner read the cover once per chosen subject)."""
    chosen = among(subjects, every)
    rows = cover_rows(kind, range_from, range_to, energy_types=("all",), subjects=chosen)
    return f"""SELECT r.subject, sum(r.tce_counted) AS tce
    FROM {rows}
    GROUP BY r.subject"""


_UNIT_CODES: Final = "SELECT enterprise_code FROM units"
_YEAR_BEFORE: Final = "{}::timestamptz - interval '1 year'"
_THIS_YEAR: Final = "extract(year FROM $__timeTo()::timestamptz AT TIME ZONE 'Asia/Shanghai')"


def _regions_sum(range_from: str, range_to: str) -> str:
    cities = "SELECT region FROM regions WHERE kind = 'city'"
    counties = "SELECT region FROM regions WHERE kind = 'county'"
    return (
        _cover_sum("'city'", cities, EVERY_REGION, range_from, range_to)
        + "\n    UNION ALL\n    "
        + _cover_sum("'county'", counties, EVERY_REGION, range_from, range_to)
    )


REGION_LEVELS: Final = f"""
WITH regions AS ({CHOSEN_REGIONS}),
levels AS ({LEVELS_BY_DIVISION}),
used AS ({_regions_sum("$__timeFrom()", "$__timeTo()")}),
last_year AS (
    {_regions_sum(_YEAR_BEFORE.format("$__timeFrom()"), _YEAR_BEFORE.format("$__timeTo()"))}
),
targets AS (
    SELECT t.region_kind, t.region,
           max(t.value) FILTER (WHERE t.indicator = 'intensity_basic_pct'
                                AND t.first_year < t.last_year) AS intensity_cut_pct,
           bool_or(t.assigned_by_province) AS assigned_by_province,
           max(t.value) FILTER (WHERE t.indicator = 'consumption_cap_tce'
                                AND t.first_year = {_THIS_YEAR}) AS cap_tce
    FROM ref_plan_targets t GROUP BY t.region_kind, t.region
),
budgets AS (
    SELECT u.city, u.county, sum(b.budget_tce) AS budget_tce
    FROM ref_units u JOIN ref_unit_budgets b ON b.enterprise_code = u.enterprise_code
    WHERE b.year = {_THIS_YEAR}
    GROUP BY GROUPING SETS ((u.city), (u.county))
)
SELECT g.kind, g.name AS region, g.division,
       {_level("l.rank")} AS level,
       {_level("l.intensity_rank")} AS intensity_level,
       {_level("l.total_rank")} AS total_level,
       round(coalesce(u.tce, 0), 1) AS tce,
       round(y.tce, 1) AS last_year_tce,
       round((u.tce / nullif(y.tce, 0) - 1) * 100, 1) AS change_pct,
       t.intensity_cut_pct,
       CASE WHEN t.assigned_by_province THEN 'by province' END AS intensity_target,
       t.cap_tce,
       round(coalesce(bc.budget_tce, bk.budget_tce)::numeric, 1) AS unit_budgets_tce
FROM regions g
LEFT JOIN levels l ON l.division = g.division
LEFT JOIN used u ON u.subject = g.region
LEFT JOIN last_year y ON y.subject = g.region
LEFT JOIN targets t ON t.region_kind = g.kind AND t.region = g.region
LEFT JOIN budgets bc ON g.kind = 'city' AND bc.county IS NULL AND bc.city = g.region
LEFT JOIN budgets bk ON g.kind = 'county' AND bk.city IS NULL AND bk.county = g.region
ORDER BY g.kind DESC, coalesce(l.rank, 0) DESC, g.division
"""

LEVEL_COUNTS: Final = f"""
WITH regions AS ({CHOSEN_REGIONS}),
levels AS ({LEVELS_BY_DIVISION})
SELECT count(*) FILTER (WHERE l.rank = 3) AS red,
       count(*) FILTER (WHERE l.rank = 2) AS orange,
       count(*) FILTER (WHERE l.rank = 1) AS yellow,
       count(*) FILTER (WHERE l.rank IS NULL OR l.rank = 0) AS green
FROM regions g LEFT JOIN levels l ON l.division = g.division
WHERE g.kind = 'county'
"""

COUNTY_ENERGY: Final = f"""
WITH regions AS ({CHOSEN_REGIONS})
SELECT r.period_start AS "time", g.name AS metric, r.tce_counted AS tce
FROM energy_rollups r
JOIN regions g ON g.kind = 'county' AND g.region = r.subject
WHERE r.subject_kind = 'county' AND r.energy_type = 'all'
  AND r.window_size = rollup_window($__timeFrom(), $__timeTo())
  AND $__timeFilter(r.period_start)
ORDER BY 1, 2
"""

TOP_CONSUMERS: Final = f"""
WITH units AS ({CHOSEN_UNITS}),
used AS ({_cover_sum("'unit'", _UNIT_CODES, EVERY_UNIT, "$__timeFrom()", "$__timeTo()")})
SELECT n.name AS unit, n.enterprise_code, coalesce(k.name_zh, n.county) AS county, n.industry,
       round(u.tce, 1) AS tce,
       round(u.tce * 100 / nullif(sum(u.tce) OVER (), 0), 1) AS share_pct
FROM used u
JOIN units n ON n.enterprise_code = u.subject
LEFT JOIN ref_counties k ON k.county = n.county
ORDER BY u.tce DESC
LIMIT 20
"""

_YEAR_TO_DATE: Final = cover_rows(
    "'unit'", "year.start_at", "$__timeTo()", energy_types=("all",), subjects=among(_UNIT_CODES)
)

#: a year's budget against use since the China-local New Year, paced and projected on the
#: calendar profile from the unit's first rollup window in the year to its last (the
#: evaluator's formula: pace = used / (budget × expected share), forecast = used / expected)
BUDGET_BURN: Final = f"""
WITH units AS ({CHOSEN_UNITS}),
year AS (
    SELECT date_trunc('year', $__timeTo()::timestamptz, 'Asia/Shanghai') AS start_at,
           (date_trunc('year', $__timeTo()::timestamptz, 'Asia/Shanghai')
              AT TIME ZONE 'Asia/Shanghai'
            + interval '1 year') AT TIME ZONE 'Asia/Shanghai' AS end_at,
           extract(year FROM $__timeTo()::timestamptz AT TIME ZONE 'Asia/Shanghai')::int AS year
),
ytd AS (
    SELECT r.subject, sum(r.tce_counted) AS used,
           min(r.period_start) AS first_at, max(r.period_end) AS last_at
    FROM year
    CROSS JOIN LATERAL {_YEAR_TO_DATE}
    GROUP BY r.subject
),
paced AS (
    SELECT n.name, n.enterprise_code, n.county, b.budget_tce, y.used,
           extract(epoch FROM least(y.last_at, $__timeTo()::timestamptz) - y.first_at)
             / extract(epoch FROM year.end_at - year.start_at) AS expected_share
    FROM units n
    CROSS JOIN year
    JOIN ref_unit_budgets b ON b.enterprise_code = n.enterprise_code AND b.year = year.year
    LEFT JOIN ytd y ON y.subject = n.enterprise_code
),
firing AS (
    SELECT a.enterprise_code,
           string_agg(a.rule_id || ' ' || a.severity, ', ' ORDER BY a.rule_id) AS alerts
    FROM alerts a
    WHERE a.status = 'firing'
      AND (a.rule_id LIKE 'energy-budget%' OR a.rule_id LIKE 'budget-forecast%')
    GROUP BY a.enterprise_code
)
SELECT p.name AS unit, p.enterprise_code, p.county, round(p.budget_tce::numeric, 1) AS budget_tce,
       round(coalesce(p.used, 0), 1) AS used_tce,
       round(coalesce(p.used, 0) * 100 / p.budget_tce::numeric, 1) AS used_pct,
       round((p.expected_share * 100)::numeric, 1) AS expected_pct,
       round(p.used / nullif(p.budget_tce::numeric * p.expected_share::numeric, 0), 2) AS pace,
       round(p.used / nullif(p.expected_share::numeric, 0), 1) AS forecast_tce,
       round(p.used * 100 / nullif(p.expected_share::numeric * p.budget_tce::numeric, 0), 1)
           AS forecast_pct,
       f.alerts
FROM paced p LEFT JOIN firing f ON f.enterprise_code = p.enterprise_code
ORDER BY forecast_pct DESC NULLS LAST, p.name
"""

ACTIVE_ALERTS: Final = f"""
WITH units AS ({CHOSEN_UNITS}),
regions AS ({CHOSEN_REGIONS})
SELECT a.started_at AS "time", a.severity, a.rule_id, a.subject,
       coalesce(n.name, g.name) AS who, a.region_code,
       a.latest->>'message' AS message, a.acknowledged_by
FROM alerts a
LEFT JOIN units n ON n.enterprise_code = a.enterprise_code
LEFT JOIN regions g ON a.enterprise_code IS NULL AND g.division = a.subject
WHERE a.status = 'firing' AND (n.enterprise_code IS NOT NULL OR g.division IS NOT NULL)
ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1
                        WHEN 'notice' THEN 2 ELSE 3 END,
         a.started_at DESC
LIMIT 200
"""


def build() -> Dashboard:
    return (
        dashboard(
            UID,
            "EnergyWatch · supervision overview 节能监察总览",
            "Warning levels of counties and cities, progress against the plans, energy budgets, "
            "top consumers and active alerts.",
        )
        .time("now/y", "now")
        .variables([*region_variables(), unit_variable()])
        .with_row(db.Row("Regions 区域"))
        .with_panel(
            stat.Panel()
            .title("Counties by warning level 预警等级")
            .datasource(TIMESCALEDB)
            .with_target(Sql(LEVEL_COUNTS))
            .height(6)
            .span(6)
        )
        .with_panel(
            table.Panel()
            .title("Warning levels and progress vs plan 预警与目标进度")
            .description(
                "Levels: the alert evaluator's active barometer alerts (none: green). Energy: "
                "the controlled total (tce) in the time range and the same range a year "
                "before; the plan's intensity cut and this year's cap; the units' budgets."
            )
            .datasource(TIMESCALEDB)
            .with_target(Sql(REGION_LEVELS))
            .mappings(level_mappings())
            .override_by_regexp("level|intensity_level|total_level", coloured_cells())
            .height(10)
            .span(18)
        )
        .with_panel(
            timeseries.Panel()
            .title("Energy by county 区县能耗 (tce)")
            .datasource(TIMESCALEDB)
            .with_target(Sql(COUNTY_ENERGY, format_val="time_series"))
            .unit("short")
            .height(8)
            .span(24)
        )
        .with_row(db.Row("Units 用能单位"))
        .with_panel(
            table.Panel()
            .title("Budget burn and year-end forecast 用能预算")
            .description(
                "This year's budget against use since New Year (CST), pace and projected "
                "year-end use on the calendar profile; firing budget alerts."
            )
            .datasource(TIMESCALEDB)
            .with_target(Sql(BUDGET_BURN))
            .height(10)
            .span(14)
        )
        .with_panel(
            table.Panel()
            .title("Top consumers 重点耗能 (tce)")
            .datasource(TIMESCALEDB)
            .with_target(Sql(TOP_CONSUMERS))
            .height(10)
            .span(10)
        )
        .with_panel(
            table.Panel()
            .title("Active alerts 当前告警")
            .datasource(TIMESCALEDB)
            .with_target(Sql(ACTIVE_ALERTS))
            .height(10)
            .span(24)
        )
        .build()
    )
