-- Standard-coal accounting and event-time rollups (issue 5).
--
-- Each raw row keeps what the meter sent (physical_quantity, physical_counter) beside what the
-- stream made of it: the interval consumption it accounts (from the counter when there is one),
-- its tonnes of standard coal, the quality flags, and whether it was aggregated at all (a
-- reading beyond the allowed lateness is stored, counted and reported, but not aggregated).
ALTER TABLE meter_readings
    ADD COLUMN consumption    double precision,
    ADD COLUMN tce            double precision,
    ADD COLUMN tce_equivalent double precision,
    ADD COLUMN counted        boolean,
    ADD COLUMN exclusion      text,
    ADD COLUMN quality_flags  text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN aggregated     boolean NOT NULL DEFAULT true,
    ADD COLUMN revision       integer NOT NULL DEFAULT 0;

CREATE INDEX meter_readings_not_aggregated_idx ON meter_readings (period_start)
    WHERE NOT aggregated;

-- Rollups per subject (a meter, a unit, a county, a city, an industry), energy type ('all':
-- every energy type in tce; water is never in 'all') and window (15m, 1h, 1d and 1mo, days and
-- months cut at China Standard Time midnight). The worker upserts signed contributions, so a
-- sum here always equals the sum over the aggregated raw rows. Sums are numeric: exact, so
-- they do not depend on the order contributions arrived in (a replay after a crash gives the
-- same digits). Each reading's tce is rounded to 1e-9 t (1 mg of standard coal) first.
CREATE TABLE energy_rollups (
    subject_kind      text        NOT NULL
        CHECK (subject_kind IN ('meter', 'unit', 'county', 'city', 'industry')),
    subject           text        NOT NULL,
    energy_type       text        NOT NULL,
    window_size       text        NOT NULL CHECK (window_size IN ('15m', '1h', '1d', '1mo')),
    period_start      timestamptz NOT NULL,
    period_end        timestamptz NOT NULL,
    -- in physical_unit; NULL for 'all', whose energy types have different units
    physical_quantity numeric,
    physical_unit     text,
    tce               numeric     NOT NULL,  -- every flow, excluded ones included
    tce_counted       numeric     NOT NULL,  -- the controlled total: exclusions left out
    tce_equivalent    numeric     NOT NULL,  -- electricity at its equal-value factor
    readings          bigint      NOT NULL,  -- aggregated raw rows
    covered_seconds   bigint      NOT NULL,  -- sum of their intervals: completeness
    flagged           bigint      NOT NULL,  -- rows with any quality flag
    stuck             bigint      NOT NULL,
    jumps             bigint      NOT NULL,  -- implausible jumps held or reported
    resets            bigint      NOT NULL,  -- counter resets and rollovers
    off_period_start  bigint      NOT NULL,  -- stamps not on their interval's boundary
    corrections       bigint      NOT NULL,  -- contributions that arrived after the window closed
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject_kind, subject, energy_type, window_size, period_start)
);

-- Every batch updates thousands of these rows in place: room on each page lets PostgreSQL
-- update without touching the index (a HOT update), and the primary key is the only index, so
-- that stays possible. Queries by subject use it; "every county on a day" reads the PK's
-- subject_kind prefix.
ALTER TABLE energy_rollups SET (fillfactor = 70);

-- Quarter-hour rollups per meter are as many as raw rows; a 30-day chunk keeps a month's
-- windows (cut at CST, so 16:00 UTC) in one or two chunks.
SELECT create_hypertable('energy_rollups', 'period_start', chunk_time_interval => INTERVAL '30 days');

-- Where each worker is in each partition, written in the same transaction as the rows that
-- partition's records produced: a redelivered record (offset < next_offset) is skipped, so
-- classification by the watermark is the same however often a batch is retried.
CREATE TABLE stream_progress (
    consumer        text        NOT NULL,
    topic           text        NOT NULL,
    partition       integer     NOT NULL,
    next_offset     bigint      NOT NULL,
    -- the latest interval end seen in the partition; the watermark is this minus the grace
    max_event_end   timestamptz,
    watermark       timestamptz,
    too_late        bigint      NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);

-- Counter-meter state (stream/counters.py), per meter, saved with the rows it produced.
CREATE TABLE meter_counter_state (
    meter_id   text        PRIMARY KEY,
    state      jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
