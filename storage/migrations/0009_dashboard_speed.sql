-- What the dashboards need to answer in well under 100 ms over a year of a 500-unit fleet
-- (issue 7; `energywatch bench dashboards` times every panel's SQL).
--
-- 1. Rollups of every subject of a kind over a time range ("every unit's energy this year",
--    "every county's completeness this week") are read window by window of rollup_cover():
--    an index on the columns that pick such a slice. Its columns never change after a row is
--    inserted, so the worker's in-place updates of the sums stay HOT (the primary key and the
--    period_start index are the table's only other indexes).
CREATE INDEX energy_rollups_window_idx
    ON energy_rollups (subject_kind, window_size, energy_type, period_start);

-- "Which meters were stuck in this range" finds the few rows that say so. `stuck` rarely
-- changes (only when a stuck reading arrives), so the worker's updates stay HOT otherwise.
CREATE INDEX energy_rollups_stuck_idx
    ON energy_rollups (subject_kind, window_size, period_start) WHERE stuck > 0;

-- rollup_cover() returns at most seven spans; the default estimate (1000 rows) makes the
-- planner read every row of a kind instead of looking each span up.
ALTER FUNCTION rollup_cover(timestamptz, timestamptz) ROWS 7;

-- The rows of a kind's subjects (all, or those in `subjects`) and energy types over the
-- coarsest windows covering [range_from, range_to): a year of 500 units in a few thousand
-- rows. Each span is planned with its own values (EXECUTE), so the planner sees how narrow
-- it is and reads it through energy_rollups_window_idx (or the primary key for a few
-- subjects); a span passed as parameters of a join looks wide, and since rollups lie on disk
-- in the order their windows start, the period_start index then looked cheaper: it read
-- every subject's rows of the span. only_stuck: rows with a stuck reading only (meters'
-- '1d' and '1mo' rows through energy_rollups_stuck_idx).
CREATE FUNCTION rollup_cover_rows(
    kind text, energy_types text[], range_from timestamptz, range_to timestamptz,
    subjects text[] DEFAULT NULL, only_stuck boolean DEFAULT false)
RETURNS SETOF energy_rollups
-- the rows are gathered in memory before the caller reads them: tens of thousands for a
-- month of every unit's hours and days, more than the default 4 MB
LANGUAGE plpgsql STABLE ROWS 5000 SET work_mem = '64MB' AS $$
DECLARE
    span record;
    query text := 'SELECT * FROM energy_rollups WHERE subject_kind = $1 AND window_size = $2 '
                  'AND period_start >= $3 AND period_start < $4';
BEGIN
    IF energy_types IS NOT NULL THEN
        query := query || ' AND energy_type = ANY ($5)';
    END IF;
    IF subjects IS NOT NULL THEN
        query := query || ' AND subject = ANY ($6)';
    END IF;
    IF only_stuck THEN
        query := query || ' AND stuck > 0';
    END IF;
    FOR span IN SELECT * FROM rollup_cover(range_from, range_to) LOOP
        RETURN QUERY EXECUTE query
            USING kind, span.window_size, span.span_start, span.span_end, energy_types,
                  subjects;
    END LOOP;
END
$$;

-- 2. VOC: one monitor's one pollutant over a time range (a panel's series, a limit's hours).
--    The primary key leads with (monitor_id, period_start) and would read every pollutant of
--    the monitor. Immutable columns again, so the stream's updates of an hour stay HOT.
CREATE INDEX voc_hourly_series_idx ON voc_hourly (monitor_id, pollutant, period_start);

-- 3. What the VOC panels read per hour (hours per data flag, hours above a limit, the highest
--    hourly average and valid maximum, the valid hours' averages in time order), one row per
--    monitor, pollutant and China-local day, so
--    a year reads 365 rows per series instead of 8760. Limits are not stored here: they come
--    from the register (ref_voc_limits) and may change, so each day keeps its hours' averages
--    and maxima sorted, and the hours above a limit L are
--        cardinality(avgs) - width_bucket(L, avgs)
--    (width_bucket of a sorted array counts its elements <= L), exactly what counting the
--    hours with avg > L gives. A trigger keeps it in step with voc_hourly (below).
CREATE TABLE voc_daily_hours (
    monitor_id    text             NOT NULL,
    period_start  timestamptz      NOT NULL,  -- 00:00 China Standard Time
    pollutant     text             NOT NULL,
    hours         integer          NOT NULL,  -- hours with the code, any flag
    hours_n       integer          NOT NULL,  -- per HJ 212 data flag; N: valid
    hours_f       integer          NOT NULL,
    hours_m       integer          NOT NULL,
    hours_s       integer          NOT NULL,
    hours_d       integer          NOT NULL,
    hours_c       integer          NOT NULL,
    hours_t       integer          NOT NULL,
    hours_b       integer          NOT NULL,
    avgs          double precision[] NOT NULL,  -- the hours' averages that are not NULL, ascending
    maxes         double precision[] NOT NULL,  -- the hours' maxima that are not NULL, ascending
    max_valid_max double precision,            -- the highest maximum of a valid hour
    -- the valid hours in time order, for hourly time series: minutes after 00:00 CST, averages
    valid_offsets smallint[]       NOT NULL,
    valid_avgs    double precision[] NOT NULL,
    PRIMARY KEY (monitor_id, pollutant, period_start)
);
CREATE INDEX voc_daily_hours_period_idx ON voc_daily_hours (period_start);

-- The days of [range_from, range_to) recomputed from voc_hourly (NULL monitor: every monitor).
CREATE FUNCTION voc_daily_hours_refresh(
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
    RETURN written;
END
$$;

-- The stream writes voc_hourly row by row as minutes arrive (an hour changes until it is
-- complete, and only when a value changes); each written, changed or deleted hour brings its
-- day up to date: about 24 index entries read per hour written. A bulk loader (the dashboard
-- benchmark's) may set energywatch.voc_daily_hours = 'deferred' for its transaction and call
-- voc_daily_hours_refresh() for what it wrote.
CREATE FUNCTION voc_daily_hours_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed voc_hourly;
    day timestamptz;
BEGIN
    IF current_setting('energywatch.voc_daily_hours', true) = 'deferred' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    day := date_trunc('day', changed.period_start, 'Asia/Shanghai');
    PERFORM voc_daily_hours_refresh(day, day + interval '24 hours', changed.monitor_id,
                                    changed.pollutant);
    IF TG_OP = 'UPDATE' AND (OLD.monitor_id, OLD.pollutant, OLD.period_start)
            IS DISTINCT FROM (NEW.monitor_id, NEW.pollutant, NEW.period_start) THEN
        day := date_trunc('day', OLD.period_start, 'Asia/Shanghai');
        PERFORM voc_daily_hours_refresh(day, day + interval '24 hours', OLD.monitor_id,
                                        OLD.pollutant);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER voc_daily_hours_sync
    AFTER INSERT OR UPDATE OR DELETE ON voc_hourly
    FOR EACH ROW EXECUTE FUNCTION voc_daily_hours_sync();

-- what is already stored
SELECT voc_daily_hours_refresh('-infinity', 'infinity');

-- The spans a VOC panel reads for the hours starting in [range_from, range_to] (both ends
-- included, as Grafana's $__timeFilter): the China-local days wholly inside as 'day' spans of
-- voc_daily_hours, the hours before and after them as 'hour' spans of voc_hourly. Spans are
-- [span_start, span_end).
CREATE FUNCTION voc_cover(range_from timestamptz, range_to timestamptz)
RETURNS TABLE (source text, span_start timestamptz, span_end timestamptz)
LANGUAGE plpgsql STABLE STRICT ROWS 3 AS $$
DECLARE
    -- the first CST midnight at or after range_from, the last at or before range_to
    d0 timestamptz := date_trunc('day', range_from - interval '1 microsecond', 'Asia/Shanghai')
                      + interval '24 hours';
    d1 timestamptz := date_trunc('day', range_to, 'Asia/Shanghai');
    stop timestamptz := range_to + interval '1 microsecond';
BEGIN
    IF range_to < range_from THEN
        RETURN;
    END IF;
    IF d1 <= d0 THEN
        RETURN QUERY SELECT 'hour'::text, range_from, stop;
        RETURN;
    END IF;
    RETURN QUERY
    SELECT s.k, s.a, s.b
    FROM (VALUES ('hour', range_from, d0), ('day', d0, d1), ('hour', d1, stop)) AS s (k, a, b)
    WHERE s.a < s.b;
END
$$;

-- 4. Planner settings for this database's sessions (new sessions take them; a role without
--    the right to alter the database leaves them as they were and says so):
--    - no JIT compilation: every query here is meant to take milliseconds (panels, the
--      worker's batches, the evaluator's rules), and compiling one whose estimated cost passes
--      jit_above_cost took 40-90 ms of a 100 ms panel budget on the benchmark's data;
--    - random_page_cost 1.1 (the default 4 models spinning disks; this is SSD or cache): at 4
--      the planner read a span of one kind's rollups through the period_start index, every
--      subject's rows of that time (67 ms), rather than through energy_rollups_window_idx
--      (2.7 ms), because the rollups' time order makes the former look sequential.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
    EXECUTE format('ALTER DATABASE %I SET random_page_cost = 1.1', current_database());
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'planner settings stay as configured: % may not alter database %',
        current_user, current_database();
END
$$;
