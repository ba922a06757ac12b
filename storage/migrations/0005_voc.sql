-- VOC samples as the monitors sent them, and the stream's hourly and daily averages (issue 5).
--
-- One row per monitor (HJ 212 MN), sample kind (60 s minute, 3600 s hourly, 86400 s daily
-- data: CN 2051/2061/2031), interval start (HJ 212 DataTime) and pollutant code. The values
-- are kept as sent, flow (a00000) included, so averages can always be recomputed from here.
-- A sample delivered again is the same row; one sent again with other values replaces it
-- (a correction).
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE voc_samples (
    monitor_id       text             NOT NULL,
    interval_seconds integer          NOT NULL CHECK (interval_seconds IN (60, 3600, 86400)),
    data_time        timestamptz      NOT NULL,
    pollutant        text             NOT NULL,
    enterprise_code  text             NOT NULL,
    avg              double precision,
    min              double precision,
    max              double precision,
    cou              double precision,
    flag             text             NOT NULL CHECK (flag IN ('N', 'F', 'M', 'S', 'D', 'C', 'T', 'B')),
    source           text             NOT NULL,
    ingested_at      timestamptz      NOT NULL DEFAULT now(),
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    -- this order serves the stream's one query: a monitor's minutes within an hour
    PRIMARY KEY (monitor_id, interval_seconds, data_time, pollutant)
);

-- A monitor uploads about 14,000 values a day (1,440 minutes x ~10 codes, plus its hours), so
-- a few hundred to a thousand monitors make 5-15 million rows a day: one day per chunk keeps a
-- chunk and its index in memory while the stream recomputes recent hours (each touches one
-- chunk), and lets retention or compression work day by day.
SELECT create_hypertable('voc_samples', 'data_time', chunk_time_interval => INTERVAL '1 day');

-- The stream's averages, per monitor, pollutant and period (hours; days from 00:00 China
-- Standard Time, i.e. 16:00 UTC the day before). Only N-flagged values count; a period is valid
-- when at least 75% of its slots (45 of 60 minutes, 18 of 24 hours) have one. Invalid periods
-- keep their counts and flag (the commonest non-N flag) but no values. emission_mass_kg is
-- concentration x gas volume, for concentration codes when both they and the flow are valid.
-- Rows are recomputed from the stored samples and upserted, so redelivered and late samples
-- give the same rows as an in-order first delivery.
CREATE TABLE voc_hourly (
    monitor_id       text             NOT NULL,
    period_start     timestamptz      NOT NULL,
    pollutant        text             NOT NULL,
    enterprise_code  text             NOT NULL,
    avg              double precision,  -- NULL when the hour is invalid
    min              double precision,
    max              double precision,
    cou              double precision,  -- sum of the valid minutes' totals, as sent
    valid_count      integer          NOT NULL CHECK (valid_count >= 0),  -- N minutes with a value
    total_count      integer          NOT NULL CHECK (total_count >= valid_count),  -- minutes with the code
    valid            boolean          NOT NULL,
    flag             text             NOT NULL CHECK (flag IN ('N', 'F', 'M', 'S', 'D', 'C', 'T', 'B')),
    emission_mass_kg double precision,
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (monitor_id, period_start, pollutant),
    CHECK (valid = (flag = 'N')),
    CHECK (valid OR avg IS NULL)
);

-- ~240 rows per monitor and day: 30 days per chunk keeps a chunk in the millions of rows for
-- a thousand monitors, and a month's report reads one or two chunks.
SELECT create_hypertable('voc_hourly', 'period_start', chunk_time_interval => INTERVAL '30 days');

CREATE INDEX voc_hourly_enterprise_idx ON voc_hourly (enterprise_code, period_start DESC);

CREATE TABLE voc_daily (
    monitor_id       text             NOT NULL,
    period_start     timestamptz      NOT NULL,  -- 00:00 China Standard Time
    pollutant        text             NOT NULL,
    enterprise_code  text             NOT NULL,
    avg              double precision,  -- NULL when the day is invalid
    min              double precision,
    max              double precision,
    cou              double precision,
    valid_count      integer          NOT NULL CHECK (valid_count >= 0),  -- valid hours
    total_count      integer          NOT NULL CHECK (total_count >= valid_count),  -- hours with the code
    valid            boolean          NOT NULL,
    flag             text             NOT NULL CHECK (flag IN ('N', 'F', 'M', 'S', 'D', 'C', 'T', 'B')),
    emission_mass_kg double precision,
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (monitor_id, period_start, pollutant),
    CHECK (valid = (flag = 'N')),
    CHECK (valid OR avg IS NULL)
);

-- ~10 rows per monitor and day: a year per chunk is a few million rows for a thousand
-- monitors, and annual reports read one or two chunks.
SELECT create_hypertable('voc_daily', 'period_start', chunk_time_interval => INTERVAL '365 days');

CREATE INDEX voc_daily_enterprise_idx ON voc_daily (enterprise_code, period_start DESC);
