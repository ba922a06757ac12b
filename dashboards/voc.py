# ruff: noqa: S608 - panel SQL for Grafana, composed from constants: nothing here runs it
"""VOC monitors (VOCs在线监测): concentrations against each monitor's limits, hourly averages,
data flags and exceedance hours, from the stream's hourly and daily averages (only N-flagged
minutes count; an hour is valid with 45 of its 60 minutes).

Limits are the register's, per monitor and pollutant (``ref_voc_limits``); the hourly-average
limit judges hours, the single-reading limit (GB 37822) the highest valid minute of each hour.
"""

from typing import Final

from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.common import (
    CHOSEN_UNITS,
    TIMESCALEDB,
    Sql,
    chosen,
    dashboard,
    region_variables,
    sql_variable,
    unit_variable,
)

UID: Final = "ew-voc"

CHOSEN_LIMITS: Final = f"""units AS ({CHOSEN_UNITS}),
limits AS (
    SELECT v.* FROM ref_voc_limits v
    WHERE v.enterprise_code IN (SELECT enterprise_code FROM units)
      AND {chosen("monitor", "v.monitor_id")} AND {chosen("pollutant", "v.pollutant")}
)"""

#: hourly averages for ranges shorter than a day per point, daily averages beyond
HOURLY: Final = f"""
WITH {CHOSEN_LIMITS}
SELECT $__timeGroupAlias(h.period_start, $__interval), h.monitor_id || ' ' || h.pollutant AS metric,
       avg(h.avg) AS avg_mg_m3
FROM voc_hourly h JOIN limits l ON l.monitor_id = h.monitor_id AND l.pollutant = h.pollutant
WHERE $__interval_ms < 86400000 AND $__timeFilter(h.period_start) AND h.valid
GROUP BY 1, 2
UNION ALL
SELECT d.period_start, d.monitor_id || ' ' || d.pollutant, d.avg
FROM voc_daily d JOIN limits l ON l.monitor_id = d.monitor_id AND l.pollutant = d.pollutant
WHERE $__interval_ms >= 86400000 AND $__timeFilter(d.period_start) AND d.valid
UNION ALL
SELECT t.at, l.monitor_id || ' ' || l.pollutant || ' hourly limit', l.hourly_avg_mg_m3
FROM limits l CROSS JOIN (VALUES ($__timeFrom()::timestamptz), ($__timeTo()::timestamptz)) AS t (at)
ORDER BY 1, 2
"""

VERSUS_LIMITS: Final = f"""
WITH {CHOSEN_LIMITS}
SELECT l.monitor_id, l.pollutant, n.name AS unit, l.standard,
       count(h.*) FILTER (WHERE h.valid) AS valid_hours,
       count(h.*) FILTER (WHERE NOT h.valid) AS invalid_hours,
       round(max(h.avg)::numeric, 3) AS max_hourly_avg, l.hourly_avg_mg_m3,
       round(max(h.max) FILTER (WHERE h.valid)::numeric, 3) AS max_single, l.single_mg_m3,
       count(h.*) FILTER (WHERE h.avg > l.hourly_avg_mg_m3) AS exceedance_hours,
       count(h.*) FILTER (WHERE h.max > l.single_mg_m3) AS hours_over_single_limit
FROM limits l
JOIN units n ON n.enterprise_code = l.enterprise_code
LEFT JOIN voc_hourly h ON h.monitor_id = l.monitor_id AND h.pollutant = l.pollutant
 AND $__timeFilter(h.period_start)
GROUP BY l.monitor_id, l.pollutant, n.name, l.standard, l.hourly_avg_mg_m3, l.single_mg_m3
ORDER BY exceedance_hours DESC, l.monitor_id, l.pollutant
"""

FLAGS: Final = f"""
WITH {CHOSEN_LIMITS}
SELECT h.monitor_id, h.flag, count(*) AS hours,
       CASE h.flag WHEN 'N' THEN 'normal' WHEN 'F' THEN 'stopped' WHEN 'M' THEN 'maintenance'
                   WHEN 'S' THEN 'manual' WHEN 'D' THEN 'fault' WHEN 'C' THEN 'calibration'
                   WHEN 'T' THEN 'over range' WHEN 'B' THEN 'communication fault' END AS meaning
FROM voc_hourly h JOIN limits l ON l.monitor_id = h.monitor_id AND l.pollutant = h.pollutant
WHERE $__timeFilter(h.period_start)
GROUP BY h.monitor_id, h.flag
ORDER BY h.monitor_id, hours DESC
"""

EXCEEDANCE_HOURS: Final = f"""
WITH {CHOSEN_LIMITS}
SELECT date_trunc('day', h.period_start, 'Asia/Shanghai') AS "time",
       h.monitor_id || ' ' || h.pollutant AS metric,
       count(*) FILTER (WHERE h.avg > l.hourly_avg_mg_m3) AS exceedance_hours
FROM voc_hourly h JOIN limits l ON l.monitor_id = h.monitor_id AND l.pollutant = h.pollutant
WHERE $__timeFilter(h.period_start)
GROUP BY 1, 2
ORDER BY 1, 2
"""


def build() -> Dashboard:
    monitor = sql_variable(
        "monitor",
        "Monitor 监测点",
        "SELECT DISTINCT v.monitor_id FROM ref_voc_limits v JOIN ref_units u "
        "ON u.enterprise_code = v.enterprise_code "
        f"WHERE {chosen('city', 'u.city')} AND {chosen('county', 'u.county')} "
        f"AND {chosen('industry', 'u.industry')} AND {chosen('unit', 'u.enterprise_code')}",
    )
    pollutant = sql_variable(
        "pollutant", "Pollutant 污染物", "SELECT DISTINCT pollutant FROM ref_voc_limits"
    )
    return (
        dashboard(
            UID,
            "EnergyWatch · VOC monitors VOCs在线监测",
            "Concentrations against limits, hourly averages, data flags and exceedance hours.",
        )
        .time("now-7d", "now")
        .variables([*region_variables(), unit_variable(), monitor, pollutant])
        .with_panel(
            timeseries.Panel()
            .title("Hourly averages vs limit 小时均值 (mg/m³)")
            .datasource(TIMESCALEDB)
            .with_target(Sql(HOURLY, format_val="time_series"))
            .interval("1h")
            .unit("conmgm3")
            .height(9)
            .span(24)
        )
        .with_panel(
            table.Panel()
            .title("Concentrations vs limits 浓度与限值")
            .datasource(TIMESCALEDB)
            .with_target(Sql(VERSUS_LIMITS))
            .height(8)
            .span(14)
        )
        .with_panel(
            table.Panel()
            .title("Data flags 数据标记 (hours)")
            .datasource(TIMESCALEDB)
            .with_target(Sql(FLAGS))
            .height(8)
            .span(10)
        )
        .with_panel(
            timeseries.Panel()
            .title("Exceedance hours per day 超标小时数")
            .datasource(TIMESCALEDB)
            .with_target(Sql(EXCEEDANCE_HOURS, format_val="time_series"))
            .height(8)
            .span(24)
        )
        .build()
    )
