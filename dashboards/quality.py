# ruff: noqa: S608 - panel SQL for Grafana, composed from constants: nothing here runs it
"""Data quality (数据质量): completeness by unit and county, offline devices, stuck meters.

Completeness is ``storage/rollup_queries.py``'s: seconds the readings cover over the seconds
expected (meters × time judged), the rule at 90%. Over a time range, the meters expected are
the register's meters of the unit (or county) that reported within the 31 days before the
range ends, and time is judged up to the last whole quarter hour before now. Covered seconds
of every energy type are read as the rollups' ``'all'`` plus ``'water'`` (the same integers as
summing each type, from fewer rows).
"""

from typing import Final

from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.common import (
    ALL_AND_WATER,
    CHOSEN_UNITS,
    TIMESCALEDB,
    Sql,
    among,
    cover_rows,
    dashboard,
    region_variables,
    unit_variable,
)

UID: Final = "ew-quality"

#: the register's meters of the chosen units that reported in the 31 days before the range's
#: end (a daily rollup in that span: one key lookup per meter, which LIMIT 1 keeps the planner
#: from turning into a read of every meter's days)
EXPECTED_METERS: Final = f"""units AS ({CHOSEN_UNITS}),
judged AS (
    SELECT $__timeFrom()::timestamptz AS start_at,
           least($__timeTo()::timestamptz,
                 date_bin('15 minutes', now(), timestamptz '2000-01-01 00:00+00')) AS end_at
),
meters AS (
    SELECT m.meter_id, m.energy_type, n.enterprise_code, n.county
    FROM ref_meters m JOIN units n ON n.enterprise_code = m.enterprise_code
    CROSS JOIN LATERAL (
        SELECT 1 FROM energy_rollups x
        WHERE x.subject_kind = 'meter' AND x.subject = m.meter_id
          AND x.energy_type = m.energy_type AND x.window_size = '1d'
          AND x.period_start >= $__timeTo()::timestamptz - interval '31 days'
          AND x.period_start < $__timeTo()::timestamptz
        LIMIT 1
    ) reported
)"""


def _covered(kind: str, subjects: str) -> str:
    """Every energy type's coverage and flags per subject of ``kind`` (of ``subjects`` when
    the variables narrow them) over the judged time."""
    judged = "(SELECT end_at FROM judged)"
    rows = cover_rows(
        kind, "$__timeFrom()", judged, energy_types=ALL_AND_WATER, subjects=among(subjects)
    )
    return f"""SELECT r.subject, sum(r.covered_seconds) AS covered, sum(r.readings) AS readings,
           sum(r.flagged) AS flagged, sum(r.stuck) AS stuck, sum(r.jumps) AS jumps,
           sum(r.resets) AS resets
    FROM {rows}"""


BY_UNIT: Final = f"""
WITH {EXPECTED_METERS},
covered AS (
    {_covered("'unit'", "SELECT enterprise_code FROM units")}
    GROUP BY r.subject
),
expected AS (
    SELECT enterprise_code, count(*) AS meters FROM meters GROUP BY enterprise_code
)
SELECT n.name AS unit, n.enterprise_code, n.county, coalesce(e.meters, 0) AS meters,
       round(least(c.covered, e.meters * extract(epoch FROM j.end_at - j.start_at)) * 100
             / nullif(e.meters * extract(epoch FROM j.end_at - j.start_at), 0)::numeric, 2)
           AS completeness_pct,
       c.readings, c.flagged, c.stuck, c.jumps, c.resets
FROM units n CROSS JOIN judged j
LEFT JOIN expected e ON e.enterprise_code = n.enterprise_code
LEFT JOIN covered c ON c.subject = n.enterprise_code
ORDER BY completeness_pct ASC NULLS FIRST, n.name
"""

BY_COUNTY: Final = f"""
WITH {EXPECTED_METERS},
covered AS (
    {_covered("'county'", "SELECT DISTINCT county FROM units")}
    GROUP BY r.subject
),
expected AS (SELECT county, count(*) AS meters FROM meters GROUP BY county)
SELECT coalesce(k.name_zh, e.county) AS county, e.county AS division, e.meters,
       round(least(c.covered, e.meters * extract(epoch FROM j.end_at - j.start_at)) * 100
             / nullif(e.meters * extract(epoch FROM j.end_at - j.start_at), 0)::numeric, 2)
           AS completeness_pct,
       c.readings, c.flagged, c.stuck
FROM expected e CROSS JOIN judged j
LEFT JOIN covered c ON c.subject = e.county
LEFT JOIN ref_counties k ON k.county = e.county
ORDER BY completeness_pct ASC NULLS FIRST
"""

COUNTY_DAILY: Final = f"""
WITH {EXPECTED_METERS},
expected AS (SELECT county, count(*) AS meters FROM meters GROUP BY county)
SELECT r.period_start AS "time", coalesce(k.name_zh, r.subject) AS metric,
       least(sum(r.covered_seconds)
             / (e.meters * extract(epoch FROM least(r.period_end, (SELECT end_at FROM judged))
                                              - r.period_start)), 1) * 100 AS completeness_pct
FROM energy_rollups r
JOIN expected e ON e.county = r.subject
LEFT JOIN ref_counties k ON k.county = r.subject
WHERE r.subject_kind = 'county' AND r.window_size = '1d' AND r.energy_type IN ('all', 'water')
  AND $__timeFilter(r.period_start) AND r.period_start < (SELECT end_at FROM judged)
GROUP BY r.period_start, r.period_end, r.subject, k.name_zh, e.meters
ORDER BY 1, 2
"""

#: devices silent for over an hour at the range's end: each register meter's and VOC
#: monitor's latest data before then (within 31 days; one index probe each, materialized so
#: that the filter on it does not probe again), and any offline alert firing
OFFLINE: Final = f"""
WITH units AS ({CHOSEN_UNITS}),
devices AS MATERIALIZED (
    SELECT 'meter' AS kind, m.meter_id AS device, m.enterprise_code,
           (SELECT max(x.period_start + make_interval(secs => x.interval_seconds))
              FROM (SELECT r.period_start, r.interval_seconds FROM meter_readings r
                    WHERE r.meter_id = m.meter_id
                      AND r.period_start >= $__timeTo()::timestamptz - interval '31 days'
                      AND r.period_start < $__timeTo()
                    ORDER BY r.period_start DESC LIMIT 1) x) AS last_data
    FROM ref_meters m WHERE m.enterprise_code IN (SELECT enterprise_code FROM units)
    UNION ALL
    SELECT 'voc', v.monitor_id, min(v.enterprise_code),
           (SELECT h.period_start + interval '1 hour' FROM voc_hourly h
             WHERE h.monitor_id = v.monitor_id
               AND h.period_start >= $__timeTo()::timestamptz - interval '31 days'
               AND h.period_start < $__timeTo()
             ORDER BY h.period_start DESC LIMIT 1)
    FROM ref_voc_limits v WHERE v.enterprise_code IN (SELECT enterprise_code FROM units)
    GROUP BY v.monitor_id
)
SELECT d.kind, d.device, n.name AS unit, n.county, d.last_data,
       round(extract(epoch FROM $__timeTo()::timestamptz - d.last_data)::numeric / 3600, 1)
           AS silent_hours,
       (SELECT string_agg(a.rule_id, ', ') FROM alerts a
         WHERE a.status = 'firing' AND a.rule_id LIKE 'data-quality.%'
           AND a.subject = d.device) AS firing
FROM devices d JOIN units n ON n.enterprise_code = d.enterprise_code
WHERE d.last_data IS NULL OR d.last_data < $__timeTo()::timestamptz - interval '1 hour'
ORDER BY d.last_data ASC NULLS FIRST
"""

_STUCK_METERS: Final = "ARRAY(SELECT subject FROM stuck_meters)"
#: the meters with a stuck reading in the range, found from the few rollup rows that say so
#: (a partial index, migration 0009), then their days and months read by their keys
STUCK: Final = f"""
WITH units AS ({CHOSEN_UNITS}),
stuck_meters AS MATERIALIZED (
    SELECT DISTINCT r.subject, r.energy_type
    FROM {cover_rows("'meter'", "$__timeFrom()", "$__timeTo()", only_stuck=True)}
    WHERE r.window_size IN ('1d', '1mo')
),
totals AS (
    SELECT t.subject, t.energy_type, sum(r.stuck) AS stuck_readings, sum(r.readings) AS readings,
           max(r.period_start) FILTER (WHERE r.stuck > 0) AS last_stuck_day
    FROM {cover_rows("'meter'", "$__timeFrom()", "$__timeTo()", subjects=_STUCK_METERS)}
    JOIN stuck_meters t ON t.subject = r.subject AND t.energy_type = r.energy_type
    WHERE r.window_size IN ('1d', '1mo')
    GROUP BY t.subject, t.energy_type
)
SELECT m.meter_id, n.name AS unit, n.county, m.energy_type, t.stuck_readings, t.readings,
       round(t.stuck_readings * 100.0 / nullif(t.readings, 0), 1) AS stuck_pct,
       t.last_stuck_day
FROM totals t
JOIN ref_meters m ON m.meter_id = t.subject AND m.energy_type = t.energy_type
JOIN units n ON n.enterprise_code = m.enterprise_code
ORDER BY t.stuck_readings DESC
"""


def build() -> Dashboard:
    return (
        dashboard(
            UID,
            "EnergyWatch · data quality 数据质量",
            "Completeness by unit and county (the 90% rule), offline devices, stuck meters.",
        )
        .time("now-7d", "now")
        .variables([*region_variables(), unit_variable()])
        .with_panel(
            timeseries.Panel()
            .title("Completeness by county per day 区县数据完整率 (%)")
            .datasource(TIMESCALEDB)
            .with_target(Sql(COUNTY_DAILY, format_val="time_series"))
            .unit("percent")
            .min(0)
            .max(100)
            .height(8)
            .span(14)
        )
        .with_panel(
            table.Panel()
            .title("Completeness by county 区县")
            .datasource(TIMESCALEDB)
            .with_target(Sql(BY_COUNTY))
            .height(8)
            .span(10)
        )
        .with_panel(
            table.Panel()
            .title("Completeness by unit 用能单位数据完整率")
            .description("Lowest first; the rule asks for at least 90%.")
            .datasource(TIMESCALEDB)
            .with_target(Sql(BY_UNIT))
            .height(9)
            .span(24)
        )
        .with_panel(
            table.Panel()
            .title("Offline devices 离线设备")
            .description("Meters and VOC monitors with no data in the last hour of the range.")
            .datasource(TIMESCALEDB)
            .with_target(Sql(OFFLINE))
            .height(9)
            .span(12)
        )
        .with_panel(
            table.Panel()
            .title("Stuck meters 卡滞表计")
            .description("Whole days in the range; readings the stream flagged stuck.")
            .datasource(TIMESCALEDB)
            .with_target(Sql(STUCK))
            .height(9)
            .span(12)
        )
        .build()
    )
