-- Dashboards over long ranges (issue 7's year of data for 500 units): the VOC panels that sum
-- a range (concentrations vs limits, data flags, exceedance hours) read one row per series and
-- China-local month for the range's whole months, instead of one per day; the hourly-averages
-- panel shows monthly means beyond 90 days. On the benchmark's year (210 series) those panels
-- read 365 day rows per series and took 135-271 ms.

-- 1. Per monitor, pollutant and China-local month: voc_daily_hours summed (migration 0009
--    explains the sorted arrays: the hours above a limit L are cardinality(avgs) -
--    width_bucket(L, avgs)), plus the valid hours' averages summed, for the monthly mean.
CREATE TABLE voc_monthly_hours (
    monitor_id    text             NOT NULL,
    period_start  timestamptz      NOT NULL,  -- the 1st, 00:00 China Standard Time
    pollutant     text             NOT NULL,
    hours         integer          NOT NULL,
    hours_n       integer          NOT NULL,
    hours_f       integer          NOT NULL,
    hours_m       integer          NOT NULL,
    hours_s       integer          NOT NULL,
    hours_d       integer          NOT NULL,
    hours_c       integer          NOT NULL,
    hours_t       integer          NOT NULL,
    hours_b       integer          NOT NULL,
    avgs          double precision[] NOT NULL,  -- the month's hourly averages, ascending
    maxes         double precision[] NOT NULL,  -- the month's hourly maxima, ascending
    max_avg       double precision,             -- avgs' last: read without the array
    max_valid_max double precision,
    valid_sum     double precision NOT NULL,    -- the valid hours' averages summed
    PRIMARY KEY (monitor_id, pollutant, period_start)
);
-- A month's arrays (up to 744 doubles, about 6 kB each) are stored out of line uncompressed:
-- compressed, every read decompressed them, and a year's concentrations-vs-limits panel took
-- 110 ms, against 53 ms so (and 45 ms reading max_avg instead of the array's last element).
ALTER TABLE voc_monthly_hours ALTER COLUMN avgs SET STORAGE EXTERNAL,
                              ALTER COLUMN maxes SET STORAGE EXTERNAL;
CREATE INDEX voc_monthly_hours_period_idx ON voc_monthly_hours (period_start);

-- The China-local month after the one starting at ``month_start``.
CREATE FUNCTION cst_next_month(month_start timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ((month_start AT TIME ZONE 'Asia/Shanghai') + interval '1 month')
           AT TIME ZONE 'Asia/Shanghai'
$$;

-- The months starting in [range_from, range_to) recomputed from voc_daily_hours.
CREATE FUNCTION voc_monthly_hours_refresh(
    range_from timestamptz, range_to timestamptz, only_monitor text DEFAULT NULL,
    only_pollutant text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
BEGIN
    DELETE FROM voc_monthly_hours m
    WHERE m.period_start >= range_from AND m.period_start < range_to
      AND (only_monitor IS NULL OR m.monitor_id = only_monitor)
      AND (only_pollutant IS NULL OR m.pollutant = only_pollutant);
    WITH days AS (
        SELECT d.*, date_trunc('month', d.period_start, 'Asia/Shanghai') AS month
        FROM voc_daily_hours d
        WHERE d.period_start >= range_from
          AND d.period_start < CASE WHEN isfinite(range_to)
                                    THEN cst_next_month(date_trunc('month', range_to - interval '1 microsecond', 'Asia/Shanghai'))
                                    ELSE range_to END
          AND (only_monitor IS NULL OR d.monitor_id = only_monitor)
          AND (only_pollutant IS NULL OR d.pollutant = only_pollutant)
    ), counted AS (
        SELECT monitor_id, pollutant, month, sum(hours) AS hours, sum(hours_n) AS hours_n,
               sum(hours_f) AS hours_f, sum(hours_m) AS hours_m, sum(hours_s) AS hours_s,
               sum(hours_d) AS hours_d, sum(hours_c) AS hours_c, sum(hours_t) AS hours_t,
               sum(hours_b) AS hours_b, max(avgs[cardinality(avgs)]) AS max_avg,
               max(max_valid_max) AS max_valid_max
        FROM days GROUP BY monitor_id, pollutant, month
    ), valid AS (  -- summed in value order: the same sum whatever order the days are read in
        SELECT monitor_id, pollutant, month, sum(v ORDER BY v) AS valid_sum
        FROM days CROSS JOIN LATERAL unnest(days.valid_avgs) AS v
        GROUP BY monitor_id, pollutant, month
    ), averages AS (
        SELECT monitor_id, pollutant, month, array_agg(a ORDER BY a) AS avgs
        FROM days CROSS JOIN LATERAL unnest(days.avgs) AS a
        GROUP BY monitor_id, pollutant, month
    ), maxima AS (
        SELECT monitor_id, pollutant, month, array_agg(x ORDER BY x) AS maxes
        FROM days CROSS JOIN LATERAL unnest(days.maxes) AS x
        GROUP BY monitor_id, pollutant, month
    )
    INSERT INTO voc_monthly_hours (
        monitor_id, period_start, pollutant, hours, hours_n, hours_f, hours_m, hours_s,
        hours_d, hours_c, hours_t, hours_b, avgs, maxes, max_avg, max_valid_max, valid_sum)
    SELECT c.monitor_id, c.month, c.pollutant, c.hours, c.hours_n, c.hours_f, c.hours_m,
           c.hours_s, c.hours_d, c.hours_c, c.hours_t, c.hours_b,
           coalesce(a.avgs, '{}'), coalesce(x.maxes, '{}'), c.max_avg, c.max_valid_max,
           coalesce(v.valid_sum, 0)
    FROM counted c
    LEFT JOIN valid v USING (monitor_id, pollutant, month)
    LEFT JOIN averages a USING (monitor_id, pollutant, month)
    LEFT JOIN maxima x USING (monitor_id, pollutant, month)
    WHERE c.month >= range_from AND c.month < range_to;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$$;

-- 2. Migration 0009's day refresh, now also bringing the days' months up to date (the
--    trigger on voc_hourly calls it for each hour written; a bulk loader calls it once).
CREATE OR REPLACE FUNCTION voc_daily_hours_refresh(
    range_from timestamptz, range_to timestamptz, only_monitor text DEFAULT NULL,
    only_pollutant text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
BEGIN
    DELETE FROM voc_daily_hours d
    WHERE d.period_start >= range_from AND d.period_start < range_to
      AND (only_monitor IS NULL OR d.monitor_id = only_monitor)
      AND (only_pollutant IS NULL OR d.pollutant = only_pollutant);
    INSERT INTO voc_daily_hours
    SELECT h.monitor_id, date_trunc('day', h.period_start, 'Asia/Shanghai'), h.pollutant,
           count(*),
           count(*) FILTER (WHERE h.flag = 'N'), count(*) FILTER (WHERE h.flag = 'F'),
           count(*) FILTER (WHERE h.flag = 'M'), count(*) FILTER (WHERE h.flag = 'S'),
           count(*) FILTER (WHERE h.flag = 'D'), count(*) FILTER (WHERE h.flag = 'C'),
           count(*) FILTER (WHERE h.flag = 'T'), count(*) FILTER (WHERE h.flag = 'B'),
           coalesce(array_agg(h.avg ORDER BY h.avg) FILTER (WHERE h.avg IS NOT NULL), '{}'),
           coalesce(array_agg(h.max ORDER BY h.max) FILTER (WHERE h.max IS NOT NULL), '{}'),
           max(h.max) FILTER (WHERE h.valid),
           coalesce(array_agg((extract(epoch FROM h.period_start
                                       - date_trunc('day', h.period_start, 'Asia/Shanghai'))
                               / 60)::smallint ORDER BY h.period_start)
                        FILTER (WHERE h.valid), '{}'),
           coalesce(array_agg(h.avg ORDER BY h.period_start) FILTER (WHERE h.valid), '{}')
    FROM voc_hourly h
    WHERE h.period_start >= range_from AND h.period_start < range_to
      AND (only_monitor IS NULL OR h.monitor_id = only_monitor)
      AND (only_pollutant IS NULL OR h.pollutant = only_pollutant)
    GROUP BY 1, 2, 3;
    GET DIAGNOSTICS written = ROW_COUNT;
    PERFORM voc_monthly_hours_refresh(date_trunc('month', range_from, 'Asia/Shanghai'), range_to,
                                      only_monitor, only_pollutant);
    RETURN written;
END
$$;

-- what is already stored
SELECT voc_monthly_hours_refresh('-infinity', 'infinity');

-- 3. voc_cover (migration 0009) with the range's whole China-local months as 'month' spans of
--    voc_monthly_hours when ``months``; the days outside them stay 'day' spans, the ragged
--    ends 'hour' spans. Spans are [span_start, span_end) and tile [range_from, range_to].
CREATE FUNCTION voc_cover(range_from timestamptz, range_to timestamptz, months boolean)
RETURNS TABLE (source text, span_start timestamptz, span_end timestamptz)
LANGUAGE plpgsql STABLE STRICT ROWS 5 AS $$
DECLARE
    d0 timestamptz := date_trunc('day', range_from - interval '1 microsecond', 'Asia/Shanghai')
                      + interval '24 hours';
    d1 timestamptz := date_trunc('day', range_to, 'Asia/Shanghai');
    m0 timestamptz := cst_next_month(date_trunc('month', d0 - interval '1 microsecond',
                                                'Asia/Shanghai'));
    m1 timestamptz := date_trunc('month', d1, 'Asia/Shanghai');
    stop timestamptz := range_to + interval '1 microsecond';
BEGIN
    IF NOT months OR m1 <= m0 OR d1 <= d0 THEN
        RETURN QUERY SELECT * FROM voc_cover(range_from, range_to);
        RETURN;
    END IF;
    RETURN QUERY
    SELECT s.k, s.a, s.b
    FROM (VALUES ('hour', range_from, d0), ('day', d0, m0), ('month', m0, m1), ('day', m1, d1),
                 ('hour', d1, stop)) AS s (k, a, b)
    WHERE s.a < s.b;
END
$$;
