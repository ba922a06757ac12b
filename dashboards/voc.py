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

#: hourly averages while points are less than a day apart and the range is at most seven days
#: (up to 168 points a series; 200 series of a month of hours would be 144,000 points), the
#: days' valid averages up to 90 days, and beyond, each China-local month's mean of its valid
#: hours (migration 0010's voc_monthly_hours: 12 rows a series for a year, not 365). Hours at
#: the range's ragged ends come from voc_hourly, those of whole China-local days from
#: voc_daily_hours (migration 0009), which keeps each day's valid hours in time order
_HOURS_APART: Final = (
    "$__interval_ms < 86400000 "
    "AND $__timeTo()::timestamptz - $__timeFrom()::timestamptz <= interval '7 days'"
)
_MONTHS_APART: Final = "$__timeTo()::timestamptz - $__timeFrom()::timestamptz > interval '90 days'"
HOURLY: Final = f"""
WITH {CHOSEN_LIMITS}
SELECT $__timeGroupAlias(h.at, $__interval), l.monitor_id || ' ' || l.pollutant AS metric,
       avg(h.avg) AS avg_mg_m3
FROM limits l
CROSS JOIN voc_cover($__timeFrom(), $__timeTo()) s
CROSS JOIN LATERAL (
    SELECT h.period_start AS at, h.avg
    FROM voc_hourly h
    WHERE s.source = 'hour' AND h.monitor_id = l.monitor_id AND h.pollutant = l.pollutant
      AND h.period_start >= s.span_start AND h.period_start < s.span_end AND h.valid
    UNION ALL
    SELECT d.period_start + make_interval(mins => v.minutes), v.avg
    FROM voc_daily_hours d
    CROSS JOIN LATERAL unnest(d.valid_offsets, d.valid_avgs) AS v (minutes, avg)
    WHERE s.source = 'day' AND d.monitor_id = l.monitor_id AND d.pollutant = l.pollutant
      AND d.period_start >= s.span_start AND d.period_start < s.span_end
) h
WHERE {_HOURS_APART}
GROUP BY 1, 2
UNION ALL
SELECT d.period_start, d.monitor_id || ' ' || d.pollutant, d.avg
FROM voc_daily d JOIN limits l ON l.monitor_id = d.monitor_id AND l.pollutant = d.pollutant
WHERE NOT ({_HOURS_APART}) AND NOT ({_MONTHS_APART}) AND $__timeFilter(d.period_start)
  AND d.valid
UNION ALL
SELECT m.period_start, m.monitor_id || ' ' || m.pollutant, m.valid_sum / m.hours_n
FROM voc_monthly_hours m
JOIN limits l ON l.monitor_id = m.monitor_id AND l.pollutant = m.pollutant
WHERE {_MONTHS_APART} AND m.hours_n > 0
  AND m.period_start >= date_trunc('month', $__timeFrom()::timestamptz, 'Asia/Shanghai')
  AND m.period_start <= $__timeTo()
UNION ALL
SELECT t.at, l.monitor_id || ' ' || l.pollutant || ' hourly limit', l.hourly_avg_mg_m3
FROM limits l CROSS JOIN (VALUES ($__timeFrom()::timestamptz), ($__timeTo()::timestamptz)) AS t (at)
ORDER BY 1, 2
"""

#: per (limit, span of voc_cover): the range's ragged ends from voc_hourly, its whole
#: China-local days from voc_daily_hours (migration 0009), its whole months from
#: voc_monthly_hours (0010). One aggregate row per branch, so a span another branch serves
#: adds a row of zeros and NULLs
_HOURS_COUNTED = """
    SELECT count(*) FILTER (WHERE h.valid) AS valid_hours,
           count(*) FILTER (WHERE NOT h.valid) AS invalid_hours,
           max(h.avg) AS max_avg, max(h.max) FILTER (WHERE h.valid) AS max_single,
           count(*) FILTER (WHERE h.avg > l.hourly_avg_mg_m3) AS exceedance_hours,
           count(*) FILTER (WHERE h.max > l.single_mg_m3) AS over_single
    FROM voc_hourly h
    WHERE s.source = 'hour' AND h.monitor_id = l.monitor_id AND h.pollutant = l.pollutant
      AND h.period_start >= s.span_start AND h.period_start < s.span_end"""


def _summary_rows(table: str, source: str) -> str:
    """A span's rows of a summary table with sorted arrays (voc_daily_hours, migration 0009;
    voc_monthly_hours, 0010), the branch of ``source`` spans: columns ``d.``."""
    return (
        f"FROM {table} d WHERE s.source = '{source}' AND d.monitor_id = l.monitor_id "
        "AND d.pollutant = l.pollutant "
        "AND d.period_start >= s.span_start AND d.period_start < s.span_end"
    )


def _summary_counted(max_avg: str) -> str:
    """What ``_HOURS_COUNTED`` counts, from a summary table's rows (``max_avg``: the highest
    hourly average of a row, which voc_monthly_hours keeps beside its array)."""
    return f"""
    SELECT coalesce(sum(d.hours_n), 0), coalesce(sum(d.hours - d.hours_n), 0),
           max({max_avg}), max(d.max_valid_max),
           coalesce(sum(cardinality(d.avgs) - width_bucket(l.hourly_avg_mg_m3, d.avgs)), 0),
           coalesce(sum(cardinality(d.maxes) - width_bucket(l.single_mg_m3, d.maxes)), 0)
    """


_COUNTED: Final = f"""{_HOURS_COUNTED}
    UNION ALL{_summary_counted("d.avgs[cardinality(d.avgs)]")}{
    _summary_rows("voc_daily_hours", "day")
}
    UNION ALL{_summary_counted("d.max_avg")}{_summary_rows("voc_monthly_hours", "month")}"""

VERSUS_LIMITS: Final = f"""
WITH {CHOSEN_LIMITS}
SELECT l.monitor_id, l.pollutant, n.name AS unit, l.standard,
       sum(a.valid_hours)::bigint AS valid_hours, sum(a.invalid_hours)::bigint AS invalid_hours,
       round(max(a.max_avg)::numeric, 3) AS max_hourly_avg, l.hourly_avg_mg_m3,
       round(max(a.max_single)::numeric, 3) AS max_single, l.single_mg_m3,
       sum(a.exceedance_hours)::bigint AS exceedance_hours,
       sum(a.over_single)::bigint AS hours_over_single_limit
FROM limits l
JOIN units n ON n.enterprise_code = l.enterprise_code
CROSS JOIN voc_cover($__timeFrom(), $__timeTo(), true) s
CROSS JOIN LATERAL ({_COUNTED}
) a
GROUP BY l.monitor_id, l.pollutant, n.name, l.standard, l.hourly_avg_mg_m3, l.single_mg_m3
ORDER BY exceedance_hours DESC, l.monitor_id, l.pollutant
"""

_FLAGS: Final = ("N", "F", "M", "S", "D", "C", "T", "B")
_FLAG_SUMS: Final = ", ".join(f"sum(a.hours_{f.lower()}) AS {f.lower()}" for f in _FLAGS)
_FLAG_HOURS: Final = ", ".join(f"count(*) FILTER (WHERE h.flag = '{f}')" for f in _FLAGS)
_FLAG_DAYS: Final = ", ".join(f"coalesce(sum(d.hours_{f.lower()}), 0)" for f in _FLAGS)
_FLAG_COLUMNS: Final = ", ".join(f"hours_{f.lower()}" for f in _FLAGS)
_FLAG_ROWS: Final = ", ".join(f"('{f}', c.{f.lower()})" for f in _FLAGS)
FLAGS: Final = f"""
WITH {CHOSEN_LIMITS},
counted AS (
    SELECT l.monitor_id, {_FLAG_SUMS}
    FROM limits l
    CROSS JOIN voc_cover($__timeFrom(), $__timeTo(), true) s
    CROSS JOIN LATERAL (
        SELECT {_FLAG_HOURS}
        FROM voc_hourly h
        WHERE s.source = 'hour' AND h.monitor_id = l.monitor_id AND h.pollutant = l.pollutant
          AND h.period_start >= s.span_start AND h.period_start < s.span_end
        UNION ALL
        SELECT {_FLAG_DAYS} {_summary_rows("voc_daily_hours", "day")}
        UNION ALL
        SELECT {_FLAG_DAYS} {_summary_rows("voc_monthly_hours", "month")}
    ) a ({_FLAG_COLUMNS})
    GROUP BY l.monitor_id
)
SELECT c.monitor_id, f.flag, f.hours::bigint AS hours,
       CASE f.flag WHEN 'N' THEN 'normal' WHEN 'F' THEN 'stopped' WHEN 'M' THEN 'maintenance'
                   WHEN 'S' THEN 'manual' WHEN 'D' THEN 'fault' WHEN 'C' THEN 'calibration'
                   WHEN 'T' THEN 'over range' WHEN 'B' THEN 'communication fault' END AS meaning
FROM counted c
CROSS JOIN LATERAL (VALUES {_FLAG_ROWS}) AS f (flag, hours)
WHERE f.hours > 0
ORDER BY c.monitor_id, hours DESC
"""

#: per China-local day, or per month for ranges beyond 90 days (a year of days is 365 bars a
#: series; its months come from voc_monthly_hours, with the ragged ends' days and hours)
EXCEEDANCE_HOURS: Final = f"""
WITH {CHOSEN_LIMITS},
per AS (SELECT {_MONTHS_APART} AS month)
SELECT CASE WHEN p.month THEN date_trunc('month', a.day, 'Asia/Shanghai') ELSE a.day END
           AS "time",
       l.monitor_id || ' ' || l.pollutant AS metric,
       sum(a.exceedance_hours)::bigint AS exceedance_hours
FROM limits l
CROSS JOIN per p
CROSS JOIN voc_cover($__timeFrom(), $__timeTo(), p.month) s
CROSS JOIN LATERAL (
    SELECT date_trunc('day', h.period_start, 'Asia/Shanghai') AS day,
           count(*) FILTER (WHERE h.avg > l.hourly_avg_mg_m3) AS exceedance_hours
    FROM voc_hourly h
    WHERE s.source = 'hour' AND h.monitor_id = l.monitor_id AND h.pollutant = l.pollutant
      AND h.period_start >= s.span_start AND h.period_start < s.span_end
    GROUP BY 1
    UNION ALL
    SELECT d.period_start, cardinality(d.avgs) - width_bucket(l.hourly_avg_mg_m3, d.avgs)
    {_summary_rows("voc_daily_hours", "day")}
    UNION ALL
    SELECT d.period_start, cardinality(d.avgs) - width_bucket(l.hourly_avg_mg_m3, d.avgs)
    {_summary_rows("voc_monthly_hours", "month")}
) a
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
            .description(
                "Hourly averages for ranges up to 7 days, daily averages up to 90 days, "
                "monthly means of the valid hours beyond."
            )
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
            .title("Exceedance hours per day 超标小时数 (per month beyond 90 days)")
            .datasource(TIMESCALEDB)
            .with_target(Sql(EXCEEDANCE_HOURS, format_val="time_series"))
            .height(8)
            .span(24)
        )
        .build()
    )
