"""Rollup upserts: signed contributions in, every subject's and window's sums moved by them.

A batch's contributions are COPYed into a staging table and fanned out in one statement over
subjects (the meter; its unit, county, city and industry, each per energy type and, water
aside, in 'all') and windows (15m, 1h, 1d, 1mo), grouped, and added to ``energy_rollups``.
Sums are numeric, so adding is exact and the result does not depend on the order or grouping
of contributions; rows are upserted in key order so that workers sharing a county's rows
take their locks in the same order and never deadlock.
"""

from collections.abc import Sequence

import psycopg
from psycopg.rows import TupleRow

from stream.accounting import Contribution

_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS contribution_staging (
    meter_id text, enterprise_code text, county text, city text, industry text,
    energy_type text, physical_unit text, in_all boolean,
    s15 timestamptz, e15 timestamptz, s1h timestamptz, e1h timestamptz,
    s1d timestamptz, e1d timestamptz, s1mo timestamptz, e1mo timestamptz,
    c15 integer, c1h integer, c1d integer, c1mo integer,
    physical numeric, tce numeric, tce_counted numeric, tce_equivalent numeric,
    readings integer, covered_seconds bigint, flagged integer, stuck integer, jumps integer,
    resets integer, off_period_start integer
)
"""

_UPSERT = """
INSERT INTO energy_rollups AS r (
    subject_kind, subject, energy_type, window_size, period_start, period_end,
    physical_quantity, physical_unit, tce, tce_counted, tce_equivalent, readings,
    covered_seconds, flagged, stuck, jumps, resets, off_period_start, corrections)
SELECT subj.kind, subj.subject, subj.energy_type, w.size, w.start_at, w.end_at,
       CASE WHEN subj.energy_type = 'all' THEN NULL ELSE sum(s.physical) END,
       CASE WHEN subj.energy_type = 'all' THEN NULL ELSE min(s.physical_unit) END,
       sum(s.tce), sum(s.tce_counted), sum(s.tce_equivalent), sum(s.readings),
       sum(s.covered_seconds), sum(s.flagged), sum(s.stuck), sum(s.jumps), sum(s.resets),
       sum(s.off_period_start), sum(w.closed)
FROM contribution_staging s
CROSS JOIN LATERAL (VALUES
    ('meter', s.meter_id, s.energy_type),
    ('unit', s.enterprise_code, s.energy_type),
    ('county', s.county, s.energy_type),
    ('city', s.city, s.energy_type),
    ('industry', s.industry, s.energy_type),
    ('unit', s.enterprise_code, 'all'),
    ('county', s.county, 'all'),
    ('city', s.city, 'all'),
    ('industry', s.industry, 'all')
) AS subj(kind, subject, energy_type)
CROSS JOIN LATERAL (VALUES
    ('15m', s.s15, s.e15, s.c15),
    ('1h', s.s1h, s.e1h, s.c1h),
    ('1d', s.s1d, s.e1d, s.c1d),
    ('1mo', s.s1mo, s.e1mo, s.c1mo)
) AS w(size, start_at, end_at, closed)
WHERE (subj.energy_type <> 'all' OR s.in_all) AND (subj.kind <> 'meter' OR w.size IN ('1d', '1mo'))
GROUP BY subj.kind, subj.subject, subj.energy_type, w.size, w.start_at, w.end_at
ORDER BY subj.kind, subj.subject, subj.energy_type, w.size, w.start_at
ON CONFLICT (subject_kind, subject, energy_type, window_size, period_start) DO UPDATE SET
    physical_quantity = r.physical_quantity + excluded.physical_quantity,
    tce = r.tce + excluded.tce,
    tce_counted = r.tce_counted + excluded.tce_counted,
    tce_equivalent = r.tce_equivalent + excluded.tce_equivalent,
    readings = r.readings + excluded.readings,
    covered_seconds = r.covered_seconds + excluded.covered_seconds,
    flagged = r.flagged + excluded.flagged,
    stuck = r.stuck + excluded.stuck,
    jumps = r.jumps + excluded.jumps,
    resets = r.resets + excluded.resets,
    off_period_start = r.off_period_start + excluded.off_period_start,
    corrections = r.corrections + excluded.corrections,
    updated_at = now()
"""


async def add_contributions(
    cur: psycopg.AsyncCursor[TupleRow], contributions: Sequence[Contribution]
) -> int:
    """Add contributions to the rollups in the caller's transaction; return rows touched."""
    if not contributions:
        return 0
    await cur.execute(_STAGING)
    async with cur.copy("COPY contribution_staging FROM STDIN") as copy:
        for c in contributions:
            (s15, e15), (s1h, e1h), (s1d, e1d), (s1mo, e1mo) = c.windows
            c15, c1h, c1d, c1mo = c.closed
            await copy.write_row(
                (
                    c.meter_id,
                    c.enterprise_code,
                    c.dims.county,
                    c.dims.city,
                    c.dims.industry,
                    c.energy_type,
                    c.physical_unit,
                    c.in_all,
                    s15,
                    e15,
                    s1h,
                    e1h,
                    s1d,
                    e1d,
                    s1mo,
                    e1mo,
                    int(c15),
                    int(c1h),
                    int(c1d),
                    int(c1mo),
                    c.physical,
                    c.tce,
                    c.tce_counted,
                    c.tce_equivalent,
                    c.readings,
                    c.covered_seconds,
                    c.flagged,
                    c.stuck,
                    c.jumps,
                    c.resets,
                    c.off_period_start,
                )
            )
    # a batch fans out to tens of thousands of (subject, window) rows: aggregate them in memory
    await cur.execute("SET LOCAL work_mem = '64MB'")
    await cur.execute(_UPSERT)
    touched = cur.rowcount
    await cur.execute("TRUNCATE contribution_staging")
    return touched
