"""Writes a planned year of data (``benchmarks.year_of_data``) into a database, set-based.

Tens of millions of rows cannot go through Python one by one: the plan's small tables (meters,
units, monitors, gaps, outages, episodes) are COPYed into a ``bench`` schema and every big
table is filled with ``INSERT ... SELECT`` over ``generate_series``, one China-local month at
a time, in the order the real pipeline derives them:

1. ``meter_readings`` at each meter's interval: the meter's mean x season x working hours /
   night level x weekend x planned outage x noise; device gaps left out, the reading after a
   gap flagged ``gap``, ``stuck`` readings at one meter in 50, a few ``implausible_jump``
   flags and lost readings;
2. ``energy_rollups`` summed from those readings exactly as the worker sums them
   (``storage/rollups.py``): unit, county, city and industry per energy type and ``all`` (water
   left out) at 15m, 1h, 1d and 1mo, meters at 1d and 1mo; days and months cut at CST;
3. VOC: hourly samples and ``voc_hourly`` for every hour, ``voc_daily`` from the hours (>= 18
   valid), ``voc_daily_hours`` (what the stream's trigger keeps) summed from the hours, minute
   samples for the last ``voc_minute_days``; exceedance episodes raise NMHC;
4. production reports: each product's daily and monthly output from the unit's energy, the
   monthly energy totals, output value and value added;
5. alerts and their history (``plan_alerts``), the stream's progress row (so rollups of the
   past read as final), the reference tables when ``storage/reference_data.py`` exists.

The session runs in China Standard Time so ``date_trunc`` cuts days and months as the worker
does. SQL strings here are built from constants of this module only.
"""

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from benchmarks.year_of_data import VOC_CODES, Chunk, DatasetPlan, plan_alerts
from contracts.alert_events import AlertEvent, AlertKind
from contracts.readings import EnergyType
from plans.coal_factors import CoalFactors
from simulators.voc import AROMATICS, FLOW, HUMIDITY, NMHC, PRESSURE, TEMPERATURE

#: how the generated data is laid out and shaped where that matters to query times (stated in
#: the results of a fill)
FILL_NOTES = {
    "rollups": "inserted in window-start order, as the worker inserts a window's rows",
    "indexes": "built once after the fill (compact, unlike indexes kept up by the stream)",
    "stuck_readings": "at one meter in 50 (by id), 2% of its readings",
    "voc_hours": "on the hour; voc_daily_hours summed per month (its trigger deferred)",
}

Step = Callable[[str], None]
Conn = psycopg.Connection[TupleRow]

_SCHEMA = """
DROP SCHEMA IF EXISTS bench CASCADE;
CREATE SCHEMA bench;
CREATE TABLE bench.dataset (units int, days int, start_at timestamptz, end_at timestamptz,
    voc_minute_days int, quarter_hour_days int, seed int, started_at timestamptz DEFAULT now(),
    finished_at timestamptz, seconds double precision, rows jsonb, sizes jsonb);
CREATE TABLE bench.units (code text PRIMARY KEY, county text, city text, industry text,
    annual_tce double precision, output_value_cny_per_tce double precision);
CREATE TABLE bench.products (code text, product text, unit text, kgce double precision,
    share double precision);
CREATE TABLE bench.meters (meter_id text PRIMARY KEY, code text, energy_type text,
    physical_unit text, interval_seconds int, mean double precision, counter boolean,
    work_start int, work_end int, night_level double precision,
    weekend_factor double precision, seasonal double precision[], in_all boolean);
CREATE TABLE bench.monitors (monitor_id text, code text, pollutant text, base double precision,
    analyser boolean, flow double precision, hourly_limit double precision);
CREATE TABLE bench.spans (kind text, key text, start_at timestamptz, end_at timestamptz,
    level double precision);
"""

# the chunk's instants at the fleet's interval, with what the shape factors need
_TIMES = """
CREATE TEMP TABLE chunk_times ON COMMIT DROP AS
SELECT ts, extract(hour FROM ts)::int AS hour, extract(isodow FROM ts)::int >= 6 AS weekend,
       extract(month FROM ts)::int AS month
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - %(step)s::interval,
                     %(step)s::interval) AS ts
"""
# every (key, instant) inside a span of one kind, for equality joins
_SPAN_TIMES = """
CREATE TEMP TABLE chunk_{kind} ON COMMIT DROP AS
SELECT s.key, t.ts, max(s.level) AS level
FROM bench.spans s JOIN chunk_times t ON t.ts >= s.start_at AND t.ts < s.end_at
WHERE s.kind = '{kind}' GROUP BY s.key, t.ts;
CREATE TEMP TABLE chunk_{kind}_ends ON COMMIT DROP AS
SELECT DISTINCT key, end_at AS ts FROM bench.spans
WHERE kind = '{kind}' AND end_at >= %(start)s AND end_at < %(end)s;
ANALYZE chunk_{kind};
ANALYZE chunk_{kind}_ends
"""
_FACTORS = """
CREATE TEMP TABLE chunk_factors (energy_type text, kgce double precision,
    kgce_equivalent double precision) ON COMMIT DROP
"""
_READINGS = """
INSERT INTO meter_readings (meter_id, period_start, enterprise_code, energy_type,
    interval_seconds, physical_quantity, physical_counter, physical_unit, source, consumption,
    tce, tce_equivalent, counted, exclusion, quality_flags, aggregated, revision, ingested_at)
SELECT m.meter_id, t.ts, m.code, m.energy_type, m.interval_seconds, v.q,
       CASE WHEN m.counter THEN round((m.mean * extract(epoch FROM t.ts) / m.interval_seconds
                                       + v.q)::numeric, 1)::float8 END,
       m.physical_unit, 'simulator', v.q,
       round((v.q * f.kgce / 1000)::numeric, 9)::float8,
       round((v.q * coalesce(f.kgce_equivalent, f.kgce) / 1000)::numeric, 9)::float8,
       true, NULL,
       CASE WHEN ge.key IS NOT NULL THEN '{gap}'::text[]
            WHEN st.stuck THEN '{stuck}'::text[]
            WHEN v.r < 0.0004 THEN '{implausible_jump}'::text[]
            ELSE '{}'::text[] END,
       true, 0, t.ts + make_interval(secs => m.interval_seconds + 60 + v.r * 240)
FROM bench.meters m
CROSS JOIN chunk_times t
LEFT JOIN chunk_factors f ON f.energy_type = m.energy_type
LEFT JOIN chunk_outage o ON o.key = m.code AND o.ts = t.ts
LEFT JOIN chunk_gap g ON g.key = m.meter_id AND g.ts = t.ts
LEFT JOIN chunk_gap_ends ge ON ge.key = m.meter_id AND ge.ts = t.ts
-- correlated with the row, so it is drawn per reading (an uncorrelated one is drawn once)
CROSS JOIN LATERAL (SELECT random() + 0 * m.interval_seconds + 0 * t.hour AS r) AS rnd
-- a stuck meter is a device's fault: one meter in 50 (by its id) repeats itself now and then
CROSS JOIN LATERAL (
    SELECT rnd.r < 0.02 AND abs(hashtext(m.meter_id)) % 50 = 0 AS stuck
) AS st
CROSS JOIN LATERAL (
    SELECT rnd.r,
           round((m.mean * m.seasonal[t.month]
                  * CASE WHEN t.hour >= m.work_start AND t.hour < m.work_end THEN 1
                         ELSE m.night_level END
                  * CASE WHEN t.weekend THEN m.weekend_factor ELSE 1 END
                  * coalesce(o.level, 1)
                  * CASE WHEN st.stuck THEN 0 ELSE 0.9 + 0.2 * random() END)::numeric,
                 3)::float8 AS q
) AS v
WHERE g.key IS NULL AND rnd.r < 0.998
ORDER BY m.meter_id, t.ts
"""
# the chunk's readings summed per meter and window: what the worker's contributions add up to
_BASE_15M = """
CREATE TEMP TABLE base_15m ON COMMIT DROP AS
SELECT r.meter_id, r.enterprise_code AS code, r.energy_type, r.physical_unit,
       r.energy_type <> 'water' AS in_all, r.period_start AS start_at,
       sum(r.consumption::numeric) AS physical, sum(coalesce(r.tce::numeric, 0)) AS tce,
       sum(CASE WHEN r.counted THEN coalesce(r.tce::numeric, 0) ELSE 0 END) AS tce_counted,
       sum(coalesce(r.tce_equivalent::numeric, 0)) AS tce_equivalent,
       count(*) AS readings, sum(r.interval_seconds) AS covered_seconds,
       count(*) FILTER (WHERE r.quality_flags <> '{}') AS flagged,
       count(*) FILTER (WHERE 'stuck' = ANY(r.quality_flags)) AS stuck,
       count(*) FILTER (WHERE 'implausible_jump' = ANY(r.quality_flags)) AS jumps,
       count(*) FILTER (WHERE r.quality_flags && '{reset,rollover}') AS resets,
       count(*) FILTER (WHERE 'off_period_start' = ANY(r.quality_flags)) AS off_period_start
FROM meter_readings r
WHERE r.period_start >= %(start)s AND r.period_start < %(end)s AND r.aggregated
GROUP BY 1, 2, 3, 4, 5, 6;
ANALYZE base_15m
"""
_SUMS = (
    "sum(physical) AS physical, sum(tce) AS tce, sum(tce_counted) AS tce_counted, "
    "sum(tce_equivalent) AS tce_equivalent, sum(readings) AS readings, "
    "sum(covered_seconds) AS covered_seconds, sum(flagged) AS flagged, sum(stuck) AS stuck, "
    "sum(jumps) AS jumps, sum(resets) AS resets, sum(off_period_start) AS off_period_start"
)
_COARSER = """
CREATE TEMP TABLE base_{size} ON COMMIT DROP AS
SELECT meter_id, code, energy_type, physical_unit, in_all,
       date_trunc('{trunc}', start_at) AS start_at, {sums}
FROM base_{finer} GROUP BY 1, 2, 3, 4, 5, 6;
ANALYZE base_{size}
"""
_STEPS = {"15m": "15 minutes", "1h": "1 hour", "1d": "1 day", "1mo": "1 month"}
_ROLLUP = """
INSERT INTO energy_rollups (subject_kind, subject, energy_type, window_size, period_start,
    period_end, physical_quantity, physical_unit, tce, tce_counted, tce_equivalent, readings,
    covered_seconds, flagged, stuck, jumps, resets, off_period_start, corrections, updated_at)
SELECT '{kind}', {subject}, {energy}, '{size}', b.start_at, b.start_at + interval '{step}',
       {physical}, {unit}, sum(b.tce), sum(b.tce_counted), sum(b.tce_equivalent),
       sum(b.readings), sum(b.covered_seconds), sum(b.flagged), sum(b.stuck), sum(b.jumps),
       sum(b.resets), sum(b.off_period_start), 0, max(b.start_at) + interval '{step}'
FROM base_{size} b JOIN bench.units u ON u.code = b.code
{where}
GROUP BY {group}
"""
# a meter, or a unit's energy type (one meter each in the fleet): one base row per window
_ROLLUP_DIRECT = """
INSERT INTO energy_rollups (subject_kind, subject, energy_type, window_size, period_start,
    period_end, physical_quantity, physical_unit, tce, tce_counted, tce_equivalent, readings,
    covered_seconds, flagged, stuck, jumps, resets, off_period_start, corrections, updated_at)
SELECT '{kind}', {subject}, b.energy_type, '{size}', b.start_at, b.start_at + interval '{step}',
       b.physical, b.physical_unit, b.tce, b.tce_counted, b.tce_equivalent, b.readings,
       b.covered_seconds, b.flagged, b.stuck, b.jumps, b.resets, b.off_period_start, 0,
       b.start_at + interval '{step}'
FROM base_{size} b
{where}
"""
_SUBJECTS = {"meter": "b.meter_id", "unit": "b.code", "county": "u.county", "city": "u.city"}

_VOC_HOURS = """
CREATE TEMP TABLE chunk_voc ON COMMIT DROP AS
WITH hours AS (
    -- on the hour, as the stream's hours are (the dataset may start at a quarter past)
    SELECT ts FROM generate_series(
        date_trunc('hour', %(start)s::timestamptz + interval '45 minutes'),
        %(end)s::timestamptz - interval '1 hour', interval '1 hour') AS ts
), cells AS (
    SELECT m.monitor_id, m.code, m.pollutant, m.analyser, m.flow, h.ts,
           extract(hour FROM h.ts)::int AS hour, extract(month FROM h.ts)::int AS month,
           m.hourly_limit, coalesce(e.level, 1) AS episode, random() AS r,
           CASE WHEN m.pollutant = '{flow}' THEN m.flow ELSE m.base END AS base
    FROM bench.monitors m CROSS JOIN hours h
    LEFT JOIN chunk_episode e ON e.key = m.monitor_id AND e.ts = h.ts
), hourly AS (
    SELECT c.*,
           CASE WHEN c.r < 0.004 THEN 'D' WHEN c.r < 0.006 THEN 'M' ELSE 'N' END AS flag,
           CASE
               WHEN c.episode > 1 AND c.pollutant = '{nmhc}'
                   THEN c.hourly_limit * c.episode * (0.95 + 0.1 * random())
               WHEN c.analyser THEN c.base
                   * CASE WHEN c.hour BETWEEN 8 AND 20 THEN 1.0 ELSE 0.7 END
                   * CASE WHEN c.episode > 1 AND c.pollutant IN ({aromatics}) THEN 2 ELSE 1 END
                   * (0.8 + 0.4 * random())
               WHEN c.pollutant = '{flow}' THEN c.base * (0.9 + 0.2 * random())
               WHEN c.pollutant = '{temperature}'
                   THEN 5 + 25 * (1 - abs(c.month - 7) / 6.0) + 3 * random()
               WHEN c.pollutant = '{pressure}' THEN 101.0 + 0.6 * random()
               WHEN c.pollutant = '{humidity}' THEN 55 + 20 * random()
               ELSE 19.4 + 0.6 * random()
           END AS value
    FROM cells c
)
SELECT monitor_id, code, pollutant, analyser, flow, ts, hour, flag,
       round(value::numeric, 3)::float8 AS avg,
       round((value * 0.8)::numeric, 3)::float8 AS min,
       round((value * 1.25)::numeric, 3)::float8 AS max,
       CASE WHEN pollutant = '{flow}' THEN round((value * 3600)::numeric, 2)::float8 END AS cou,
       CASE flag WHEN 'N' THEN CASE WHEN hour = 3 THEN 48 ELSE 60 END ELSE 20 END AS valid_count,
       60 AS total_count
FROM hourly
"""
_VOC_HOURLY_SAMPLES = """
INSERT INTO voc_samples (monitor_id, interval_seconds, data_time, pollutant, enterprise_code,
    avg, min, max, cou, flag, source, ingested_at, updated_at)
SELECT monitor_id, 3600, ts, pollutant, code, avg, min, max, cou, flag, 'hj212',
       ts + interval '62 minutes', ts + interval '62 minutes'
FROM chunk_voc ORDER BY monitor_id, ts, pollutant
"""
_VOC_HOURLY = """
INSERT INTO voc_hourly (monitor_id, period_start, pollutant, enterprise_code, avg, min, max,
    cou, valid_count, total_count, valid, flag, emission_mass_kg, updated_at)
SELECT monitor_id, ts, pollutant, code,
       CASE WHEN flag = 'N' THEN avg END, CASE WHEN flag = 'N' THEN min END,
       CASE WHEN flag = 'N' THEN max END, CASE WHEN flag = 'N' THEN cou END,
       valid_count, total_count, flag = 'N', flag,
       CASE WHEN flag = 'N' AND analyser THEN avg * flow * 3600 / 1e6 END,
       ts + interval '62 minutes'
FROM chunk_voc ORDER BY monitor_id, ts, pollutant
"""
_VOC_DAILY = """
INSERT INTO voc_daily (monitor_id, period_start, pollutant, enterprise_code, avg, min, max, cou,
    valid_count, total_count, valid, flag, emission_mass_kg, updated_at)
SELECT monitor_id, day, pollutant, min(enterprise_code),
       CASE WHEN count(*) FILTER (WHERE valid) >= 18 THEN avg(avg) END,
       CASE WHEN count(*) FILTER (WHERE valid) >= 18 THEN min(min) END,
       CASE WHEN count(*) FILTER (WHERE valid) >= 18 THEN max(max) END,
       CASE WHEN count(*) FILTER (WHERE valid) >= 18 THEN sum(cou) END,
       count(*) FILTER (WHERE valid), count(*), count(*) FILTER (WHERE valid) >= 18,
       CASE WHEN count(*) FILTER (WHERE valid) >= 18 THEN 'N'
            ELSE coalesce(mode() WITHIN GROUP (ORDER BY flag) FILTER (WHERE NOT valid), 'D') END,
       CASE WHEN count(*) FILTER (WHERE valid) >= 18 THEN sum(emission_mass_kg) END,
       max(updated_at)
FROM (SELECT *, date_trunc('day', period_start) AS day FROM voc_hourly
      WHERE period_start >= %(start)s AND period_start < %(end)s) h
GROUP BY monitor_id, day, pollutant
ORDER BY monitor_id, day, pollutant
"""
_VOC_MINUTES = """
INSERT INTO voc_samples (monitor_id, interval_seconds, data_time, pollutant, enterprise_code,
    avg, min, max, cou, flag, source, ingested_at, updated_at)
SELECT v.monitor_id, 60, v.ts + make_interval(mins => n), v.pollutant, v.code,
       round((v.avg * x.f)::numeric, 3)::float8, round((v.avg * x.f * 0.95)::numeric, 3)::float8,
       round((v.avg * x.f * 1.05)::numeric, 3)::float8,
       CASE WHEN v.pollutant = '{flow}' THEN round((v.avg * x.f * 60)::numeric, 2)::float8 END,
       CASE WHEN v.hour = 3 AND n < 12 AND v.analyser THEN 'C' ELSE v.flag END, 'hj212',
       v.ts + make_interval(mins => n + 2), v.ts + make_interval(mins => n + 2)
FROM chunk_voc v CROSS JOIN generate_series(0, 59) AS n
CROSS JOIN LATERAL (SELECT 0.85 + 0.3 * random() + 0 * n AS f) x
WHERE v.ts >= %(from)s
ORDER BY v.monitor_id, v.ts, n, v.pollutant
"""
_PRODUCTION = """
INSERT INTO product_output_reports (enterprise_code, product_code, period, period_start,
    output_t, output_mwh, revision, received_at)
SELECT p.code, p.product, 'day', r.period_start,
       CASE WHEN p.unit = 't' THEN round((r.tce_counted * 1000 * p.share / p.kgce
                                         * (0.97 + 0.06 * random()))::numeric, 3)::float8 END,
       CASE WHEN p.unit = 'MWh' THEN round((r.tce_counted * 1000 * p.share / p.kgce
                                           * (0.97 + 0.06 * random()))::numeric, 3)::float8 END,
       0, r.period_end + interval '1 hour'
FROM bench.products p
JOIN energy_rollups r ON r.subject_kind = 'unit' AND r.subject = p.code AND r.energy_type = 'all'
 AND r.window_size = '1d' AND r.period_start >= %(start)s AND r.period_start < %(end)s;
INSERT INTO product_output_reports (enterprise_code, product_code, period, period_start,
    output_t, output_mwh, revision, received_at)
SELECT enterprise_code, product_code, 'month', date_trunc('month', period_start),
       sum(output_t), sum(output_mwh), 0, max(received_at)
FROM product_output_reports
WHERE period = 'day' AND period_start >= %(start)s AND period_start < %(end)s
GROUP BY 1, 2, 4;
INSERT INTO energy_total_reports (enterprise_code, energy_type, period, period_start, quantity,
    physical_unit, revision, received_at)
SELECT subject, energy_type, 'month', period_start,
       round((physical_quantity * (0.98 + 0.04 * random()::numeric)), 3)::float8,
       physical_unit, 0, period_end + interval '2 days'
FROM energy_rollups WHERE subject_kind = 'unit' AND window_size = '1mo' AND energy_type <> 'all'
 AND period_start >= %(start)s AND period_start < %(end)s;
INSERT INTO output_value_reports (enterprise_code, period, period_start, output_value_cny,
    revision, received_at)
SELECT u.code, 'month', r.period_start,
       round(r.tce_counted * u.output_value_cny_per_tce::numeric, 2),
       0, r.period_end + interval '3 days'
FROM bench.units u JOIN energy_rollups r ON r.subject_kind = 'unit' AND r.subject = u.code
 AND r.energy_type = 'all' AND r.window_size = '1mo'
 AND r.period_start >= %(start)s AND r.period_start < %(end)s
WHERE u.output_value_cny_per_tce > 0;
INSERT INTO value_added_reports (enterprise_code, period, period_start, value_added_cny,
    revision, received_at)
SELECT enterprise_code, 'month', period_start,
       round(output_value_cny * (0.2 + 0.1 * random()))::float8,
       0, received_at
FROM output_value_reports WHERE period_start >= %(start)s AND period_start < %(end)s
"""


def _voc_sql(template: str) -> str:
    return template.format(
        flow=FLOW,
        nmhc=NMHC,
        aromatics=", ".join(f"'{code}'" for code in AROMATICS),
        temperature=TEMPERATURE,
        pressure=PRESSURE,
        humidity=HUMIDITY,
    )


def _rollup_statements() -> list[tuple[str, str]]:
    """(label, INSERT) for every subject kind, energy type or 'all', and window the worker
    writes: meters only per day and month."""
    out = []
    for size in _STEPS:
        kinds = ["unit", "county", "city", "industry"] + (
            ["meter"] if size in ("1d", "1mo") else []
        )
        # 15-minute rollups only from --quarter-hour-days back (all by default)
        quarter = "b.start_at >= %(quarter_from)s" if size == "15m" else ""
        for kind in kinds:
            subject = _SUBJECTS.get(kind, "u.industry")
            for energy in ("type", "all") if kind != "meter" else ("type",):
                by_type = energy == "type"
                if by_type and kind in ("meter", "unit"):
                    direct = _ROLLUP_DIRECT.format(
                        kind=kind,
                        subject=_SUBJECTS[kind],
                        size=size,
                        step=_STEPS[size],
                        where=f"WHERE {quarter}" if quarter else "",
                    )
                    out.append((f"rollups {kind} {size}", direct))
                    continue
                out.append(
                    (
                        f"rollups {kind} {size}{'' if by_type else ' all'}",
                        _ROLLUP.format(
                            kind=kind,
                            subject=subject,
                            energy="b.energy_type" if by_type else "'all'",
                            size=size,
                            step=_STEPS[size],
                            physical="sum(b.physical)" if by_type else "NULL::numeric",
                            unit="min(b.physical_unit)" if by_type else "NULL::text",
                            where="WHERE "
                            + " AND ".join(c for c in (quarter, "" if by_type else "b.in_all") if c)
                            if quarter or not by_type
                            else "",
                            group=f"{subject}, b.energy_type, b.start_at"
                            if by_type
                            else f"{subject}, b.start_at",
                        ),
                    )
                )
    return out


def _rollups_in_time_order() -> str:
    """Every rollup statement's rows in one INSERT, ordered by window start: the worker
    inserts a window's rows of every subject when its first reading arrives, so rows of one
    window and time lie together on disk (and a time range's rows on few pages)."""
    selects = []
    for _, statement in _rollup_statements():
        insert, select = statement.split("\nSELECT ", 1)
        selects.append("SELECT " + select.strip())
    return (
        insert.strip()
        + "\nSELECT * FROM (\n"
        + "\nUNION ALL\n".join(f"({s})" for s in selects)
        # by position: period_start, subject_kind, window_size
        + "\n) AS u ORDER BY 5, 1, 4"
    )


def create_plan_tables(conn: Conn, plan: DatasetPlan) -> None:
    """The plan's small tables, in schema ``bench`` of the benchmark database."""
    spec = plan.spec
    pairs = {(m.enterprise_code, m.energy_type) for m in plan.meters}
    if len(pairs) != len(plan.meters):
        # the unit-per-energy-type rollups are copied from the meters' (_ROLLUP_DIRECT)
        raise ValueError("the fleet has units with two meters of one energy type")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_SCHEMA)
        cur.execute(
            "INSERT INTO bench.dataset (units, days, start_at, end_at, voc_minute_days, "
            "quarter_hour_days, seed) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                spec.units,
                spec.days,
                spec.start,
                spec.end,
                spec.voc_minute_days,
                spec.quarter_hour_days,
                spec.seed,
            ),
        )
        with cur.copy("COPY bench.units FROM STDIN") as copy:
            for u in plan.units:
                copy.write_row(
                    (u.code, u.county, u.city, u.industry, u.annual_tce, u.output_value_cny_per_tce)
                )
        with cur.copy("COPY bench.products FROM STDIN") as copy:
            for u in plan.units:
                for product, unit, kgce, share in u.products:
                    copy.write_row((u.code, product, unit, kgce, share))
        with cur.copy("COPY bench.meters FROM STDIN") as copy:
            for m in plan.meters:
                copy.write_row(
                    (
                        m.meter_id,
                        m.enterprise_code,
                        m.energy_type,
                        m.physical_unit,
                        m.interval_seconds,
                        m.mean_per_interval,
                        m.counter,
                        m.work_start,
                        m.work_end,
                        m.night_level,
                        m.weekend_factor,
                        list(m.seasonal),
                        m.energy_type != EnergyType.WATER.value,
                    )
                )
        with cur.copy("COPY bench.monitors FROM STDIN") as copy:
            for mon in plan.monitors:
                for code in VOC_CODES:
                    analyser = code in mon.baseline_mg_m3
                    base = mon.baseline_mg_m3.get(code, 0.0)
                    limit = mon.hourly_limit_mg_m3 if code == NMHC else None
                    copy.write_row(
                        (
                            mon.monitor_id,
                            mon.enterprise_code,
                            code,
                            base,
                            analyser,
                            mon.flow_m3_s,
                            limit,
                        )
                    )
        with cur.copy("COPY bench.spans FROM STDIN") as copy:
            for kind, spans in (
                ("outage", plan.unit_outages),
                ("gap", plan.meter_gaps),
                ("episode", plan.voc_episodes),
            ):
                for span in spans:
                    copy.write_row((kind, span.key, span.start, span.end, span.level))
        cur.execute(
            "ANALYZE bench.units, bench.products, bench.meters, bench.monitors, bench.spans"
        )


#: the big tables whose indexes are built once after the fill rather than kept up row by row
BULK_TABLES = ("meter_readings", "energy_rollups", "voc_samples", "voc_hourly", "voc_daily")
_INDEXES = """
SELECT i.indrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid),
       i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u')
WHERE i.indrelid = ANY(%s::regclass[])
ORDER BY c.contype NULLS LAST, 1, 5
"""


def defer_indexes(conn: Conn, tables: tuple[str, ...] = BULK_TABLES) -> list[str]:
    """Drop the primary keys and indexes of the (still empty) big tables; the statements that
    build them again (:func:`build_indexes`). A btree built once from sorted rows is several
    times cheaper than one kept up through tens of millions of inserts in random key order,
    and the fill's own reads go by time, which TimescaleDB answers by chunk without them."""
    with conn.transaction():
        rows = conn.execute(_INDEXES, (list(tables),)).fetchall()
        recreate = []
        for table, constraint, _kind, constraint_def, index, index_def in rows:
            if constraint is not None:
                conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"'.encode())
                recreate.append(
                    f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {constraint_def}'
                )
            else:
                conn.execute(f"DROP INDEX {index}".encode())
                recreate.append(index_def)
    return recreate


def build_indexes(conn: Conn, statements: list[str], step: Step) -> None:
    """Build the indexes :func:`defer_indexes` dropped (each over every chunk)."""
    conn.execute("SET maintenance_work_mem = '512MB'")
    for statement in statements:
        step(statement.split(" ON ")[0].split(" ADD ")[-1][:60])
        with conn.transaction():
            conn.execute(statement.encode())
    conn.execute("RESET maintenance_work_mem")


def fill_chunk(conn: Conn, plan: DatasetPlan, chunk: Chunk, step: Step) -> dict[str, float]:
    """Generate one month of every table, in one transaction; seconds per step."""
    params: dict[str, Any] = {
        "start": chunk.start,
        "end": chunk.end,
        "step": timedelta(seconds=plan.meters[0].interval_seconds),
        "from": plan.spec.voc_minutes_from,
        "quarter_from": plan.spec.quarter_hours_from,
    }
    seconds: dict[str, float] = {}

    def run(label: str, sql: str, args: dict[str, Any] | None = None) -> None:
        step(label)
        started = time.perf_counter()
        # several statements cannot share one parameterised execute
        for statement in sql.split(";\n"):
            cur.execute(statement.encode(), args)
        seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - started

    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL TIME ZONE 'Asia/Shanghai'")  # days and months cut at CST
        cur.execute("SET LOCAL work_mem = '256MB'")
        cur.execute("SET LOCAL synchronous_commit = off")
        # voc_hourly's trigger would recompute a day per hour written: the chunk's days are
        # summed once, set-based, after its hours (migration 0009)
        cur.execute("SET LOCAL energywatch.voc_daily_hours = 'deferred'")
        run("times", _TIMES, params)
        for kind in ("outage", "gap", "episode"):
            run("times", _SPAN_TIMES.format(kind=kind), params)
        cur.execute(_FACTORS)
        with cur.copy("COPY chunk_factors FROM STDIN") as copy:
            for row in _factors(chunk.cst_month):
                copy.write_row(row)
        run("readings", _READINGS)
        run("rollup bases", _BASE_15M, params)
        for size, finer, trunc in (
            ("1h", "15m", "hour"),
            ("1d", "1h", "day"),
            ("1mo", "1d", "month"),
        ):
            run(
                "rollup bases",
                _COARSER.format(size=size, finer=finer, trunc=trunc, sums=_SUMS),
            )
        run("rollups", _rollups_in_time_order(), params)
        run("VOC", _voc_sql(_VOC_HOURS), params)
        run("VOC", _voc_sql(_VOC_HOURLY_SAMPLES))
        run("VOC", _voc_sql(_VOC_HOURLY))
        run("VOC", "SELECT voc_daily_hours_refresh(%(start)s, %(end)s)", params)
        run("VOC", _VOC_DAILY, params)
        if chunk.end > plan.spec.voc_minutes_from:
            run("VOC", _voc_sql(_VOC_MINUTES), params)
        run("production reports", _PRODUCTION, params)
    return seconds


def _factors(month: date) -> list[tuple[str, float, float | None]]:
    """kgce per physical unit (and electricity's equal-value factor) in force that month."""
    factors = CoalFactors.load()
    out: list[tuple[str, float, float | None]] = []
    for energy_type in EnergyType:
        if energy_type is EnergyType.WATER:
            continue
        kgce, _ = factors.kgce_per_unit(energy_type, month)
        equivalent = None
        if energy_type is EnergyType.ELECTRICITY and factors.electricity_equivalent:
            equivalent = factors.electricity_equivalent_on(month).kgce_per_kwh
        out.append((energy_type.value, kgce, equivalent))
    return out


def write_alerts(conn: Conn, plan: DatasetPlan) -> int:
    """The planned alert history and each alert's latest state; the number of events."""
    events = plan_alerts(plan)
    latest: dict[str, AlertEvent] = {}
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(
            "COPY alert_history (event_id, alert_id, kind, rule_id, subject, enterprise_code, "
            "region_code, severity, at, emitted_at, replay, deliver, payload, published_at) "
            "FROM STDIN"
        ) as copy:
            for e in events:
                latest[e.alert_id] = e
                copy.write_row(
                    (
                        e.event_id,
                        e.alert_id,
                        e.kind.value,
                        e.rule_id,
                        e.subject,
                        e.enterprise_code,
                        e.region_code,
                        e.severity.value,
                        e.at,
                        e.emitted_at,
                        e.replay,
                        e.deliver,
                        Jsonb(e.model_dump(mode="json")),
                        e.emitted_at,
                    )
                )
        with cur.copy(
            "COPY alerts (alert_id, rule_id, subject, enterprise_code, region_code, status, "
            "severity, started_at, last_event_at, resolved_at, acknowledged_by, ack_comment, "
            "ack_expires_at, replay, latest) FROM STDIN"
        ) as copy:
            for e in latest.values():
                ack = e.acknowledgement
                copy.write_row(
                    (
                        e.alert_id,
                        e.rule_id,
                        e.subject,
                        e.enterprise_code,
                        e.region_code,
                        e.status.value,
                        e.severity.value,
                        e.started_at,
                        e.emitted_at,
                        e.at if e.kind is AlertKind.RESOLVED else None,
                        ack.user if ack else None,
                        ack.comment if ack else None,
                        ack.expires_at if ack else None,
                        e.replay,
                        Jsonb(e.model_dump(mode="json")),
                    )
                )
    return len(events)


def write_progress(conn: Conn, plan: DatasetPlan, readings: int) -> None:
    """A stream progress row as a worker that has read everything would leave it, so the
    watermark says the past is final."""
    end: datetime = plan.spec.end
    with conn.transaction():
        conn.execute(
            "INSERT INTO stream_progress (consumer, topic, partition, next_offset, max_event_end, "
            "watermark) VALUES ('energywatch-worker', 'energywatch.readings.v1', 0, %s, %s, %s)",
            (readings, end, end - timedelta(minutes=30)),
        )
