-- Raw meter readings, one row per meter and interval. The natural key makes writes idempotent:
-- the same reading delivered twice is the same row.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE meter_readings (
    meter_id          text             NOT NULL,
    period_start      timestamptz      NOT NULL,
    enterprise_code   text             NOT NULL,
    energy_type       text             NOT NULL,
    interval_seconds  integer          NOT NULL CHECK (interval_seconds > 0),
    physical_quantity double precision NOT NULL,
    physical_unit     text             NOT NULL,
    source            text             NOT NULL,
    ingested_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, period_start)
);

-- 15-minute readings from a few thousand meters: a week per chunk keeps chunks in the tens of
-- millions of rows at most and lets retention drop whole weeks.
SELECT create_hypertable('meter_readings', 'period_start', chunk_time_interval => INTERVAL '7 days');

CREATE INDEX meter_readings_enterprise_idx ON meter_readings (enterprise_code, period_start DESC);
