# ruff: noqa: S608 - panel SQL for Grafana, composed from constants: nothing here runs it
"""Unit drill-down (用能单位详情): one key energy-using unit's energy by type, its products'
unit energy against their limits and benchmarks, its budget, its data quality and its alerts.

The unit is the ``unit`` variable's (single choice); with no unit chosen (All, as the panel
benchmark runs it) the first unit of the chosen region and industry, by credit code.
"""

from typing import Final

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.common import (
    CHOSEN_UNITS,
    TIMESCALEDB,
    Sql,
    cover_rows,
    dashboard,
    region_variables,
    unit_variable,
)

UID: Final = "ew-unit"

#: the end of the last whole quarter hour (UTC-aligned, so China-local too)
_JUDGED_TO: Final = "date_bin('15 minutes', now(), timestamptz '2000-01-01 00:00+00')"
PICKED: Final = f"picked AS ({CHOSEN_UNITS}\n    ORDER BY u.enterprise_code LIMIT 1)"

FACTS: Final = f"""
WITH {PICKED}
SELECT p.name, p.enterprise_code, coalesce(k.name_zh, p.county) AS county, p.industry,
       p.two_high, p.emergency_grade,
       (SELECT count(*) FROM ref_meters m WHERE m.enterprise_code = p.enterprise_code) AS meters,
       (SELECT b.budget_tce FROM ref_unit_budgets b
         WHERE b.enterprise_code = p.enterprise_code
           AND b.year = extract(year FROM $__timeTo()::timestamptz AT TIME ZONE 'Asia/Shanghai'))
           AS budget_tce
FROM picked p LEFT JOIN ref_counties k ON k.county = p.county
"""

ENERGY_BY_TYPE: Final = f"""
WITH {PICKED}
SELECT r.period_start AS "time", r.energy_type AS metric, r.tce
FROM energy_rollups r JOIN picked p ON r.subject = p.enterprise_code
WHERE r.subject_kind = 'unit' AND r.energy_type <> 'all'
  AND r.window_size = rollup_window($__timeFrom(), $__timeTo())
  AND $__timeFilter(r.period_start)
ORDER BY 1, 2
"""

_PICKED: Final = "ARRAY(SELECT enterprise_code FROM picked)"
PHYSICAL: Final = f"""
WITH {PICKED}
SELECT r.energy_type, min(r.physical_unit) AS physical_unit,
       round(sum(r.physical_quantity), 3) AS physical_quantity,
       round(sum(r.tce), 3) AS tce, round(sum(r.tce_counted), 3) AS tce_counted,
       round(sum(r.tce_equivalent), 3) AS tce_equivalent
FROM {cover_rows("'unit'", "$__timeFrom()", "$__timeTo()", subjects=_PICKED)}
WHERE r.energy_type <> 'all'
GROUP BY r.energy_type
ORDER BY tce DESC
"""

#: the product's daily unit energy beside its limit, baseline and benchmark lines
#: the view's products are counted per unit and day (a window function): a condition on the
#: unit reaches inside it and reads that unit's reports only, a join would count every unit's
PRODUCT_SERIES: Final = f"""
WITH {PICKED},
days AS (
    SELECT v.period_start, v.product_code,
           coalesce(v.kgce_per_t, v.gce_per_kwh) AS value
    FROM product_unit_energy v
    WHERE v.enterprise_code = (SELECT enterprise_code FROM picked)
      AND v.period = 'day' AND $__timeFilter(v.period_start) AND v.basis = 'single_product'
)
SELECT d.period_start AS "time", d.product_code AS metric, d.value FROM days d
UNION ALL
SELECT d.period_start, d.product_code || ' ' || l.level || ' (' || l.scope || ')', l.value
FROM days d
JOIN picked p ON true
JOIN ref_product_limits l ON l.enterprise_code = p.enterprise_code
 AND l.product_code = d.product_code AND l.value_unit IN ('kgce/t', 'kgce/MWh')
ORDER BY 1, 2
"""

PRODUCT_TABLE: Final = f"""
WITH {PICKED},
made AS (
    SELECT v.product_code, count(*) AS days,
           sum(v.unit_tce_counted) * 1000
               / nullif(sum(coalesce(v.output_t, v.output_mwh))::numeric, 0) AS value,
           max(coalesce(v.kgce_per_t, v.gce_per_kwh)) AS worst_day
    FROM product_unit_energy v
    WHERE v.enterprise_code = (SELECT enterprise_code FROM picked)
      AND v.period = 'day' AND v.basis = 'single_product' AND $__timeFilter(v.period_start)
    GROUP BY v.product_code
),
levels AS (
    SELECT l.product_code, min(l.value_unit) AS value_unit,
           min(l.value) FILTER (WHERE l.level = 'limit') AS limit_value,
           min(l.value) FILTER (WHERE l.level = 'baseline') AS baseline,
           min(l.value) FILTER (WHERE l.level = 'benchmark') AS benchmark
    FROM ref_product_limits l JOIN picked p ON l.enterprise_code = p.enterprise_code
    WHERE l.value_unit IN ('kgce/t', 'kgce/MWh')
    GROUP BY l.product_code
)
SELECT m.product_code AS product, m.days, round(m.value, 1) AS unit_energy,
       round(m.worst_day, 1) AS worst_day, l.value_unit, l.limit_value, l.baseline, l.benchmark,
       round(m.value * 100 / nullif(coalesce(l.limit_value, l.baseline), 0)::numeric, 1)
           AS of_limit_pct
FROM made m LEFT JOIN levels l ON l.product_code = m.product_code
ORDER BY m.product_code
"""

#: use since New Year (CST) day by day against the budget spread evenly over the year
BUDGET_PACE: Final = f"""
WITH {PICKED},
year AS (
    SELECT date_trunc('year', $__timeTo()::timestamptz, 'Asia/Shanghai') AS start_at,
           extract(year FROM $__timeTo()::timestamptz AT TIME ZONE 'Asia/Shanghai')::int AS year
)
SELECT r.period_end AS "time",
       sum(r.tce_counted) OVER (ORDER BY r.period_start) AS used_tce,
       b.budget_tce * extract(epoch FROM r.period_end - year.start_at)
           / extract(epoch FROM ((year.start_at AT TIME ZONE 'Asia/Shanghai' + interval '1 year')
                                 AT TIME ZONE 'Asia/Shanghai') - year.start_at) AS budget_pace_tce,
       b.budget_tce
FROM year
JOIN picked p ON true
JOIN energy_rollups r ON r.subject_kind = 'unit' AND r.subject = p.enterprise_code
 AND r.energy_type = 'all' AND r.window_size = '1d'
 AND r.period_start >= year.start_at AND r.period_start < $__timeTo()
LEFT JOIN ref_unit_budgets b ON b.enterprise_code = p.enterprise_code AND b.year = year.year
ORDER BY 1
"""

#: rollup_queries.quality's definition per China-local day: covered seconds of every energy
#: type over (meters expected × seconds judged), the day in progress judged to its last whole
#: quarter hour. A meter is expected when it reported in the 31 days before the day's end; here
#: "reported" is read from the register's meters' daily rollups (the ledger also holds readings
#: too late to aggregate, which rollups do not count), read once for the whole range
DATA_QUALITY: Final = f"""
WITH {PICKED},
reports AS MATERIALIZED (
    SELECT m.meter_id, x.period_start AS day
    FROM ref_meters m JOIN picked p ON m.enterprise_code = p.enterprise_code
    CROSS JOIN LATERAL (
        SELECT x.period_start FROM energy_rollups x
        WHERE x.subject_kind = 'meter' AND x.subject = m.meter_id
          AND x.energy_type = m.energy_type AND x.window_size = '1d'
          AND x.period_start >= $__timeFrom()::timestamptz - interval '31 days'
          AND x.period_start < $__timeTo()::timestamptz + interval '1 day'
        OFFSET 0
    ) x
),
days AS (
    SELECT r.period_start AS day, sum(r.covered_seconds) AS covered, sum(r.readings) AS readings,
           sum(r.flagged) AS flagged, sum(r.stuck) AS stuck, sum(r.jumps) AS jumps,
           sum(r.resets) AS resets, sum(r.corrections) AS corrections
    FROM energy_rollups r JOIN picked p ON r.subject = p.enterprise_code
    WHERE r.subject_kind = 'unit' AND r.window_size = '1d' AND r.energy_type <> 'all'
      AND $__timeFilter(r.period_start)
    GROUP BY r.period_start
),
expected AS (
    -- a report on day x makes its meter expected on days x .. x + 31 (days are 24 h in CST)
    SELECT x.day + k * interval '24 hours' AS day, count(DISTINCT x.meter_id) AS meters
    FROM reports x CROSS JOIN generate_series(0, 31) AS k
    GROUP BY 1
),
judged AS MATERIALIZED (
    SELECT d.*, coalesce(e.meters, 0) AS meters,
           extract(epoch FROM least(d.day + interval '1 day', {_JUDGED_TO}) - d.day) AS seconds
    FROM days d LEFT JOIN expected e ON e.day = d.day
)
SELECT j.day AS "time", j.meters,
       round(least(j.covered, j.meters * j.seconds) * 100
             / nullif(j.meters * j.seconds, 0)::numeric, 2) AS completeness_pct,
       least(j.covered, j.meters * j.seconds) >= 0.9 * j.meters * j.seconds AS meets_rule,
       j.readings, j.flagged, j.stuck, j.jumps, j.resets, j.corrections
FROM judged j
ORDER BY 1 DESC
"""

ALERT_HISTORY: Final = f"""
WITH {PICKED}
SELECT h.emitted_at AS "time", h.at AS data_time, h.kind, h.rule_id, h.severity, h.subject,
       h.payload->>'message' AS message
FROM alert_history h JOIN picked p ON h.enterprise_code = p.enterprise_code
WHERE $__timeFilter(h.at)
ORDER BY h.at DESC, h.emitted_at DESC
LIMIT 500
"""


def build() -> Dashboard:
    return (
        dashboard(
            UID,
            "EnergyWatch · unit drill-down 用能单位详情",
            "One unit: energy by type in tce and physical units, product energy against limits "
            "and benchmarks, budget pace and forecast, data quality and alert history.",
        )
        .time("now-30d", "now")
        .variables([*region_variables(), unit_variable(multi=False)])
        .with_panel(
            table.Panel()
            .title("Unit 单位")
            .datasource(TIMESCALEDB)
            .with_target(Sql(FACTS))
            .height(4)
            .span(24)
        )
        .with_row(db.Row("Energy 能耗"))
        .with_panel(
            timeseries.Panel()
            .title("Energy by type 分品种能耗 (tce)")
            .datasource(TIMESCALEDB)
            .with_target(Sql(ENERGY_BY_TYPE, format_val="time_series"))
            .height(8)
            .span(14)
        )
        .with_panel(
            table.Panel()
            .title("Energy by type in physical units 实物量")
            .datasource(TIMESCALEDB)
            .with_target(Sql(PHYSICAL))
            .height(8)
            .span(10)
        )
        .with_panel(
            timeseries.Panel()
            .title("Product unit energy vs limits 单位产品能耗")
            .datasource(TIMESCALEDB)
            .with_target(Sql(PRODUCT_SERIES, format_val="time_series"))
            .height(8)
            .span(14)
        )
        .with_panel(
            table.Panel()
            .title("Products against limit, baseline and benchmark 限额与标杆")
            .datasource(TIMESCALEDB)
            .with_target(Sql(PRODUCT_TABLE))
            .height(8)
            .span(10)
        )
        .with_panel(
            timeseries.Panel()
            .title("Budget pace 预算进度 (tce since New Year)")
            .datasource(TIMESCALEDB)
            .with_target(Sql(BUDGET_PACE, format_val="time_series"))
            .height(8)
            .span(24)
        )
        .with_row(db.Row("Data quality and alerts 数据质量与告警"))
        .with_panel(
            table.Panel()
            .title("Data quality by day 每日数据质量")
            .description("Completeness as the 90% rule judges it (storage/rollup_queries.py).")
            .datasource(TIMESCALEDB)
            .with_target(Sql(DATA_QUALITY))
            .height(9)
            .span(12)
        )
        .with_panel(
            table.Panel()
            .title("Alert history 告警历史")
            .datasource(TIMESCALEDB)
            .with_target(Sql(ALERT_HISTORY))
            .height(9)
            .span(12)
        )
        .build()
    )
